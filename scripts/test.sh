#!/usr/bin/env bash
# Run the whole test suite: unit, API (SQLite + PostgreSQL), Redis scale-out, e-mail servers, browsers.
set -euo pipefail
cd "$(dirname "$0")/.."
# Three workers on a 2-core machine: much of the suite waits on servers, browsers and PostgreSQL.
exec .venv/bin/pytest -n 3 --dist loadfile -q "$@"
