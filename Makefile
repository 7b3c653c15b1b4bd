# Two commands do all the set-up: `make demo` and `make test`.
# Each creates .venv when missing and (re)installs only when pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo session-demo test lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the CPU wheel of torch: a plain `torch` would pull the CUDA build
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python tools/demo.py

session-demo: $(STAMP)
	$(BIN)/python tools/session_demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -ra --durations=40 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check beira_rt offline tools tests
	$(BIN)/ruff format --check beira_rt offline tools tests

format: $(STAMP)
	$(BIN)/ruff format beira_rt offline tools tests
	$(BIN)/ruff check --fix beira_rt offline tools tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
