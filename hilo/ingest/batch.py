"""The batch path: many deliveries stored with a few statements for all of them (see docs/architecture.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, Table, any_, bindparam, insert, select
from sqlalchemy.dialects import postgresql

# The batch insert casts every column it writes. A foreign-key column takes its type from
# the column it points at, known only once that table is loaded: load the tables they point at.
import hilo.agents.models  # noqa: F401
import hilo.channels.models  # noqa: F401
from hilo.channels.base import (
    ChannelAccountView,
    IdentityRef,
    InboundMessage,
)
from hilo.contacts.identity import InvalidIdentity, normalize
from hilo.db import bulk
from hilo.ingest.alone import ingest_alone, store_new
from hilo.ingest.senders import Thread, new_sender, new_sender_thread
from hilo.ingest.statements import (
    INSERT_MESSAGE,
    SELECT_IDENTITY_OWNER,
    SELECT_SENDER_THREAD,
    SENDER_THREAD_BASE,
    UNRESOLVED,
    UPDATE_THREAD,
    IngestResult,
    contacts_table,
    conversations_table,
    identities_table,
    message_created,
    messages_table,
    normalized,
)
from hilo.runtime import Record, Tx

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- batches (group commit)


def _among(column: Any, name: str, postgres: bool) -> Any:
    """`column IN (<the list bound as name>)`: on PostgreSQL as `= ANY(array)`, one statement
    text for any number of values, which psycopg prepares once; an expanding IN is new text
    (planned anew) for every length."""
    if postgres:
        # No length on the element type: a cast to VARCHAR(512) would cut a longer value short.
        return column == any_(bindparam(name, type_=postgresql.ARRAY(String())))
    return column.in_(bindparam(name, expanding=True))


@dataclass(frozen=True)
class _Lookups:
    """The batch's look-ups, as each engine runs them best."""

    duplicates: Any
    sender_threads: Any
    identity_owners: Any

    @classmethod
    def build(cls, postgres: bool) -> _Lookups:
        return cls(
            select(
                messages_table.c.provider_message_id,
                messages_table.c.id,
                messages_table.c.conversation_id,
                messages_table.c.contact_id,
            ).where(
                messages_table.c.channel_account_id == bindparam("account_id"),
                _among(messages_table.c.provider_message_id, "provider_message_ids", postgres),
            ),
            SENDER_THREAD_BASE.add_columns(identities_table.c.value).where(
                _among(identities_table.c.value, "values", postgres)
            ),
            select(identities_table.c.value, identities_table.c.contact_id).where(
                identities_table.c.kind == bindparam("kind"), _among(identities_table.c.value, "values", postgres)
            ),
        )


_LOOKUPS = {postgres: _Lookups.build(postgres) for postgres in (True, False)}
INSERT_MESSAGES = insert(messages_table).returning(messages_table.c.id, sort_by_parameter_order=True)


@dataclass
class _Simple:
    """A plain inbound message (no threading, edit or attachment): the batch's fast path may take it."""

    account: ChannelAccountView
    inbound: InboundMessage
    sender: IdentityRef
    others: list[IdentityRef]


@dataclass
class _Queued:
    """A message the batch will insert with the others at its next flush."""

    simple: _Simple
    thread: Thread
    result: IngestResult
    # Events that come before the message's own (a new sender's contact and conversation).
    before: list[Record] = field(default_factory=list)


