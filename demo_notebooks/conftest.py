"""nbval runs every demo notebook top to bottom in a fresh kernel (the test command's
``--nbval-lax``: tagged cells are compared with their stored outputs). nbval fails a cell on
an ``error`` message, but a magic's UsageError reaches the front end only as text on stderr
(IPython prints it instead of raising): this hook fails those cells too, so one run of each
notebook catches every error."""

from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    for output in getattr(item, "test_outputs", None) or []:
        text = output.get("text", "") if output.get("output_type") == "stream" and output.get("name") == "stderr" else ""
        if "UsageError" in text:
            raise AssertionError(f"a magic failed in this cell: {text.strip().splitlines()[-1]}")
    return result
