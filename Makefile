# Quick start: `make demo` (set up, then run the CPU demo) and `make test`
# (set up, then run the test suite). `make setup` alone builds the
# environment in $(VENV).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export MMSPD_VENV := $(abspath $(VENV))

.PHONY: setup demo test

setup:
	bash tools/setup_env.sh

demo: setup
	$(PYTHON) demo/run_demo.py

test: setup
	$(PYTHON) -m pytest tests
