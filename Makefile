# mlops-events: run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (auto: one per core); tests/conftest.py groups the slow ones.
TEST_WORKERS ?= auto
LOCK_ARGS ?=

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z][a-z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

# The venv holds exactly the versions in uv.lock (uv when it can be had, pip otherwise).
$(STAMP): pyproject.toml uv.lock scripts/venv.sh deploy/lockfile.py
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/venv.sh install dev
	@touch $(STAMP)

install: $(STAMP) ## Create .venv with the locked versions of every extra (uv.lock)

lock: ## Re-resolve uv.lock after editing pyproject.toml (LOCK_ARGS='--upgrade-package NAME' to upgrade one)
	PYTHON=$(PYTHON) scripts/venv.sh lock $(LOCK_ARGS)

lint: $(STAMP) ## ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: $(STAMP) ## Format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(STAMP) ## Set up and run lint, type checks and the whole test suite
	$(MAKE) --no-print-directory lint
	@# Hundreds of test subprocesses import the project: give them bytecode, where PYTHONDONTWRITEBYTECODE
	@# (set here and in CI) means nothing compiled at run time is kept. Hash-checked: never stale.
	$(PY) -m compileall -q -j0 --invalidation-mode checked-hash events functions pipelines stack mlops_cli deploy bench
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15 $(PYTEST_ARGS)

test-fast: $(STAMP) ## Only the fast tests (no emulators, no kfp.local)
	$(PY) -m pytest -m 'not slow' $(PYTEST_ARGS)

reliability: $(STAMP) ## Send >= 1000 events with duplicates, disorder and 20% Vertex faults; fail if a run is lost or doubled
	$(VENV)/bin/mlops-events reliability --events 1000 --fault-rate 0.2

compile: $(STAMP) ## Compile every pipeline to build/templates with a manifest of digests
	$(VENV)/bin/mlops-events compile --out build/templates

bundle: $(STAMP) ## Build the deployable functions bundle in build/bundle
	$(VENV)/bin/mlops-events bundle --out build/bundle

demo: $(STAMP) ## The closed loop on a fresh local stack (emulators, functions, kfp.local); prints the lineage and report
	$(VENV)/bin/mlops-events demo

bench: $(STAMP) ## Benchmarks vs the naive baseline: table + bench/results/latest.json (~5 min)
	$(PY) -m bench.run

clean: ## Remove build outputs (keeps .venv)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install lock lint fmt test test-fast reliability compile bundle demo bench clean
