"""Work sharded over Ray workers, each holding its own copy of a Subject.

A sweep splits into independent units (the brain scan's start rows, the patching sweep's
program steps). Each worker is a Ray
actor that rebuilds the driver's Subject (the model's class, config and current weights
through Ray's object store, its tokenizer, its layer program, and its hook interventions
rebuilt from their specs) and a piece of work on it; units go out largest cost first to
whichever worker is free, and results come back one unit at a time, in the order they
finish. A worker that dies is replaced and its unit handed out again. Ray is an optional
extra (``pip install 'neuro-magics[distributed]'``), imported only here and only when used.
"""

from __future__ import annotations

import copy
import os
import socket
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import torch

from .errors import NeuroMagicsError, NeuroMagicsWarning
from .interventions import Intervention, rebuild
from .programs import LayerProgram
from .subject import Subject

#: A unit whose worker died this many times is not handed out again: it kills its workers.
MAX_LOSSES_PER_UNIT = 3


def require_ray():
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise NeuroMagicsError("--workers runs on Ray: pip install 'neuro-magics[distributed]'.") from None
    return ray


def connect(ray_address: str | None = None):
    """The running Ray (reused when this process already initialised one), else the cluster at
    ``ray_address``, else a local cluster on this machine's cores and GPUs (it lives on, for
    later sweeps, until ``ray.shutdown()`` or the end of the process)."""
    ray = require_ray()
    if not ray.is_initialized():
        try:
            if ray_address is None:
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=ray_address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise NeuroMagicsError(f"Could not connect to Ray at {ray_address or 'a local cluster'}: {first}") from None
    return ray


#: Seconds to wait for a Ray head to answer before saying it does not (Ray itself retries for minutes).
CONNECT_TIMEOUT = 5.0


def _check_reachable(ray_address: str) -> None:
    """Refuse in one line an address that is not ``host:port``, ``ray://host:port``, ``auto`` or
    ``local``, or one that nothing answers at."""
    if ray_address in ("auto", "local"):
        return
    host, _, port = ray_address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise NeuroMagicsError(f"--ray-address {ray_address!r} is not a Ray address: give HOST:PORT (the head's, "
                               "e.g. 10.0.0.5:6379), ray://HOST:PORT, or auto.")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except (OSError, OverflowError, ValueError) as error:
        raise NeuroMagicsError(f"No Ray cluster answers at {ray_address} ({error}): check the address, or start one "
                               "there with `ray start --head`.") from None


class ShardedWork(NamedTuple):
    """``factory(subject, *arguments)`` runs once on each worker and returns the function that
    turns a unit into its result; both must be importable by name on the workers."""

    factory: Callable[..., Callable[[Any], Any]]
    arguments: tuple


@dataclass
class SubjectShipment:
    """What rebuilds a Subject on a worker besides its weights: the model's class and config,
    tokenizer, name, dtype, device type, layer program and hook interventions."""

    model_class: type
    config: Any
    tokenizer: Any
    name: str
    dtype: torch.dtype
    device_type: str
    program: tuple[int, ...]
    interventions: list[dict[str, Any]]


def shippable_interventions(subject: Subject) -> list[dict[str, Any]]:
    """The specs of the interventions a worker must install: those with hooks. A weight change
    travels inside the weights, so a worker installs only its hooks. Refuses in one line an
    intervention that cannot be rebuilt from its spec (checked here, before any worker starts)."""
    specs = []
    for intervention in subject.interventions:
        if not intervention.hooks:
            continue
        try:
            rebuild(subject, intervention.spec)
        except NeuroMagicsError as error:
            raise NeuroMagicsError(f"{intervention!r} cannot be shipped to Ray workers: {error}") from None
        specs.append(intervention.spec)
    return specs


