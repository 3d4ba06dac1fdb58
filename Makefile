# Two commands set up a fresh machine: `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
PY := $(shell for p in python3.12 python3.11 python3; do command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3,11),(3,12)) else 1)' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STUDY ?= studies/faces-demo
# The torch pin lives in pyproject.toml (one source). TORCH_INDEX picks a wheel index, e.g. the CPU-only build:
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH := $(shell sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml)
TORCH_INDEX ?=
PYTEST := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -p no:cacheprovider

.PHONY: setup chromium lint format docs test test-fast screenshots demo bench load clean

$(STAMP): pyproject.toml
	@test -n "$(PY)" || (echo "error: Python 3.11 or 3.12 is required (none found on PATH)"; exit 1)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@test -n "$(TORCH)" || (echo "error: pyproject.toml names no torch==X.Y.Z pin"; exit 1)
	$(BIN)/pip install -q '$(TORCH)' $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e '.[test,ray]'
	$(BIN)/pip install -q --no-deps gan-face-generate==1.1.1
	touch $@

setup: $(STAMP)

chromium:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; fi

# ruff check + ruff format --check (settings in pyproject.toml). `make format` rewrites the tree to pass both:
# ruff format, then the safe lint fixes.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# the documentation site (mkdocs.yml, docs/) into site/; --strict: a broken link or missing page fails
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# one pytest process: tests that race writers or need a reference untouched by earlier tests start fresh
# interpreters themselves (tests/test_lock.py, tests/test_executors.py)
test: setup chromium lint docs
	$(PYTEST)

# the inner loop: no browser, no slow tests, no lint or docs
test-fast: setup
	$(PYTEST) -m "not browser and not slow"

# every dashboard page in headless Chromium, saved as PNG (tests/dashboards/test_screenshots.py)
screenshots: setup chromium
	SCREENSHOT_DIR=docs/img/screenshots $(PYTEST) tests/dashboards/test_screenshots.py

demo: setup
	$(BIN)/probe demo --out $(STUDY)

bench: setup
	$(BIN)/python -m benchmarks.run

load: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.load_dashboard $(if $(ROWS),--rows $(ROWS))

clean:
	rm -rf $(VENV) studies site .pytest_cache
