"""The fixtures the Ray tests share: one local two-CPU cluster per test module, and one torch
thread in the driver, as each of the two workers runs (a worker never runs more than the
driver): matmuls then reduce in the same order everywhere. With other thread counts fp32 sums
may round differently (measured: 1.2e-7 on a brain-scan item score).

A test module imports both: ``from ray_cluster import cluster, one_thread, ray  # noqa: F401``.
Without Ray the tests that use ``cluster`` skip, except under ``make test``
(NEURO_MAGICS_REQUIRE_TOOLS=1), where that is a failure."""

from __future__ import annotations

import pytest
import torch

from required_tools import missing_tool

try:
    import ray
except ImportError:
    ray = None


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster (2 CPUs) for the whole module: starting Ray costs seconds."""
    if ray is None:
        missing_tool("Ray is not installed (pip install 'neuro-magics[distributed]'; make test installs it)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
