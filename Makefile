# twinforge: the two commands of the README are `make demo` and `make test`.
# Each sets up its own virtual environment; torch is pinned by constraints.txt
# (the local CPU wheel), never by the package metadata.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PIPFLAGS := --disable-pip-version-check -q -c constraints.txt
DEMO_DIR ?= demo-output

.PHONY: demo test lint format venv venv-dev clean

demo: $(VENV)/.installed
	$(BIN)/twinforge demo --workdir $(DEMO_DIR)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIPFLAGS) --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install $(PIPFLAGS) -e ".[web]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install $(PIPFLAGS) -e ".[dev]"
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache build dist
