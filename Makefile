# Two commands do all the set-up on a fresh machine:
#   make train   # installs into .venv, then trains Deep Nash-Q on configs/cournot_duopoly.yaml
#   make test    # installs into .venv, then runs the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/cournot_duopoly.yaml

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first (it lies on local disk here); pyproject's range accepts it.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

.PHONY: install train test lint bench
install: $(VENV)/.installed

train: $(VENV)/.installed
	$(VENV)/bin/nashrl train $(CONFIG)

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check nashrl tests benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/solver.py
