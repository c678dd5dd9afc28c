"""Shared fixtures. Nothing here reaches the network."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
import torch  # noqa: E402

from tiny_models import FAMILIES, tiny_model, tiny_tokenizer  # noqa: E402


class _DeprecationLog(logging.Handler):
    """Keeps transformers' logged deprecations (``logger.warning_once("... deprecated ...")``),
    which bypass the warnings filters in pyproject.toml."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "deprecat" in message.lower():
            self.messages.append(message)


@pytest.fixture(autouse=True)
def library_deprecations_fail():
    """A deprecation transformers logs during a test fails it, as its warnings do."""
    from transformers.utils import logging as hf_logging

    library_logger = hf_logging.get_logger()  # "transformers", the parent of every module's logger
    catcher = _DeprecationLog()
    level = library_logger.level
    library_logger.addHandler(catcher)
    library_logger.setLevel(min(level or logging.WARNING, logging.WARNING))
    try:
        yield
    finally:
        library_logger.removeHandler(catcher)
        library_logger.setLevel(level)
    if catcher.messages:
        pytest.fail("transformers logged a deprecation: " + " | ".join(catcher.messages), pytrace=False)


@pytest.fixture(params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture
def tiny(family):
    """A tiny eager-attention model of each supported family, wrapped as a Subject."""
    from neuro_magics import Subject

    return Subject(tiny_model(family), tiny_tokenizer())


@pytest.fixture
def token_ids() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(3, 120, (2, 9), generator=generator)


@pytest.fixture(scope="session")
def default_subject():
    """The real default model, loaded once per test session (fp32, CPU)."""
    import neuro_magics as nm

    return nm.load_model(device="cpu", dtype="float32")


@pytest.fixture
def shell():
    """A fresh IPython shell with the extension loaded."""
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    names = dict(ip.user_ns)  # the shell is one per process: a test's variables must not reach the next
    ip.run_line_magic("load_ext", "neuro_magics")
    yield ip
    session = getattr(ip, "neuro_magics_session", None)
    if session is not None:
        session.subject = None
    ip.run_line_magic("unload_ext", "neuro_magics")
    ip.user_ns.clear()
    ip.user_ns.update(names)


@pytest.fixture
def tiny_in_shell(shell):
    """A tiny random Llama loaded into the test shell's session; generation never stops early."""
    import neuro_magics as nm

    subject = nm.Subject(tiny_model("llama"), tiny_tokenizer(), name="tiny-llama")
    subject.model.generation_config.eos_token_id = None
    shell.neuro_magics_session.subject = subject
    return subject


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the whole run: the browser and live suites share it, since
    playwright's sync API allows one instance per thread."""
    from required_tools import chromium

    yield from chromium()
