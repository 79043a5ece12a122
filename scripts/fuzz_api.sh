#!/usr/bin/env bash
# Fuzz the REST API from its OpenAPI document with schemathesis, on PostgreSQL, as an admin.
#
# Serves Hilo on a scratch PostgreSQL database, signs in with a personal token and reports
# every answer that is a server error (5xx). Not part of the test suite: it takes minutes.
#
#   bash scripts/fuzz_api.sh                 # 25 examples per operation
#   MAX_EXAMPLES=5 bash scripts/fuzz_api.sh  # quicker
#
# schemathesis lives in its own virtualenv (var/fuzz-venv) so its dependencies never mix
# with Hilo's; the version is pinned here (docs/dependencies.md).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_URL=${HILO_FUZZ_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}
MAX_EXAMPLES=${MAX_EXAMPLES:-25}
PORT=${PORT:-8765}
DB=hilo_fuzz_$$
WORK=$(mktemp -d)
FUZZ_VENV="$ROOT/var/fuzz-venv"
PY="$ROOT/.venv/bin/python"

if [ ! -x "$FUZZ_VENV/bin/schemathesis" ] || ! "$FUZZ_VENV/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$FUZZ_VENV"
  "$FUZZ_VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

"$PY" - "$PG_URL" "$DB" create <<'PYTHON'
import sys, psycopg
url, name, _ = sys.argv[1:]
with psycopg.connect(url, autocommit=True) as admin:
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
PYTHON

SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  "$PY" - "$PG_URL" "$DB" drop <<'PYTHON' || true
import sys, psycopg
url, name, _ = sys.argv[1:]
with psycopg.connect(url, autocommit=True) as admin:
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
PYTHON
  rm -rf "$WORK"
}
trap cleanup EXIT

export HILO_DATABASE_URL="${PG_URL%/*}/$DB"
export HILO_DATA_DIR="$WORK/data"
export HILO_SECRET_KEY=fuzz-secret-key
export HILO_LOG_LEVEL=WARNING
export HILO_LOGIN_RATE_LIMIT=100000
HILO="$ROOT/.venv/bin/hilo"

"$HILO" migrate >/dev/null
"$HILO" agents create --email admin@example.com --name Admin --role admin --password fuzz-admin-password >/dev/null
TOKEN=$("$HILO" tokens create --email admin@example.com --name fuzz | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])')

"$HILO" serve --host 127.0.0.1 --port "$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

set +e
"$FUZZ_VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/api/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error \
  --max-examples "$MAX_EXAMPLES" \
  --exclude-path-regex '^/webhooks/' \
  --workers 2 \
  --suppress-health-check all
STATUS=$?
set -e

echo
echo "Server errors logged by Hilo:"
grep -E "Traceback|Exception in ASGI|ERROR" "$WORK/server.log" | sort | uniq -c | sort -rn | head -40 || echo "  none"
exit $STATUS
