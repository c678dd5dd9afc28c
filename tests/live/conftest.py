"""Live front ends: a real jupyter-server (JupyterLab 4 and Notebook 7) on 127.0.0.1, a real
kernel, driven by Debian's chromium through playwright.

A session-scoped server serves a temporary folder; each test writes the notebook it needs
there and opens it in /lab or /notebooks. Without its tools the suite fails when
NEURO_MAGICS_REQUIRE_TOOLS is set (as `make test` does) and skips otherwise.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from required_tools import missing_tool

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory):
    """(root folder, base URL) of a token-less jupyter server with JupyterLab and Notebook 7."""
    try:
        import jupyterlab  # noqa: F401
        import notebook  # noqa: F401
    except ImportError:
        missing_tool("jupyterlab and notebook are not installed in this environment (make live)")
    root = tmp_path_factory.mktemp("live")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "HF_HUB_OFFLINE": "1", "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces")}
    log = open(root / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--IdentityProvider.token=", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--ServerApp.root_dir={root}",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"jupyter lab did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield root, base
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture
def page(browser, jupyter_server, request):
    """A fresh page that refuses every request outside the local server and records page errors."""
    _, base = jupyter_server
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.refused = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))

    def only_local(route):
        if route.request.url.startswith(base) or route.request.url.startswith("ws://127.0.0.1"):
            route.continue_()
        else:
            page.refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(ARTIFACTS / f"live-{request.node.name}.png"), full_page=True)
    finally:
        context.close()
