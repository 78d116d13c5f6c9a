# fwstudy: `make figures` and `make test` are all a fresh machine needs; each creates .venv.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
# PROFILE names folders (results/, figures/, build/): a plain name, never a path (`../x`, `/abs`).
ifeq ($(shell printf '%s' '$(PROFILE)' | grep -Ex '[A-Za-z0-9][A-Za-z0-9_-]*'),)
$(error PROFILE='$(PROFILE)' is not a plain profile name (letters, digits, - and _); profiles: $(basename $(notdir $(wildcard parameters/*.yaml))))
endif
PARAMS := parameters/$(PROFILE).yaml
FORCE ?= 0
# Dask scheduler for the trials of figures/batch (empty: run here, or the profile's scheduler).
SCHEDULER ?=
BATCH_OPTIONS = $(if $(filter 1 true yes,$(FORCE)),--force) $(if $(SCHEDULER),--scheduler $(SCHEDULER))
# RETRY_FAILED=1 (or true/yes): re-measure stored trials that failed or timed out (an env variable
# read by fwstudy.harness.batch, passed to the notebooks by `figures`).
RETRY_FAILED ?=
NOTEBOOKS ?= $(sort $(wildcard notebooks/*.ipynb))
# Per profile: running smoke never overwrites quick's notebooks or figures (results/<profile>/ too).
OUT_NOTEBOOKS := build/$(PROFILE)/notebooks
OUT_FIGURES := figures/$(PROFILE)
# One id per `make` run: with FORCE=1, trials shared by several notebooks are measured once.
export FWSTUDY_RUN_ID := $(shell date +%s%N)
comma := ,
IS_PY311 := -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'

# The interpreter that creates .venv: python3.11 when it runs, else python3 (its version is
# checked before use). PYTHON=/path/to/python3.11 overrides. Evaluated only when .venv is built.
ifeq ($(origin PYTHON),undefined)
PYTHON = $(shell for p in python3.11 python3; do $$p $(IS_PY311) >/dev/null 2>&1 && { echo $$p; exit; }; done; echo python3)
endif

# .venv must be a working Python 3.11 environment; one built by another interpreter, or whose
# bin/python is broken or missing, is rebuilt by the first target that needs it.
VENV_OK := $(shell test -x $(PY) && $(PY) $(IS_PY311) >/dev/null 2>&1 && echo ok)

# The extras .venv was installed with are remembered in $(VENV)/.extras: later targets reuse
# them (a `make figures` after `make venv EXTRAS=gpu,dev` keeps the GPU build). EXTRAS=...
# given explicitly installs those; the default for a new .venv is cpu,dev.
ifeq ($(origin EXTRAS),undefined)
EXTRAS := $(strip $(shell cat $(VENV)/.extras 2>/dev/null || ls -t $(VENV)/.installed-* 2>/dev/null | head -n1 | sed 's|.*/\.installed-||; s|-|,|g'))
ifeq ($(EXTRAS),)
EXTRAS := cpu$(comma)dev
endif
endif
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.DEFAULT_GOAL := help
.PHONY: help venv test test-fast figures batch plan overhead lab lint clean distclean venv-rebuild

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PROFILE=smoke|quick|full (default quick), FORCE=1 re-measures,"
	@echo "             PARAMS=\"parameters/a.yaml parameters/b.yaml\" (batch; default the profile's file),"
	@echo "             SCHEDULER=tcp://host:8786 (send trials to a Dask cluster; default: run here),"
	@echo "             RETRY_FAILED=1 re-measures the trials that failed or timed out,"
	@echo "             EXTRAS=cpu,dev|gpu,dev (default: what .venv was built with, else cpu,dev),"
	@echo "             PYTHON=python3.11 (the interpreter that creates .venv)"

# Phony prerequisite of the stamp while .venv is not a working 3.11 environment.
venv-rebuild:

$(STAMP): pyproject.toml $(if $(VENV_OK),,venv-rebuild)
	@if ! { test -x $(PY) && $(PY) $(IS_PY311) >/dev/null 2>&1; }; then \
	  if [ -e $(VENV) ] || [ -L $(VENV) ]; then \
	    echo "$(VENV) is not a working Python 3.11 environment ($$($(PY) --version 2>&1 | head -n1 || true)): rebuilding it"; \
	    rm -rf $(VENV); \
	  fi; \
	  if ! $(PYTHON) $(IS_PY311) >/dev/null 2>&1; then \
	    echo "make: fwstudy needs Python 3.11, but '$(PYTHON)' is $$($(PYTHON) --version 2>&1 | head -n1): install python3.11 or run make PYTHON=/path/to/python3.11" >&2; \
	    exit 1; \
	  fi; \
	  echo "creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version 2>&1))"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@echo '$(EXTRAS)' > $(VENV)/.extras
	@touch $@

venv: $(STAMP) ## create .venv and install the project (done by every target that needs it)

test: $(STAMP) ## ruff, then all tests: unit tests, real trials and notebooks on the smoke profile
	$(PY) -m ruff check fwstudy tests
	$(PY) -m pytest

test-fast: $(STAMP) ## unit tests only (no framework trials, no notebooks)
	$(PY) -m pytest -m "not slow"

figures: $(STAMP) ## run every notebook on PROFILE: build/<profile>/notebooks/, figures/<profile>/
	@# fwstudy batch: papermill per notebook, skipping those whose inputs (code, parameters,
	@# the results they read) are unchanged since their last successful run (FORCE=1 runs all).
	@RETRY_FAILED="$(RETRY_FAILED)" PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m fwstudy batch \
	  --params $(PARAMS) --notebooks $(NOTEBOOKS) $(BATCH_OPTIONS)

batch: $(STAMP) ## papermill over notebooks x parameter files: make batch PARAMS="parameters/smoke.yaml parameters/quick.yaml"
	@RETRY_FAILED="$(RETRY_FAILED)" PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m fwstudy batch \
	  --params $(PARAMS) --notebooks $(NOTEBOOKS) $(BATCH_OPTIONS)

plan: $(STAMP) ## list the trials a run of PROFILE would measure, with estimated times
	@$(PY) -m fwstudy plan --profile $(PROFILE)

# The report only reads results/<profile>/, figures/<profile>/ and build/<profile>/notebooks/
# (FWSTUDY_ROOT=<dir> reads another checkout's): it measures nothing and imports no framework.
.PHONY: report
report: $(STAMP) ## static HTML report of PROFILE (claims' verdicts, figures, notebooks): build/<profile>/report/
	@$(PY) -m fwstudy.report --profile $(PROFILE)

overhead: $(STAMP) ## benchmark: runner loop vs a bare hand-written loop, per framework and workload
	$(PY) -m fwstudy.harness.overhead

# JupyterLab refuses to run as root (a container's usual user) without --allow-root.
lab: $(STAMP) ## open the notebooks in JupyterLab
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

lint: $(STAMP) ## ruff
	$(PY) -m ruff check fwstudy tests

clean: ## remove build/ and figures/ (keeps results/ and .venv)
	rm -rf build figures

distclean: clean ## also remove results/ and .venv
	rm -rf results $(VENV)
