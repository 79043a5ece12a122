"""Many webhook deliveries stored in one transaction (the ingest queue's group commit).

The batch looks its messages up together and inserts them together; these tests give it
the mixes a busy channel sends at once (new and returning senders, repeats inside the
batch, identities to link, edits, statuses) and check the result through the API.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from hilo.channels import signing
from hilo.channels.api import ADAPTER
from hilo.channels.base import ChannelAccountView, WebhookRequest, WebhookResult
from hilo.channels.models import ChannelAccount
from hilo.events.models import Event
from hilo.ingest.deliveries import ingest_batch
from hilo.ingest.queue import IngestQueue
from hilo.ingest.statements import DeliveryResult
from hilo.runtime import Runtime
from tests.support import Api

_seq = itertools.count(1)


class Deliveries:
    """Signed API-channel webhooks, parsed by the real adapter as the webhook endpoint does."""

    def __init__(self, runtime: Runtime, channel: dict[str, Any]) -> None:
        self.runtime = runtime
        self.channel = channel
        with runtime.db.read() as session:
            account = session.get(ChannelAccount, channel["id"])
            assert account is not None
            self.account: ChannelAccountView = account.view()

    def parse(self, document: dict[str, Any]) -> tuple[ChannelAccountView, WebhookResult]:
        body = orjson.dumps(document)
        headers = {"content-type": "application/json", signing.HEADER: signing.sign(self.channel["secret"], body)}
        request = WebhookRequest("POST", "http://test/", headers, {}, body)
        return self.account, ADAPTER.parse_webhook(self.account, request)

    def message(self, sender: str, text: str, *, msg_id: str | None = None, **contact: Any) -> Any:
        return self.parse(
            {"id": msg_id or f"b-{next(_seq)}", "contact": {"external_id": sender, **contact}, "text": text}
        )

    def store(self, deliveries: list[tuple[ChannelAccountView, WebhookResult]]) -> list[DeliveryResult]:
        with self.runtime.transaction() as tx:
            return ingest_batch(tx, deliveries)


@pytest.fixture
def deliveries(app_client: TestClient, api: Api) -> Deliveries:
    return Deliveries(app_client.app.state.runtime, api.api_channel())  # type: ignore[attr-defined]


def _thread_of(api: Api, contact_name: str) -> dict[str, Any]:
    [conversation] = [c for c in api.conversations() if c["contact_name"] == contact_name]
    return conversation


def test_a_mixed_batch_keeps_every_thread_whole_and_in_order(api: Api, deliveries: Deliveries) -> None:
    # given: Bea wrote before; her message "b-old" is stored
    [stored] = deliveries.store([deliveries.message("bea", "earlier", msg_id="b-old", name="Bea")])
    # when: one batch with a new sender twice, Bea again, repeats inside the batch and of
    # the stored message, a new sender naming an e-mail (the general path) and a status
    batch = [
        deliveries.message("ana", "ana one", msg_id="a-1", name="Ana"),
        deliveries.message("bea", "bea two", msg_id="b-2", name="Bea"),
        deliveries.message("ana", "ana one", msg_id="a-1", name="Ana"),
        deliveries.message("carl", "carl one", msg_id="c-1", name="Carl", email="carl@example.com"),
        deliveries.parse({"type": "status", "message_id": "nobody-sent-this", "status": "delivered"}),
        deliveries.message("ana", "ana two", msg_id="a-2", name="Ana"),
        deliveries.message("bea", "earlier", msg_id="b-old", name="Bea"),
        deliveries.message("carl", "carl two", msg_id="c-2", name="Carl", email="carl@example.com"),
    ]
    results = deliveries.store(batch)
    # then: every repeat names the message that holds it
    messages = [r.messages[0] if r.messages else None for r in results]
    assert [m.duplicate if m else None for m in messages] == [False, False, True, False, None, False, True, False]
    assert messages[2] is not None and messages[0] is not None
    assert messages[2].message_id == messages[0].message_id
    assert messages[6] is not None and messages[6].message_id == stored.messages[0].message_id
    assert results[4].statuses_ignored == 1
    # and each contact has one thread holding its messages once, in the order sent
    for name, bodies in (
        ("Ana", ["ana one", "ana two"]),
        ("Bea", ["earlier", "bea two"]),
        ("Carl", ["carl one", "carl two"]),
    ):
        conversation = _thread_of(api, name)
        assert [m["body"] for m in api.timeline(conversation["id"])] == bodies
        assert conversation["message_count"] == len(bodies)
    carl = api.ok(api.get(f"/api/v1/contacts/{_thread_of(api, 'Carl')['contact_id']}"))
    assert ("email", "carl@example.com") in {(i["kind"], i["value"]) for i in carl["identities"]}
    # and the new messages' ids are the ones the timelines show
    ana = api.timeline(_thread_of(api, "Ana")["id"])
    assert [m["id"] for m in ana] == [messages[0].message_id, messages[5].message_id]


def test_a_batch_records_one_event_per_stored_message(api: Api, deliveries: Deliveries, app_client: TestClient) -> None:
    # given
    runtime: Runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    deliveries.store([deliveries.message(f"s{i}", "hello", name=f"S{i}") for i in range(3)])
    published: list[dict[str, Any]] = []
    runtime.on_committed(published.extend)
    # when: the same three senders again, one of them twice, and one repeat
    batch = [deliveries.message(f"s{i}", f"again {i}", name=f"S{i}") for i in range(3)]
    batch += [deliveries.message("s1", "and once more", name="S1"), batch[0]]
    deliveries.store(batch)
    # then
    created = [e for e in published if e["type"] == "message.created"]
    assert [e["preview"] for e in created] == ["again 0", "again 1", "again 2", "and once more"]
    assert len({e["message_id"] for e in created}) == 4
    s1 = _thread_of(api, "S1")
    assert {e["conversation_id"] for e in created if e["preview"] in ("again 1", "and once more")} == {s1["id"]}
    assert s1["message_count"] == 3


def test_an_edit_of_a_message_in_the_same_batch_applies_to_it(api: Api, deliveries: Deliveries) -> None:
    # given: the original and its edit arrive together (the API channel has no edit
    # payload, so the edit is made the way the Meta and Telegram adapters make theirs)
    original = deliveries.message("dora", "helo", msg_id="d-1", name="Dora")
    account, edit = deliveries.message("dora", "hello", msg_id="d-1-edit", name="Dora")
    edit.messages[0].edit_of_provider_id = "d-1"
    # when
    deliveries.store([original, (account, edit)])
    # then
    [message] = api.timeline(_thread_of(api, "Dora")["id"])
    assert message["body"] == "hello"
    assert message["edited_at"] is not None


def test_a_batch_of_returning_senders_costs_the_same_few_statements_at_any_size(
    deliveries: Deliveries, app_client: TestClient
) -> None:
    # given: forty senders with open threads
    runtime: Runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    deliveries.store([deliveries.message(f"r{i}", "first", name=f"R{i}") for i in range(40)])
    writer = threading.get_ident()
    counts: list[Counter[str]] = []
    for size in (4, 40):
        batch = [deliveries.message(f"r{i}", f"follow-up {size}", name=f"R{i}") for i in range(size)]
        statements: Counter[str] = Counter()

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any, statements: Counter[str] = statements) -> None:
            # The app's engine thread handles the committed events meanwhile: not counted.
            if threading.get_ident() == writer:
                statements[" ".join(statement.split()[:3])] += 1

        event.listen(runtime.db.engine, "before_cursor_execute", count)
        try:
            # when
            deliveries.store(batch)
        finally:
            event.remove(runtime.db.engine, "before_cursor_execute", count)
        counts.append(statements)
    # then: the look-ups, the threads' update and the events' insert are one statement each
    # whatever the batch's size, and so is the messages' insert on PostgreSQL. SQLite runs
    # that insert once per message: it cannot return new ids in the order the rows were
    # given (SQLAlchemy's "insertmanyvalues" falls back there), but it runs in-process.
    inserts = "INSERT INTO messages"
    small, large = counts
    if runtime.db.dialect == "sqlite":
        assert (small.pop(inserts), large.pop(inserts)) == (4, 40)
    assert small == large
    assert sum(large.values()) <= 6


def _count_writer_statements(runtime: Runtime, work: Any) -> Counter[str]:
    """Statements `work()` runs in this thread (the app's engine thread is not counted)."""
    writer = threading.get_ident()
    statements: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == writer:
            statements[" ".join(statement.split()[:3])] += 1

    event.listen(runtime.db.engine, "before_cursor_execute", count)
    try:
        work()
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", count)
    return statements


def test_a_batch_of_new_senders_gives_each_a_contact_and_a_thread_in_a_few_statements(
    api: Api, deliveries: Deliveries, app_client: TestClient
) -> None:
    # given
    runtime: Runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    published: list[dict[str, Any]] = []
    runtime.on_committed(published.extend)
    counts = []
    for size in (3, 30):
        # when: new senders write, every other one naming an e-mail address too
        batch = [
            deliveries.message(f"n{size}-{i}", "first words", name=f"N{size}-{i}", email=f"n{size}-{i}@example.com")
            if i % 2
            else deliveries.message(f"n{size}-{i}", "first words", name=f"N{size}-{i}")
            for i in range(size)
        ]
        counts.append(_count_writer_statements(runtime, lambda batch=batch: deliveries.store(batch)))
    # then: each has a contact with its identities and one thread holding its message
    conversations = {c["contact_name"]: c for c in api.conversations(limit=100)}
    for i in range(30):
        conversation = conversations[f"N30-{i}"]
        assert [m["body"] for m in api.timeline(conversation["id"])] == ["first words"]
        contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
        expected = {("api", f"{deliveries.account.id}:n30-{i}")} | (
            {("email", f"n30-{i}@example.com")} if i % 2 else set()
        )
        assert {(i["kind"], i["value"]) for i in contact["identities"]} == expected
    with runtime.db.read() as session:
        recorded = Counter(session.execute(select(Event.kind)).scalars())
    assert [recorded[kind] for kind in ("contact.created", "identity.added", "conversation.created")] == [33, 16, 33]
    published_kinds = Counter(e["type"] for e in published)
    assert (published_kinds["conversation.created"], published_kinds["message.created"]) == (33, 33)
    # and on PostgreSQL the new rows go in a few statements for any number of senders:
    # three look-ups, one draw of ids, one insert per table (contacts, identities,
    # conversations, messages, events) and the threads' update
    if runtime.db.dialect == "postgresql":
        small, large = counts
        assert small == large
        assert sum(large.values()) == 10


def test_the_ingest_queue_answers_every_delivery_of_one_batch(api: Api, deliveries: Deliveries) -> None:
    # given: a queue whose writer starts only once thirty deliveries wait, so they share a batch
    queue = IngestQueue(deliveries.runtime)
    futures = [queue.submit(*deliveries.message(f"q{i % 10}", f"queued {i}", name=f"Q{i % 10}")) for i in range(30)]
    # when
    queue.start()
    try:
        outcomes = [future.result(timeout=30) for future in futures]
    finally:
        queue.stop()
    # then
    assert all(len(o.messages) == 1 and not o.messages[0].duplicate for o in outcomes)
    assert len({o.messages[0].message_id for o in outcomes}) == 30
    q3 = _thread_of(api, "Q3")
    assert [m["body"] for m in api.timeline(q3["id"])] == ["queued 3", "queued 13", "queued 23"]