def check_shippable(subject: Subject) -> list[dict[str, Any]]:
    """Refuse, before any work, a Subject the workers cannot rebuild exactly; returns the specs
    of the interventions the workers install."""
    model = subject.model
    if getattr(model, "hf_device_map", None):
        raise NeuroMagicsError("A model spread over devices (--device-map auto) cannot be copied to Ray workers: "
                               "load it on one device to use --workers.")
    if subject.device.type not in ("cpu", "cuda"):
        raise NeuroMagicsError(f"--workers runs models on the CPU or CUDA GPUs, not {subject.device.type}: "
                               "load it with --device cpu or cuda.")
    if type(model).__module__.startswith("transformers_modules"):
        raise NeuroMagicsError("A model with its own code (trust_remote_code) cannot be copied to Ray workers.")
    return shippable_interventions(subject)


def check_workers(subject: Subject, workers: int | None, ray_address: str | None) -> None:
    """Refuse, in one line and before any work, bad ``workers`` / ``ray_address`` options, a
    missing Ray, or a Subject the workers cannot rebuild."""
    if workers is None:
        if ray_address is not None:
            raise NeuroMagicsError("--ray-address needs --workers N: how many workers to run on that cluster.")
        return
    if workers < 1:
        raise NeuroMagicsError(f"--workers must be at least 1 (got {workers}).")
    require_ray()
    check_shippable(subject)
    if ray_address is not None:
        _check_reachable(ray_address)


def ship(subject: Subject, ray) -> tuple[SubjectShipment, Any]:
    """The shipment and a reference to the weights, put once in Ray's object store (every
    worker reads the same copy). The weights are the current ones: weight changes included."""
    interventions = check_shippable(subject)
    identity = LayerProgram.identity(subject.n_layers)
    with subject.program_applied(identity):  # the config and parameter names of the blocks as loaded
        config = copy.deepcopy(subject.model.config)
        weights = {name: value.detach().cpu() for name, value in subject.model.state_dict().items()}
    shipment = SubjectShipment(type(subject.model), config, subject.tokenizer, subject.name, subject.dtype,
                               subject.device.type, tuple(subject.program.steps), interventions)
    return shipment, ray.put(weights)


def rebuild_subject(shipment: SubjectShipment, weights: dict[str, torch.Tensor]) -> Subject:
    """The shipped Subject, on this worker's device: same weights, program and hooks."""
    config = shipment.config
    model = shipment.model_class._from_config(config, dtype=shipment.dtype,
                                             attn_implementation=config._attn_implementation)
    model.load_state_dict(weights, strict=True)
    model.to(shipment.device_type).eval()
    subject = Subject(model, shipment.tokenizer, name=shipment.name)
    subject.set_program(shipment.program)
    for spec in shipment.interventions:
        subject.add_intervention(_hooks_only(rebuild(subject, spec)))
    return subject


def _hooks_only(intervention: Intervention) -> Intervention:
    return replace(intervention, weights=None) if intervention.weights is not None else intervention


class _Worker:
    """One Ray actor: a copy of the Subject and the work built on it."""

    def __init__(self, shipment: SubjectShipment, weights: dict[str, torch.Tensor], work: ShardedWork,
                 threads: int) -> None:
        torch.set_num_threads(threads)
        self.subject = rebuild_subject(shipment, weights)
        self.work = work.factory(self.subject, *work.arguments)

    def ready(self) -> bool:
        return True

    def run(self, unit: Any) -> Any:
        return self.work(unit)


