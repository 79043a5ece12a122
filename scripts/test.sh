#!/usr/bin/env bash
# Run the whole test suite: unit, API (SQLite + PostgreSQL), Redis scale-out, e-mail servers, browsers.
set -euo pipefail
cd "$(dirname "$0")/.."
# Two workers on a 2-core machine; browser and multi-process tests are in the same run.
exec .venv/bin/pytest -n 2 --dist loadfile -q "$@"
