"""Turn committed events into notifications: mentions, assignments, customer replies, SLA
warnings and breaches, scheduled replies that failed.

A durable consumer of its own (`hilo.consumers`, named "notifications"): it reads committed
events from its stored position, whichever process committed them, and stores each
notification through `hilo.web.actions.notify` in the transaction that moves its position
on, so every notification is created exactly once however many processes run it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from hilo.agents.models import Agent
from hilo.consumers.engine import Engine
from hilo.contacts.models import Contact
from hilo.conversations.access import can_see
from hilo.conversations.models import Conversation, Message
from hilo.cursors import INT64_MAX
from hilo.http.deps import principal_of
from hilo.runtime import Runtime
from hilo.web.actions import Notice, notify_many

log = logging.getLogger(__name__)

PREVIEW = 140
# How long the notifications engine gathers commits before a pass (see `Engine`).
GATHER_SECONDS = 0.05
# Events the SLA engine and the scheduled-message pass publish, and the notification each gives.
# Their recipients are the event's `only_agent_ids`: for SLAs the `notified` list (the assignee
# and the team's supervisors), for a scheduled reply its author.
ADDRESSED = {
    "sla.warning": "sla_warning",
    "sla.breached": "sla_breached",
    "scheduled_message.failed": "scheduled_failed",
}


# The kinds of event that can notify someone (see `wanted`).
NOTIFYING = frozenset({"message.created", "conversation.assigned", *ADDRESSED})


@dataclass(frozen=True)
class Wanted:
    agent_id: int
    kind: str
    event: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)


def _assignment_changes(session: Any, events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """What the `conversation.assigned` events recorded before their live update carried it changed,
    from their timeline messages (by message id)."""
    older = {
        int(e["message_id"])
        for e in events
        if e.get("type") == "conversation.assigned" and e.get("message_id") is not None and "changes" not in e
    }
    if not older:
        return {}
    rows = session.execute(select(Message.id, Message.data).where(Message.id.in_(older))).tuples()
    return {message_id: data or {} for message_id, data in rows}


def _assigned_to(event: dict[str, Any], changes: dict[int, dict[str, Any]]) -> int | None:
    """The agent a `conversation.assigned` event gave the conversation to, if the agent changed."""
    if "changes" in event:
        change = (event["changes"] or {}).get("assignee_id")
    elif event.get("message_id") is not None:
        change = (changes.get(int(event["message_id"])) or {}).get("assignee_id")
    else:
        return None
    return int(change[1]) if isinstance(change, list) and len(change) == 2 and change[1] is not None else None


def wanted(event: dict[str, Any], changes: dict[int, dict[str, Any]]) -> list[Wanted]:
    """Who should hear about this event, and as what kind of notification.

    `changes`: what older `conversation.assigned` events changed (see `_assignment_changes`).
    """
    kind = event.get("type")
    actor = event.get("actor_agent_id")
    if kind == "message.created" and event.get("direction") == "note":
        # Ids no agent can have are dropped here: one would fail the look-up of the whole batch.
        mentioned = {a for a in event.get("mentions") or [] if isinstance(a, int) and 0 < a <= INT64_MAX}
        return [Wanted(a, "mention", event) for a in sorted(mentioned) if a != actor]
    if kind == "message.created" and event.get("direction") == "inbound" and event.get("assignee_id"):
        return [Wanted(int(event["assignee_id"]), "reply", event)]
    if kind in ADDRESSED:
        data = {"sla_kind": event["sla_kind"], "due_at": event.get("due_at")} if event.get("sla_kind") else {}
        recipients = sorted({a for a in event.get("only_agent_ids") or [] if isinstance(a, int) and 0 < a <= INT64_MAX})
        return [Wanted(a, ADDRESSED[kind], event, data) for a in recipients]
    if kind == "conversation.assigned":
        agent_id = _assigned_to(event, changes)
        if agent_id is not None and agent_id != actor:
            return [Wanted(agent_id, "assigned", event)]
    return []


def _may_notify(event: dict[str, Any]) -> bool:
    kind = event.get("type")
    if kind == "message.created":
        return bool(event.get("mentions") or (event.get("direction") == "inbound" and event.get("assignee_id")))
    return kind == "conversation.assigned" or kind in ADDRESSED


class Notifier:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # An agent's notice may come a few tens of milliseconds late; a pass per commit under a
        # stream of webhooks cost a fifth of a core at 300 messages/s.
        self.engine = Engine(runtime, name="notifications", kinds=NOTIFYING, gather_seconds=GATHER_SECONDS)
        self.engine.on_batch(0, self.handle)

    def start(self) -> None:
        self.engine.start()

    def stop(self) -> None:
        self.engine.stop()

    def drain(self) -> None:
        """Store the notifications of every event committed so far (tests, shutdown)."""
        self.engine.drain()

    def handle(self, events: list[dict[str, Any]]) -> None:
        """Store the notifications of `events`: a few statements for the whole batch."""
        events = [event for event in events if _may_notify(event)]
        if not events:
            return
        with self.runtime.transaction() as tx:
            session = tx.session
            changes = _assignment_changes(session, events)
            todo = [w for event in events for w in wanted(event, changes)]
            if not todo:
                return
            agents = {
                a.id: a
                for a in session.execute(
                    select(Agent).options(selectinload(Agent.teams)).where(Agent.id.in_({w.agent_id for w in todo}))
                ).scalars()
            }
            conversations = {
                c.id: c
                for c in session.execute(
                    select(Conversation).where(Conversation.id.in_({int(w.event["conversation_id"]) for w in todo}))
                ).scalars()
            }
            names: dict[int, str | None] = dict(
                session.execute(
                    select(Contact.id, Contact.name).where(
                        Contact.id.in_({c.contact_id for c in conversations.values()})
                    )
                )
                .tuples()
                .all()
            )
            notices = []
            for item in todo:
                agent = agents.get(item.agent_id)
                conversation = conversations.get(int(item.event["conversation_id"]))
                if agent is None or not agent.active or conversation is None:
                    continue
                # Nobody is told about a conversation they could not open.
                if not can_see(principal_of(agent), conversation.team_id, conversation.assignee_id):
                    continue
                notices.append(
                    Notice(
                        agent.id,
                        item.kind,
                        conversation,
                        message_id=item.event.get("message_id") if item.kind != "assigned" else None,
                        actor_agent_id=item.event.get("actor_agent_id"),
                        data={
                            "contact_name": names.get(conversation.contact_id),
                            "contact_id": conversation.contact_id,
                            "preview": (item.event.get("preview") or "")[:PREVIEW],
                            **item.data,
                        },
                    )
                )
            notify_many(tx, notices)
