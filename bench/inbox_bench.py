"""Inbox benchmark: the inbox list and a conversation's timeline with 1,000,000 conversations.

The data set (5,000,000 messages, PostgreSQL database `hilo_bench`, see inbox_data.py)
is generated once and kept. A real `hilo serve` answers the REST endpoints; one client
times hundreds of requests of each kind over a keep-alive connection (warm caches: the
data set fits in this machine's memory). SQL statements per request come from the same
requests run through the app in-process with a statement counter.

    python bench/inbox_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path
from typing import Any

from common import statements_per_request, status, time_requests, write_result
from inbox_data import FULL, QUICK, TEAMS, DataSet, ensure, served

TARGET_P99_MS = 20.0


def cases(data: DataSet, rng: random.Random, count: int) -> dict[str, tuple[str, str, list[str]]]:
    """name -> (who, description, request paths)."""
    agents = range(3, 3 + 6 * TEAMS)
    return {
        "open_assigned_to_agent": (
            "admin",
            "25 most recent open conversations of one agent (status=open&assignee=<id>)",
            [f"/api/v1/conversations?status=open&assignee={rng.choice(agents)}" for _ in range(count)],
        ),
        "agent_own_open": (
            "agent",
            "an agent's own open conversations (status=open&assignee=me)",
            ["/api/v1/conversations?status=open&assignee=me"] * count,
        ),
        "agent_team_open": (
            "agent",
            "an agent's team queue (status=open&team=<team>)",
            ["/api/v1/conversations?status=open&team=1"] * count,
        ),
        "all_open_admin": (
            "admin",
            "every open conversation, newest first (status=open)",
            ["/api/v1/conversations?status=open"] * count,
        ),
        "unassigned_open_label": (
            "admin",
            "unassigned open conversations with a label (status=open&assignee=none&label=vip)",
            ["/api/v1/conversations?status=open&assignee=none&label=vip"] * count,
        ),
        "timeline": (
            "admin",
            "one conversation's timeline (/conversations/<id>/messages)",
            [f"/api/v1/conversations/{rng.randint(1, data.conversations)}/messages" for _ in range(count)],
        ),
        "contact_panel": (
            "admin",
            "the contact panel (/contacts/<id>)",
            [f"/api/v1/contacts/{rng.randint(1, data.contacts)}" for _ in range(count)],
        ),
    }


TARGETED = ("open_assigned_to_agent", "agent_own_open", "agent_team_open", "all_open_admin", "timeline")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a 50,000-conversation data set, 100 requests each")
    args = parser.parse_args()
    data = QUICK if args.quick else FULL
    generation = ensure(data)
    rng = random.Random(2)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hilo-inbox-") as work, served(data, Path(work)) as hilo:
        tokens = {"admin": hilo.admin_token, "agent": hilo.agent_token}
        for name, (who, description, paths) in cases(data, rng, 100 if args.quick else 500).items():
            status(f"inbox: {name}")
            latency = time_requests(hilo.server.url, tokens[who], paths)
            results[name] = {
                "who": who,
                "what": description,
                "latency": latency,
                "sql_statements": statements_per_request(hilo.env, tokens[who], paths[:20]),
            }
            status(f"  p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms")
    targets = [
        {
            "what": f"{name}: p99",
            "target": f"<= {TARGET_P99_MS:g} ms",
            "measured": f"{results[name]['latency']['p99_ms']} ms",
            "met": results[name]["latency"]["p99_ms"] <= TARGET_P99_MS,
        }
        for name in TARGETED
    ]
    write_result(
        "inbox",
        {
            "quick": args.quick,
            "data_set": {
                "database": data.database,
                "conversations": data.conversations,
                "messages": data.messages,
                "contacts": data.contacts,
                **generation,
            },
            "cases": results,
            "targets": targets,
        },
    )


if __name__ == "__main__":
    main()
