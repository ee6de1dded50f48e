# Two commands on a fresh machine: `make demo` runs the main job, `make test` the tests.
# Both create the virtual environment in .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: demo test lint bench
demo: $(VENV)/.installed
	$(PY) -m examples.demo

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check runtime flows analytics tests benchmarks examples
	$(VENV)/bin/mypy