class Batch:
    """Store many deliveries in one transaction with a few statements for all of them.

    The common messages (a known sender with an open thread, or a new sender) are looked up
    together (duplicates, senders' threads, other identities' owners: one query per channel
    account or identity kind), inserted together (one multi-row INSERT) and their threads
    and events written together. Anything else (edits, attachments, threading references,
    identities to link, statuses) goes through the one-at-a-time path, after the messages
    queued before it are flushed, so every conversation's messages keep their order.
    """

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.conn = tx.session.connection()
        self.region = tx.runtime.settings.default_region
        self.queued: list[_Queued] = []
        # (account id, provider message id) -> what holds that message: stored before the
        # batch, stored by it, or queued in it (its id known at the next flush).
        self.held: dict[tuple[int, str], IngestResult] = {}
        self.repeats: list[tuple[IngestResult, IngestResult]] = []
        self.senders: dict[tuple[str, str], Any] = {}
        self.owners: dict[tuple[str, str], int | None] = {}
        # PostgreSQL: new senders' rows, inserted at the next flush, and ids for them.
        self.postgres = self.conn.dialect.name == "postgresql"
        self.lookups = _LOOKUPS[self.postgres]
        # PostgreSQL: ids drawn from the sequences for rows still to insert, lowest last.
        self.spare_ids: dict[Table, list[int]] = {
            contacts_table: [],
            identities_table: [],
            conversations_table: [],
            messages_table: [],
        }
        self.new_rows: dict[Table, list[dict[str, Any]]] = {
            contacts_table: [],
            identities_table: [],
            conversations_table: [],
        }

    # ---- look-ups

    def simple(self, account: ChannelAccountView, inbound: InboundMessage) -> _Simple | None:
        """The message as the fast path takes it, or None if it needs the general path
        (edits are the caller's to send elsewhere)."""
        if inbound.reply_to_provider_ids or inbound.conversation_token is not None:
            return None
        if inbound.attachments or (inbound.raw is not None and inbound.kind == "unknown"):
            return None
        sender = normalized(inbound.sender, self.region)
        others: list[IdentityRef] = []
        for other in inbound.other_identities:
            try:
                ref = normalize(other, self.region)
            except InvalidIdentity:
                continue
            if (ref.kind, ref.value) != (sender.kind, sender.value) and all(
                (ref.kind, ref.value) != (seen.kind, seen.value) for seen in others
            ):
                others.append(ref)
        return _Simple(account, inbound, sender, others)

    def prefetch(self, simples: list[_Simple]) -> None:
        """Everything the fast path reads, for all of `simples`, in a few queries."""
        by_account: dict[int, set[str]] = {}
        senders: dict[str, set[str]] = {}
        others: dict[str, set[str]] = {}
        identities: dict[tuple[str, str], int] = {}  # per sender, with the others it names
        new_senders = new_identities = 0
        for item in simples:
            by_account.setdefault(item.account.id, set()).add(item.inbound.provider_message_id)
            senders.setdefault(str(item.sender.kind), set()).add(item.sender.value)
            identities.setdefault((str(item.sender.kind), item.sender.value), 1 + len(item.others))
            for ref in item.others:
                others.setdefault(str(ref.kind), set()).add(ref.value)
        for account_id, ids in by_account.items():
            for row in self.conn.execute(
                self.lookups.duplicates, {"account_id": account_id, "provider_message_ids": sorted(ids)}
            ):
                self.held[(account_id, row.provider_message_id)] = IngestResult(
                    row.id, row.conversation_id, row.contact_id, duplicate=True
                )
        for kind, values in senders.items():
            found = {
                row.value: row
                for row in self.conn.execute(self.lookups.sender_threads, {"kind": kind, "values": sorted(values)})
            }
            for value in values:
                self.senders[(kind, value)] = found.get(value)
            unknown = [value for value in values if value not in found]
            new_senders += len(unknown)
            new_identities += sum(identities[(kind, value)] for value in unknown)
        for kind, values in others.items():
            rows = self.conn.execute(self.lookups.identity_owners, {"kind": kind, "values": sorted(values)})
            owners: dict[str, int] = {row.value: row.contact_id for row in rows}
            for value in values:
                self.owners[(kind, value)] = owners.get(value)
        if self.postgres:
            # One query for the ids of every message and new sender the fast path may store.
            self._draw(
                {
                    messages_table: len(simples),
                    contacts_table: new_senders,
                    conversations_table: new_senders,
                    identities_table: new_identities,
                }
            )

    def _sender(self, ref: IdentityRef) -> Any:
        key = (str(ref.kind), ref.value)
        if key not in self.senders:
            self.senders[key] = self.conn.execute(SELECT_SENDER_THREAD, {"kind": key[0], "value": key[1]}).first()
        return self.senders[key]

    def _owner(self, ref: IdentityRef) -> int | None:
        key = (str(ref.kind), ref.value)
        if key not in self.owners:
            self.owners[key] = self.conn.execute(SELECT_IDENTITY_OWNER, {"kind": key[0], "value": key[1]}).scalar()
        return self.owners[key]

    def stored_alone(
        self, account: ChannelAccountView, inbounds: list[InboundMessage], results: list[IngestResult]
    ) -> None:
        """What the one-at-a-time path stored: a later repeat in the batch is known, and any
        sender may have been linked, merged or given a thread since the look-ups."""
        for inbound, result in zip(inbounds, results, strict=True):
            if not result.duplicate:
                self.held[(account.id, inbound.provider_message_id)] = result
        self._forget()

    def _forget(self) -> None:
        """The one-at-a-time path may have linked, merged or opened anything: look again."""
        self.senders.clear()
        self.owners.clear()

    # ---- messages

    def message(self, account: ChannelAccountView, inbound: InboundMessage, simple: _Simple | None) -> IngestResult:
        key = (account.id, inbound.provider_message_id)
        if simple is None:
            self.flush()
            result = ingest_alone(self.tx, account, inbound)
            self._forget()
        else:
            held = self.held.get(key)
            if held is not None:
                repeat = IngestResult(held.message_id, held.conversation_id, held.contact_id, duplicate=True)
                if held.message_id is None:
                    self.repeats.append((repeat, held))
                return repeat
            result = self._fast(simple)
        if not result.duplicate:
            self.held[key] = result
        return result

    def _fast(self, simple: _Simple) -> IngestResult:
        found = self._sender(simple.sender)
        inbound = simple.inbound
        if found is None:
            if any(self._owner(ref) is not None for ref in simple.others):
                return self._alone(simple)  # joins, or is refused by, the owner's contact
            before: list[Record] = []
            thread = self._new_sender(simple, before)
            self.senders[(str(simple.sender.kind), simple.sender.value)] = _OpenThread(
                thread.identity_id, thread.contact_id, simple.sender.verified, inbound.sender_name,
                thread.conversation_id, "open", None, None,
            )  # fmt: skip
            for ref in simple.others:
                self.owners[(str(ref.kind), ref.value)] = thread.contact_id
            new_conversation = True
        elif (
            found.conversation_id is None
            or found.status not in UNRESOLVED
            or (simple.sender.verified and not found.verified)
            or (inbound.sender_name and not found.contact_name)
            or any(self._owner(ref) != found.contact_id for ref in simple.others)
        ):
            return self._alone(simple)
        else:
            thread = Thread(
                found.identity_id, found.contact_id, found.conversation_id, found.team_id, found.assignee_id
            )
            before = []
            new_conversation = False
        result = IngestResult(None, thread.conversation_id, thread.contact_id, new_conversation=new_conversation)
        self.queued.append(_Queued(simple, thread, result, before))
        return result

    def _new_sender(self, simple: _Simple, records: list[Record]) -> Thread:
        """Create a new sender's contact and thread: on PostgreSQL at the next flush, with
        the other new senders' (ids drawn from the sequences for all of them at once)."""
        new = new_sender(self.tx.now, simple.account, simple.inbound, simple.sender, simple.others)
        if not self.postgres:
            return new_sender_thread(self.tx, new, records)
        [contact_id], [conversation_id] = self._ids(contacts_table, 1), self._ids(conversations_table, 1)
        identity_ids = self._ids(identities_table, len(new.identities))
        self.new_rows[contacts_table].append({**new.contact, "id": contact_id})
        self.new_rows[identities_table].extend(
            {**row, "id": identity_id, "contact_id": contact_id}
            for row, identity_id in zip(new.identities, identity_ids, strict=True)
        )
        self.new_rows[conversations_table].append({**new.conversation, "id": conversation_id, "contact_id": contact_id})
        records.extend(new.records(contact_id, conversation_id))
        return Thread(identity_ids[0], contact_id, conversation_id)

    def _draw(self, counts: dict[Table, int]) -> None:
        wanted = {table: count for table, count in counts.items() if count > 0}
        if wanted:
            for table, ids in bulk.next_ids(self.conn, wanted).items():
                # Handed out from the end: the lowest ids go to the first rows.
                self.spare_ids[table][:0] = reversed(ids)

    def _ids(self, table: Table, count: int) -> list[int]:
        """`count` new ids for `table` (PostgreSQL), drawn in `prefetch` or now if it drew too few."""
        spare = self.spare_ids[table]
        if len(spare) < count:
            self._draw({table: count - len(spare)})
        return [spare.pop() for _ in range(count)]

    def _alone(self, simple: _Simple) -> IngestResult:
        self.flush()
        result = store_new(self.tx, simple.account, simple.inbound)
        self._forget()
        return result

    def flush(self) -> None:
        """Insert the queued messages, move their threads on and record their events.

        On PostgreSQL the writes go out together in pipeline mode: one round trip.
        """
        if not self.queued:
            return
        queued, self.queued = self.queued, []
        now = self.tx.now
        rows = [
            {
                "conversation_id": item.thread.conversation_id,
                "contact_id": item.thread.contact_id,
                "channel_account_id": item.simple.account.id,
                "identity_id": item.thread.identity_id,
                "direction": "inbound",
                "kind": str(item.simple.inbound.kind),
                "author_agent_id": None,
                "body": item.simple.inbound.text,
                "html": item.simple.inbound.html,
                "subject": item.simple.inbound.subject,
                "data": dict(item.simple.inbound.data),
                "provider_message_id": item.simple.inbound.provider_message_id,
                "status": "received",
                "status_code": None,
                "status_reason": None,
                "idempotency_key": None,
                "reply_to_message_id": None,
                "auto_generated": item.simple.inbound.auto_generated,
                "created_at": now,
                "sent_at": item.simple.inbound.sent_at,
                "edited_at": None,
                "deleted_at": None,
            }
            for item in queued
        ]
        threads: dict[int, dict[str, Any]] = {}
        for item in queued:
            thread = threads.setdefault(
                item.thread.conversation_id,
                {"conversation_id": item.thread.conversation_id, "now": now, "added": 0, "waiting_since": None},
            )
            thread["added"] += 1
            thread["account_id"] = item.simple.account.id
            if not item.simple.inbound.auto_generated:
                thread["waiting_since"] = now
        updates = list(threads.values())
        # Drawn before the pipeline: a query's rows cannot be read in the middle of one.
        drawn = self._ids(messages_table, len(rows)) if self.postgres else None
        with bulk.pipeline(self.conn):
            for table in (contacts_table, identities_table, conversations_table):
                if self.new_rows[table]:
                    bulk.insert_rows(self.conn, table, self.new_rows[table])
                    self.new_rows[table] = []
            ids = self._insert_messages(rows, drawn)
            self.conn.execute(UPDATE_THREAD, updates if len(updates) > 1 else updates[0])
            records = []
            for item, message_id in zip(queued, ids, strict=True):
                item.result.message_id = message_id
                owner = item.thread
                conversation = {"team_id": owner.team_id, "assignee_id": owner.assignee_id, "status": "open"}
                records.extend(item.before)
                records.append(
                    message_created(
                        item.simple.account,
                        item.simple.inbound,
                        conversation,
                        owner.conversation_id,
                        owner.contact_id,
                        message_id,
                    )
                )
            self.tx.record_many(records)
        for repeat, held in self.repeats:
            repeat.message_id = held.message_id
        self.repeats.clear()

    def _insert_messages(self, rows: list[dict[str, Any]], ids: list[int] | None) -> list[int]:
        """Insert the message rows, with `ids` on PostgreSQL; return their ids, in order."""
        if ids is not None:
            bulk.insert_rows(
                self.conn, messages_table, [{**row, "id": id_} for row, id_ in zip(rows, ids, strict=True)]
            )
            return ids
        if len(rows) == 1:
            return [self.conn.execute(INSERT_MESSAGE, rows[0]).scalar_one()]
        return list(self.conn.execute(INSERT_MESSAGES, rows).scalars())


@dataclass
class _OpenThread:
    """A sender's thread as SELECT_SENDER_THREAD returns it, for a sender the batch created."""

    identity_id: int
    contact_id: int
    verified: bool
    contact_name: str | None
    conversation_id: int
    status: str
    team_id: int | None
    assignee_id: int | None
