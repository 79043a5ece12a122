# Hilo: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` installs Hilo alone; `make test`, `lint` and `bench` add the development tools.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
export HILO_DATA_DIR ?= var
# Where `make run` listens: HOST/PORT, else HILO_HOST/HILO_PORT, else 127.0.0.1:8000.
HOST ?= $(or $(HILO_HOST),127.0.0.1)
PORT ?= $(or $(HILO_PORT),8000)
# Every step of `make run` (the demo's links too) uses that address.
run: export HILO_HOST := $(HOST)
run: export HILO_PORT := $(PORT)

.PHONY: run test lint bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

## run: set up, migrate the embedded SQLite database, seed demo data, serve on http://$(HOST):$(PORT)
run: $(RUN_STAMP)
	$(BIN)/hilo migrate
	$(BIN)/hilo demo
	@echo ""
	@echo "  Starting Hilo on $(HOST):$(PORT); it prints its address once it answers."
	@echo ""
	$(BIN)/hilo serve

## test: set up and run the whole suite (SQLite and PostgreSQL, Redis, browsers)
test: $(DEV_STAMP)
	bash scripts/test.sh

## lint: ruff (lint + format check), mypy and the import layers (import-linter)
lint: $(DEV_STAMP)
	$(BIN)/ruff check hilo tests bench
	$(BIN)/ruff format --check hilo tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

## bench: run the benchmarks; results in bench/results/*.json and bench/README.md
bench: $(DEV_STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
