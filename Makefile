# dycon-book: one entry point for people and CI. `make test` alone installs everything it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test lint bench clean-venv

setup: $(STAMP)

# Re-install only when the dependency list changes; an existing venv is reused.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check dycon tests bench
	$(VENV)/bin/ruff format --check dycon tests bench

bench: setup
	$(PY) bench/losses.py
	$(PY) bench/metrics.py
	$(PY) bench/train_step.py

clean-venv:
	rm -rf $(VENV)
