# The two commands: `make up` starts everything, `make test` runs every test.
# Each creates the virtual environment first when it is missing or stale.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: up test lint bench bench-peers clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Market Spine needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

up: $(BIN)/.installed
	$(BIN)/spine up

test: $(BIN)/.installed
	@scripts/ensure-chromium
	@scripts/ensure-promtool
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n auto

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python -m bench

# Market Spine beside procrastinate and pgqueuer, installed from the bench-only extra.
bench-peers: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench --peers

clean:
	rm -rf $(VENV) .spine .pytest_cache .mypy_cache .ruff_cache
