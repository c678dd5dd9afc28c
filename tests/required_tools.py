"""Tests that need an outside tool (chromium, playwright, node, the fetched JS assets, Ray) skip
without it on a developer's machine, but fail under ``make test``, which sets
NEURO_MAGICS_REQUIRE_TOOLS=1: there a missing tool is a broken setup, not a pass."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_TOOLS = "NEURO_MAGICS_REQUIRE_TOOLS"


def tools_required() -> bool:
    return os.environ.get(REQUIRE_TOOLS, "") not in ("", "0")


def missing_tool(reason: str) -> None:
    """Skip (or, when tools are required, fail) the current test because ``reason``."""
    if tools_required():
        pytest.fail(f"{reason} ({REQUIRE_TOOLS} is set: every tool the tests use must be installed)", pytrace=False)
    pytest.skip(reason)


CHROMIUM = os.environ.get("NEURO_MAGICS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium() -> Iterator:
    """Debian's headless chromium driven by playwright (a session fixture yields from this)."""
    try:
        from playwright import sync_api
    except ImportError:
        missing_tool("the playwright package is not installed (make browser)")
    if not Path(CHROMIUM).exists():
        missing_tool(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
