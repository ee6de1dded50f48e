# Two commands on a fresh machine: `make demo` runs the main job, `make test` the tests.
# Both create the virtual environment in .venv on first use: the demo needs the runtime,
# analytics, flows and the example's MCP server; the tests add the developer tools.
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed-demo: pyproject.toml
	@echo "setting up $(VENV) for the demo (first run only)"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.installed: pyproject.toml
	@echo "setting up $(VENV) for the tests (first run only)"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-demo

.PHONY: demo test lint bench
demo: $(VENV)/.installed-demo
	$(PY) -m examples.demo

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check runtime flows analytics tests benchmarks examples
	$(VENV)/bin/mypy
