"""Tests that need chromium, playwright, node or the browser assets skip without them, except under
``make test`` (NEURO_MAGICS_REQUIRE_TOOLS=1), where a missing tool fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from required_tools import REQUIRE_TOOLS, missing_tool

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("value, outcome", [("", pytest.skip.Exception), ("0", pytest.skip.Exception),
                                            ("1", pytest.fail.Exception)])
def test_a_missing_tool_skips_unless_tools_are_required(monkeypatch, value, outcome):
    monkeypatch.setenv(REQUIRE_TOOLS, value)
    with pytest.raises(outcome, match="chromium not found"):
        missing_tool("chromium not found")


def test_make_test_fails_when_node_and_chromium_are_missing(tmp_path):
    """The bundle test (needs node) and a browser test (needs chromium) fail, not skip, when required."""
    env = {**os.environ, "PATH": str(tmp_path), REQUIRE_TOOLS: "1", "NEURO_MAGICS_CHROMIUM": str(tmp_path / "none"),
           "NEURO_MAGICS_BROWSER_ASSETS": str(tmp_path / "assets")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
         str(TESTS / "test_widget_bundle.py"), str(TESTS / "browser" / "test_figure_colors.py")],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert "1 failed" in done.stdout and "1 error" in done.stdout and "skipped" not in done.stdout, done.stdout[-3000:]
    assert "node is not installed" in done.stdout and "browser JS assets missing" in done.stdout
