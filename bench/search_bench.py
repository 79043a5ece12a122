"""Search benchmark: conversation search over 5,000,000 messages in PostgreSQL.

GET /api/v1/conversations?q=... on a real `hilo serve`, on the inbox data set (see
inbox_data.py), searched the way agents type: a common, a middling and a rare word (a
tracking number), a quoted phrase, a first name, a customer's e-mail address, part of one
and a domain, a phone number without its country code and with 00 before it. The server
keeps the default region (US), so the Spanish numbers are found by their national digits
alone. Every case has the same target, p99 at most 100 ms.

    python bench/search_bench.py [--quick] [--database NAME]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from common import pg_url, statements_per_request, status, time_requests, write_result
from inbox_data import (
    FULL,
    QUICK,
    SEARCH_EMAIL_CONTACT,
    SEARCH_PHRASE,
    SEARCH_WORD,
    DataSet,
    ensure,
    search_email,
    served,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hilo.conversations.models import Conversation
from hilo.conversations.search import search_clause
from hilo.db.engine import make_engine

TARGET_P99_MS = 100.0
REGION = "US"  # hilo serve's default, which the benchmark keeps
WHAT = {
    "common_word": "common word",
    "phrase": "quoted phrase",
    "middling_word": "middling word",
    "rare_word": "rare word",
    "first_name": "first name",
    "email": "e-mail address",
    "partial_email": "part of an e-mail address",
    "domain": "e-mail domain",
    "national_phone": "phone number without country code",
    "phone_0034": "phone number with 0034",
}


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


def _spanish_phone(data: DataSet) -> str:
    """The national digits of the first Spanish mobile number from the searched contact on."""
    start = min(SEARCH_EMAIL_CONTACT, data.contacts // 2)
    with psycopg.connect(pg_url(data.database)) as conn:
        row = conn.execute(
            "SELECT value FROM identities WHERE kind = 'phone' AND value LIKE '+346%%' AND contact_id >= %s "
            "ORDER BY contact_id LIMIT 1",
            (start,),
        ).fetchone()
    if row is None:
        raise RuntimeError("no Spanish phone number in the data set")
    return str(row[0]).removeprefix("+34")


def _matching_conversations(data: DataSet, query: str) -> int:
    """How many conversations the search matches in all (messages, names, identities)."""
    engine = make_engine(pg_url(data.database))
    try:
        with Session(engine) as session:
            found = select(func.count()).select_from(Conversation).where(search_clause("postgresql", query, REGION))
            return int(session.execute(found).scalar_one())
    finally:
        engine.dispose()


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
    parser.add_argument("--database", help="the PostgreSQL database that holds (or will hold) the data set")
    args = parser.parse_args()
    data = QUICK if args.quick else FULL
    if args.database:
        data = DataSet(args.database, data.conversations)
    generation = ensure(data)
    email = search_email(data)
    local, _, domain = email.partition("@")
    phone = _spanish_phone(data)
    terms = {
        "common_word": SEARCH_WORD,
        "phrase": SEARCH_PHRASE,
        "middling_word": "canada",
        "rare_word": _rare_word(data),
        "first_name": "Ximena",
        "email": email,
        "partial_email": local.split(".", 1)[1],  # "fernandez.123460" of "isabel.fernandez.123460@..."
        "domain": domain,
        "national_phone": phone,
        "phone_0034": "0034" + phone,
    }
    count = 50 if args.quick else 300
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hilo-search-") as work, served(data, Path(work)) as hilo:
        for name, term in terms.items():
            status(f"search: {name} {term!r}")
            load = round(os.getloadavg()[0], 2)
            path = "/api/v1/conversations?" + urlencode({"q": term})
            latency = time_requests(hilo.server.url, hilo.admin_token, [path] * count, warmup=5)
            results[name] = {
                "what": WHAT[name],
                "query": term,
                "matching_messages": _matching_messages(data, term),
                "matching_conversations": _matching_conversations(data, term),
                "latency": latency,
                "load_average_1m_before": load,
                "sql_statements": statements_per_request(hilo.env, hilo.admin_token, [path] * 5),
            }
            status(f"  p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms")
    targets = [
        {
            "what": f"search {WHAT[name]} ({results[name]['query']}): p99",
            "target": f"<= {TARGET_P99_MS:g} ms",
            "measured": f"{results[name]['latency']['p99_ms']} ms",
            "met": results[name]["latency"]["p99_ms"] <= TARGET_P99_MS,
        }
        for name in terms
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
