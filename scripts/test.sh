#!/usr/bin/env bash
# Run the whole test suite: unit, API (SQLite + PostgreSQL), Redis scale-out, e-mail servers, browsers.
set -euo pipefail
cd "$(dirname "$0")/.."
# Three workers on a 2-core machine: much of the suite waits on servers, browsers and PostgreSQL.
.venv/bin/pytest -n 3 --dist loadfile -q -m "not serial" "$@"
# Tests that measure how fast the server answers run alone, on an otherwise idle machine.
status=0
.venv/bin/pytest -q -m serial "$@" || status=$?
# 5: no serial test among the ones asked for.
[ "$status" -eq 0 ] || [ "$status" -eq 5 ] || exit "$status"
