# The two commands a new user needs: `make run` and `make test`. Both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= default
RUN_ARGS ?=
LAB_PORT ?= 8888
LAB_ARGS ?=
LAB_OVERRIDES := {"@jupyterlab/docmanager-extension:plugin": {"autosave": false}}
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: run test setup venv data browser lab lint format bench clean help reference

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

run: setup  ## set up if needed, then run the pipeline with PROFILE (default: default)
	@echo "==> running the pipeline, profile '$(PROFILE)' (output under runs/)"
	$(PY) -m fmnist_lib run --profile $(PROFILE) $(RUN_ARGS)

test: setup browser  ## set up if needed, then run every test (unit, nbval, end to end)
	@echo "==> running the tests: unit, notebooks under nbval, end-to-end pipeline"
	@# 04_results and 05_presentation run under nbval against the reference run instead
	@# (tests/test_reference.py): their committed outputs are that run's.
	FMNIST_RUNS_DIR=$$(mktemp -d -t fmnist-test-runs.XXXX) $(PY) -m pytest tests notebooks \
		--ignore=notebooks/04_results.ipynb --ignore=notebooks/05_presentation.ipynb \
		--nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg --durations=15

reference: run  ## run the pipeline, then make that run the committed reference (reports/)
	$(PY) -m fmnist_lib reference --latest

setup: venv data

venv: $(STAMP)  ## create .venv and install the pinned dependencies

$(STAMP): pyproject.toml
	@if [ -x $(PY) ]; then echo "==> reusing $(VENV)"; else \
		echo "==> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); fi
	@echo "==> installing pinned dependencies from pyproject.toml (this takes a few minutes the first time)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,lab]'
	$(PY) -m ipykernel install --sys-prefix --name fmnist --display-name "Python (fmnist)" >/dev/null
	@touch $(STAMP)
	@echo "==> $(VENV) ready"

data: $(STAMP)  ## make the Fashion-MNIST files available (Debian package when root) and verify them
	@if $(PY) -m fmnist_lib data --quiet; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "==> installing Debian package dataset-fashion-mnist (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
		$(PY) -m fmnist_lib data; \
	else \
		echo "==> no local copy; not root or no apt-get: the first run downloads through Keras"; \
	fi

browser:  ## install Debian's chromium for the slide-deck browser test (root + apt only)
	@if command -v chromium >/dev/null; then echo "==> chromium present: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "==> installing Debian package chromium (apt-get) for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "==> chromium missing and cannot be installed here: the browser test will be skipped"; fi

lab: setup  ## open JupyterLab on notebooks/ with the project's kernel, autosave off (LAB_PORT, LAB_ARGS)
	@# Autosave off, as a default of this venv's JupyterLab (an overrides.d file of its own: a
	@# user's own overrides.json and settings stay theirs): Run All leaves the committed
	@# notebooks as they are, outputs go to runs/interactive/, and only a save writes the file.
	@settings=$$($(PY) -c 'from jupyterlab.commands import get_app_dir; print(get_app_dir())')/settings/overrides.d; \
	mkdir -p "$$settings" && printf '%s\n' '$(LAB_OVERRIDES)' > "$$settings/fmnist.json"
	@echo "==> autosave is off: running a notebook changes nothing in notebooks/ until you save it (Ctrl-S)"
	@token=$${JUPYTER_TOKEN:-$$($(PY) -c 'import secrets; print(secrets.token_hex(24))')}; \
	root=; if [ "$$(id -u)" = 0 ]; then root=--allow-root; \
		echo "==> running as root: passing --allow-root to JupyterLab"; fi; \
	echo "==> JupyterLab on notebooks/, kernel 'Python (fmnist)'; Ctrl-C stops it. Open:"; \
	echo "    http://localhost:$(LAB_PORT)/lab?token=$$token"; \
	JUPYTER_TOKEN=$$token exec $(VENV)/bin/jupyter lab --notebook-dir=notebooks \
		--port=$(LAB_PORT) --ServerApp.port_retries=0 $$root $(LAB_ARGS)

lint: venv  ## ruff check and format check (code and notebooks)
	$(VENV)/bin/ruff check fmnist_lib tests benchmarks
	$(VENV)/bin/ruff format --check fmnist_lib tests benchmarks

format: venv  ## ruff format
	$(VENV)/bin/ruff format fmnist_lib tests benchmarks

bench: setup  ## run the CPU benchmarks (results in benchmarks/results/, machine stated)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_cli.py
	$(PY) benchmarks/bench_eda.py
	$(PY) benchmarks/bench_cpu_training.py
	$(PY) benchmarks/bench_feature_cache.py 4096
	$(PY) benchmarks/make_benchmarks_md.py

clean:  ## remove caches (keeps .venv and runs/)
	rm -rf .cache .pytest_cache .ruff_cache .hypothesis