def run_sharded(
    subject: Subject,
    work: ShardedWork,
    units: Sequence[Any],
    costs: Sequence[float],
    *,
    workers: int,
    ray_address: str | None = None,
    on_result: Callable[[Any, Any], None],
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run every unit on ``workers`` Ray workers holding copies of ``subject``; ``on_result(unit,
    result)`` is called here as each finishes, ``on_ready()`` once the first workers have rebuilt
    the model (what came before is start-up). Ctrl-C (or an error) stops the workers at once."""
    if not units:
        return
    ray = connect(ray_address)
    from ray.exceptions import RayActorError

    shipment, weights = ship(subject, ray)
    # once in the object store (as the weights are), not pickled again into every (replacement) worker
    shipment, work = ray.put(shipment), ray.put(work)
    options, threads = _actor_options(ray, subject, workers)
    actor_class = ray.remote(_Worker)
    tag = uuid.uuid4().hex[:8]
    started = []

    def start_worker():
        actor = actor_class.options(name=f"neuro_magics-{tag}-{len(started)}", **options).remote(
            shipment, weights, work, threads)
        started.append(actor)
        return actor

    queue = sorted(range(len(units)), key=lambda k: -costs[k])  # largest first
    losses = [0] * len(units)
    try:
        idle = [start_worker() for _ in range(min(workers, len(units)))]
        try:
            ray.get([actor.ready.remote() for actor in idle])
        except RayActorError as error:
            raise NeuroMagicsError(f"A Ray worker could not rebuild the model: {_cause(error)}") from None
        if on_ready is not None:
            on_ready()
        pending: dict[Any, tuple[Any, int]] = {}
        while queue or pending:
            while queue and idle:
                actor, k = idle.pop(), queue.pop(0)
                pending[actor.run.remote(units[k])] = (actor, k)
            (done,), _ = ray.wait(list(pending), num_returns=1)
            actor, k = pending.pop(done)
            try:
                value = ray.get(done)
            except RayActorError as error:
                losses[k] += 1
                if losses[k] >= MAX_LOSSES_PER_UNIT:
                    raise NeuroMagicsError(f"Unit {units[k]!r} lost {losses[k]} Ray workers (last: {_cause(error)}); "
                                           "finished units are kept where they were saved.") from None
                warnings.warn(NeuroMagicsWarning(
                    f"A Ray worker died ({_cause(error)}); its unit goes to a fresh worker."))
                queue.insert(next((n for n, q in enumerate(queue) if costs[q] < costs[k]), len(queue)), k)
                idle.append(start_worker())
                continue
            idle.append(actor)
            on_result(units[k], value)
    finally:
        for actor in started:
            ray.kill(actor)


def run_units(
    subject: Subject,
    work: ShardedWork,
    units: Sequence[Any],
    costs: Sequence[float],
    *,
    workers: int | None,
    ray_address: str | None = None,
    on_result: Callable[[Any, Any], None],
) -> None:
    """``run_sharded`` with ``workers``; without, the same work function built here and run on
    each unit in order: one code path computes a unit's result in both cases."""
    if workers is not None:
        run_sharded(subject, work, units, costs, workers=workers, ray_address=ray_address, on_result=on_result)
        return
    compute = work.factory(subject, *work.arguments)
    for unit in units:
        on_result(unit, compute(unit))


def _actor_options(ray, subject: Subject, workers: int) -> tuple[dict[str, Any], int]:
    """One GPU per worker for a CUDA model; otherwise an equal share of the cluster's CPUs.
    A worker runs as many torch threads as its share, but never more than this process runs:
    with the same thread count its CPU matmuls reduce in the same order as here, so its rows
    are bit-identical to the single-process sweep's. MKL may still pick kernels by a buffer's
    memory alignment, which differs between processes: on SmolLM2 patching, the last bit or two
    of a few fp32 cells (4.8e-7 on a logit difference); with ``MKL_CBWR=AUTO,STRICT`` set
    before Python starts (Ray workers inherit it), bit-identical."""
    resources = ray.cluster_resources()
    cpus = float(resources.get("CPU", os.cpu_count() or 1))
    share = cpus // workers if cpus >= workers else cpus / workers
    threads = max(1, min(int(share), torch.get_num_threads()))
    if subject.device.type != "cuda":
        return {"num_cpus": share}, threads
    gpus = int(resources.get("GPU", 0))
    if gpus < workers:
        advice = f"use --workers {gpus} or fewer" if gpus else "load the model with --device cpu to use CPU workers"
        raise NeuroMagicsError(f"--workers {workers} needs {workers} GPUs (one per worker); this Ray cluster has "
                               f"{gpus}: {advice}.")
    return {"num_gpus": 1, "num_cpus": min(share, 1.0)}, threads


def _cause(error: Exception) -> str:
    text = str(error).strip()
    for line in text.splitlines():
        if line.strip() and not line.startswith(("Traceback", " ")):
            return line.strip()[:300]
    return type(error).__name__
