"""A library's warning inside a magic: the magic returns its result and the warning shows once
(re-emitting inside the recording block once looped forever and ate memory)."""

from __future__ import annotations

import signal
import warnings

import pytest
from IPython.core.error import UsageError

from neuro_magics.core.errors import NeuroMagicsError, NeuroMagicsWarning
from neuro_magics.magics.session import one_line_errors


@pytest.fixture
def deadline():
    """Fail instead of hanging: the old loop never returned."""

    def expire(*_):
        raise TimeoutError("the magic did not return within 10 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _warns(category, result=1, error=None):
    def magic():
        warnings.warn("a library speaks", category)
        if error is not None:
            raise error
        return result

    return one_line_errors(magic)


def test_a_library_warning_is_shown_once_and_the_result_returned(deadline):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _warns(UserWarning, result=42)() == 42
    assert [str(w.message) for w in caught] == ["a library speaks"]
    assert caught[0].category is UserWarning


def test_a_library_warning_before_an_engine_error_still_shows_once(deadline):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UsageError, match="say what to do"):
            _warns(FutureWarning, error=NeuroMagicsError("say what to do"))()
    assert [str(w.message) for w in caught] == ["a library speaks"]


def test_our_warnings_print_as_one_line(deadline, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _warns(NeuroMagicsWarning)() == 1
    assert caught == []
    assert capsys.readouterr().out == "Warning: a library speaks\n"


def test_a_real_magic_whose_model_warns_returns_its_result(shell, tiny_in_shell, deadline):
    """%%scan over a model one of whose modules warns on every call (as a library would)."""

    def speak(*_):
        warnings.warn("a module deep in the model warns", UserWarning)

    block = tiny_in_shell.blocks[0]
    handle = block.register_forward_hook(speak)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            result = shell.run_cell_magic("scan", "", "hello world\n")
    finally:
        handle.remove()
    assert result is not None
    assert [str(w.message) for w in caught] == ["a module deep in the model warns"]

