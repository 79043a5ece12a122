# Hilo: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HILO_DATA_DIR ?= var

.PHONY: run test lint bench demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: set up, migrate the embedded SQLite database, seed demo data, serve on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/hilo migrate
	$(BIN)/hilo demo
	@echo ""
	@echo "  Hilo is starting at http://127.0.0.1:8000"
	@echo "  Agent inbox: http://127.0.0.1:8000/inbox  (administration: http://127.0.0.1:8000/admin)"
	@echo "  Sign in as admin@example.com / hilo-demo-password  (API docs: http://127.0.0.1:8000/api/docs)"
	@echo ""
	$(BIN)/hilo serve --host 127.0.0.1 --port 8000

## test: set up and run the whole suite (SQLite and PostgreSQL, Redis, browsers)
test: $(STAMP)
	bash scripts/test.sh

## lint: ruff (lint + format check), mypy and the import layers (import-linter)
lint: $(STAMP)
	$(BIN)/ruff check hilo tests bench
	$(BIN)/ruff format --check hilo tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

## bench: run the benchmarks; results in bench/results/*.json and bench/README.md
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
