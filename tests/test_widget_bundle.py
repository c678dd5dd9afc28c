"""The bundles shipped in neuro_magics/static must be exactly what widgets_js/src builds to."""

import shutil
import subprocess
from pathlib import Path

from required_tools import missing_tool

WIDGETS_JS = Path(__file__).resolve().parent.parent / "widgets_js"


def test_committed_bundles_match_a_fresh_build():
    if shutil.which("node") is None:
        missing_tool("node is not installed")
    if not (WIDGETS_JS / "node_modules" / "esbuild").is_dir():
        missing_tool("esbuild is not installed: run `npm ci` in widgets_js/")
    result = subprocess.run(["node", "build.mjs", "--check"], cwd=WIDGETS_JS, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
