# Two commands set up a fresh machine: `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
PY := $(shell for p in python3.12 python3.11 python3; do command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3,11),(3,12)) else 1)' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STUDY ?= studies/faces-demo

.PHONY: setup chromium test demo bench load readme clean

$(STAMP): pyproject.toml
	@test -n "$(PY)" || (echo "error: Python 3.11 or 3.12 is required (none found on PATH)"; exit 1)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,ray]'
	$(BIN)/pip install -q --no-deps gan-face-generate==1.1.1
	touch $@

setup: $(STAMP)

chromium:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; fi

# tests/test_executors.py (a Ray cluster) and tests/test_lock.py (os.fork of the test process) each run in a
# process of their own: forking a process that holds other threads' runtime state is not safe.
ISOLATED := tests/test_executors.py tests/test_lock.py

test: setup chromium
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -p no:cacheprovider $(foreach t,$(ISOLATED),--ignore=$(t))
	for t in $(ISOLATED); do OMP_NUM_THREADS=1 $(BIN)/python -m pytest -p no:cacheprovider $$t || exit 1; done

demo: setup
	$(BIN)/probe demo --out $(STUDY)

bench: setup
	$(BIN)/python -m benchmarks.run

load: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.load_dashboard $(if $(ROWS),--rows $(ROWS))

readme:
	for f in docs/readme/*.md; do cat $$f; echo; done > README.md

clean:
	rm -rf $(VENV) studies .pytest_cache
