# fwstudy: `make figures` and `make test` are all a fresh machine needs; each creates .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= cpu,dev
PROFILE ?= quick
PARAMS := parameters/$(PROFILE).yaml
FORCE ?= 0
NOTEBOOKS ?= $(sort $(wildcard notebooks/*.ipynb))
# One id per `make` run: with FORCE=1, trials shared by several notebooks are measured once.
export FWSTUDY_RUN_ID := $(shell date +%s%N)
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.DEFAULT_GOAL := help
.PHONY: help venv test test-fast figures overhead lab lint clean distclean

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PROFILE=smoke|quick|full (default quick), FORCE=1 re-measures, EXTRAS=cpu,dev|gpu,dev"

$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -e '.[$(EXTRAS)]'
	@touch $@

venv: $(STAMP) ## create .venv and install the project (done by every target that needs it)

test: $(STAMP) ## ruff, then all tests: unit tests, real trials and notebooks on the smoke profile
	$(PY) -m ruff check fwstudy tests
	$(PY) -m pytest

test-fast: $(STAMP) ## unit tests only (no framework trials, no notebooks)
	$(PY) -m pytest -m "not slow"

figures: $(STAMP) ## run every notebook with papermill on parameters/$(PROFILE).yaml into build/notebooks/
	@$(PY) -m fwstudy check-profile $(PARAMS)
	@mkdir -p build/notebooks figures
	@failed=""; \
	for nb in $(NOTEBOOKS); do \
	  out="build/notebooks/$$(basename $$nb)"; \
	  echo "==> $$nb (profile $(PROFILE)) -> $$out"; \
	  PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m papermill "$$nb" "$$out" \
	    -f $(PARAMS) $(if $(filter 1 true yes,$(FORCE)),-p force True) \
	    --log-output --progress-bar --request-save-on-cell-execute \
	    || failed="$$failed $$nb"; \
	done; \
	if [ -n "$$failed" ]; then echo "make figures: failed notebooks:$$failed (see the papermill errors above)"; exit 1; fi; \
	echo "figures written to figures/; executed notebooks in build/notebooks/"

overhead: $(STAMP) ## benchmark: runner loop vs a bare hand-written loop, per framework and workload
	$(PY) -m fwstudy.harness.overhead

lab: $(STAMP) ## open the notebooks in JupyterLab
	$(VENV)/bin/jupyter lab notebooks/

lint: $(STAMP) ## ruff
	$(PY) -m ruff check fwstudy tests

clean: ## remove build/ and figures/ (keeps results/ and .venv)
	rm -rf build figures

distclean: clean ## also remove results/ and .venv
	rm -rf results $(VENV)
