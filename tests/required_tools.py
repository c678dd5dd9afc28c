"""Tests that need an outside tool (chromium, playwright, node, the fetched JS assets) skip
without it on a developer's machine, but fail under ``make test``, which sets
NEURO_MAGICS_REQUIRE_TOOLS=1: there a missing tool is a broken setup, not a pass."""

from __future__ import annotations

import os

import pytest

REQUIRE_TOOLS = "NEURO_MAGICS_REQUIRE_TOOLS"


def tools_required() -> bool:
    return os.environ.get(REQUIRE_TOOLS, "") not in ("", "0")


def missing_tool(reason: str) -> None:
    """Skip (or, when tools are required, fail) the current test because ``reason``."""
    if tools_required():
        pytest.fail(f"{reason} ({REQUIRE_TOOLS} is set: every tool the tests use must be installed)", pytrace=False)
    pytest.skip(reason)
