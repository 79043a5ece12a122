"""Search benchmark: conversation search over 5,000,000 messages in PostgreSQL.

GET /api/v1/conversations?q=... on a real `hilo serve`, on the inbox data set (see
inbox_data.py): a common word, a quoted phrase and a customer's e-mail address (the
targets), plus a rare word (a tracking number), a middling word and a first name, to
show how the cost follows how many messages match.

    python bench/search_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from common import pg_url, statements_per_request, status, time_requests, write_result
from inbox_data import FULL, QUICK, SEARCH_PHRASE, SEARCH_WORD, DataSet, ensure, search_email, served

TARGET_P99_MS = 100.0
TARGETED = ("word", "phrase", "email")


def _rare_word(data: DataSet) -> str:
    """A tracking number that appears in a few messages."""
    with psycopg.connect(pg_url(data.database)) as conn:
        row = conn.execute(
            "SELECT substring(body from 'ES[0-9]{10}') FROM messages WHERE body LIKE '%tracking number ES%' "
            "ORDER BY id LIMIT 1"
        ).fetchone()
    if row is None or row[0] is None:
        raise RuntimeError("no tracking number in the data set")
    return str(row[0])


def _matching_messages(data: DataSet, query: str) -> int:
    with psycopg.connect(pg_url(data.database)) as conn:
        conn.execute("SET work_mem = '256MB'")
        row = conn.execute(
            "SELECT count(*) FROM messages WHERE to_tsvector('simple'::regconfig, coalesce(body, '')) "
            "@@ websearch_to_tsquery('simple'::regconfig, %s)",
            (query,),
        ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a 50,000-conversation data set, 50 requests each")
    args = parser.parse_args()
    data = QUICK if args.quick else FULL
    generation = ensure(data)
    terms = {
        "word": SEARCH_WORD,
        "phrase": SEARCH_PHRASE,
        "email": search_email(data),
        "rare_word": _rare_word(data),
        "middling_word": "canada",
        "first_name": "Ximena",
    }
    count = 50 if args.quick else 300
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hilo-search-") as work, served(data, Path(work)) as hilo:
        for name, term in terms.items():
            status(f"search: {name} {term!r}")
            path = "/api/v1/conversations?" + urlencode({"q": term})
            latency = time_requests(hilo.server.url, hilo.admin_token, [path] * count, warmup=5)
            results[name] = {
                "query": term,
                "matching_messages": _matching_messages(data, term),
                "latency": latency,
                "sql_statements": statements_per_request(hilo.env, hilo.admin_token, [path] * 5),
            }
            status(f"  p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms")
    targets = [
        {
            "what": f"search {name} ({results[name]['query']}): p99",
            "target": f"<= {TARGET_P99_MS:g} ms",
            "measured": f"{results[name]['latency']['p99_ms']} ms",
            "met": results[name]["latency"]["p99_ms"] <= TARGET_P99_MS,
        }
        for name in TARGETED
    ]
    write_result(
        "search",
        {
            "quick": args.quick,
            "data_set": {
                "database": data.database,
                "conversations": data.conversations,
                "messages": data.messages,
                **generation,
            },
            "cases": results,
            "targets": targets,
        },
    )


if __name__ == "__main__":
    main()
