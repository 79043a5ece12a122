"""Query-count baselines for the hot pages: the inbox list and the conversation page.

The count of SQL statements for each page (and for the sidebar with its unread counts) is
committed in `query_counts.json`; it must not change with the number of conversations,
messages or sidebar views shown (an N+1 fails here). If a
change legitimately adds a constant number of queries, update the baseline in the same
commit and say why.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from hilo.clock import FrozenClock
from tests.support import Api

BASELINES: dict[str, int] = json.loads((Path(__file__).parent / "query_counts.json").read_text())
COUNTED = ("select", "insert", "update", "delete", "with")


@contextmanager
def counting(client: TestClient) -> Iterator[list[str]]:
    """Collect the data statements (not BEGIN/COMMIT) that request handlers send.

    Request handlers run in AnyIO's worker threads; background workers (the notifier,
    routing, mailboxes) have threads of their own and may commit at any moment, so their
    statements are not the page's and are left out.
    """
    engine = client.app.state.runtime.db.engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        in_request = threading.current_thread().name.startswith("AnyIO worker thread")
        if in_request and statement.lstrip().lower().startswith(COUNTED):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def customers(api: Api, clock: FrozenClock, channels: list[dict[str, Any]], start: int, count: int) -> list[int]:
    """`count` customers with several messages, attachments, notes, labels and assignments."""
    agents = [api.agent_id, api.as_new_agent(f"agent{start}@example.com").agent_id]
    team = api.ok(api.post("/api/v1/teams", {"name": f"Team {start}"}), 201)["id"]
    for index in range(start, start + count):
        channel = channels[index % len(channels)]
        clock.advance(minutes=1)
        payload = {
            "id": f"m-{index}-a",
            "contact": {"external_id": f"c{index}", "name": f"Customer {index}"},
            "text": f"Hello {index}",
            "attachments": [{"url": f"https://files.example/{index}.jpg", "content_type": "image/jpeg"}],
        }
        assert api.webhook(channel, payload).status_code == 200
        api.inbound(channel, f"c{index}", f"Second message {index}")
    conversations = [c["id"] for c in api.conversations(limit=100) if c["contact_name"].startswith("Customer")]
    for position, conversation_id in enumerate(conversations):
        path = f"/api/v1/conversations/{conversation_id}"
        api.ok(api.patch(path, {"assignee_id": agents[position % 2], "team_id": team, "labels": [f"l{position % 3}"]}))
        api.ok(api.post(f"{path}/notes", {"body": "internal", "mentions": [agents[1]]}), 201)
        api.ok(api.post(f"{path}/messages", {"body": f"Reply {position}"}), 201)
    return conversations


def measure(client: TestClient, path: str) -> int:
    # Warm up: the first request in a while looks up who the session belongs to.
    assert client.get(path).status_code == 200
    with counting(client) as statements:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return len(statements)


def test_inbox_list_queries_do_not_grow_with_conversations(
    app_client: TestClient, api: Api, clock: FrozenClock
) -> None:
    # given: a few conversations, the admin signed in with the session cookie
    channels = [api.api_channel("Shop"), api.api_channel("App")]
    customers(api, clock, channels, 0, 3)
    app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
    pages = ("/inbox?view=all", "/ui/list?view=all", "/ui/sidebar?view=all")
    few = {path: measure(app_client, path) for path in pages}
    # when: many more conversations fill the page, and another team adds a view to the sidebar
    customers(api, clock, channels, 100, 20)
    many = {path: measure(app_client, path) for path in pages}
    # then
    assert many == few
    assert few == {
        "/inbox?view=all": BASELINES["inbox_page"],
        "/ui/list?view=all": BASELINES["inbox_list_fragment"],
        "/ui/sidebar?view=all": BASELINES["sidebar_fragment"],
    }


def test_conversation_page_queries_do_not_grow_with_messages(
    app_client: TestClient, api: Api, clock: FrozenClock
) -> None:
    # given: a short conversation
    channels = [api.api_channel("Shop"), api.api_channel("App")]
    [conversation] = customers(api, clock, channels, 0, 1)
    app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
    pages = (f"/ui/conversations/{conversation}", f"/inbox?view=all&c={conversation}")
    short = {path: measure(app_client, path) for path in pages}
    # when: the customer writes thirty more times on both channels, with attachments, and agents answer
    for index in range(30):
        clock.advance(minutes=1)
        channel = channels[index % 2]
        payload = {
            "id": f"more-{index}",
            "contact": {"external_id": "c0"},
            "text": f"More {index}",
            "attachments": [{"url": f"https://files.example/more-{index}.pdf", "content_type": "application/pdf"}],
        }
        assert api.webhook(channel, payload).status_code == 200
        if index % 3 == 0:
            api.ok(api.post(f"/api/v1/conversations/{conversation}/messages", {"body": f"Answer {index}"}), 201)
    long = {path: measure(app_client, path) for path in pages}
    # then
    assert long == short
    assert short == {pages[0]: BASELINES["conversation_fragment"], pages[1]: BASELINES["conversation_page"]}
