"""What the engine does for routing and SLAs when something is committed, and each tick.

SLA timers react first (order 10), automation rules next (order 20, hilo.automation),
routing last (order 30), so a rule that sets a team or required skills on a new
conversation is seen by the routing decision that follows. Before a batch of events,
the SLA side asks once which of the conversations customers wrote on have live timers,
so that a message on a conversation without SLAs costs no query.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hilo.agents.access import Principal
from hilo.consumers.engine import Engine
from hilo.conversations.models import Conversation, Message
from hilo.routing import actions, presence, sla
from hilo.runtime import Runtime, Tx

SLA_ORDER = 10
ROUTING_ORDER = 30
# Events on which SLA handling can make a timer live with no policy active: a conversation
# open again resumes its resolution target (sla.status_changed).
# A new, reopened or split-off conversation may need an agent (a rule of the same batch
# may just have given it a team).
ROUTED_WHEN_NEW = ("conversation.created", "conversation.reopened", "conversation.split_from")
RESUMING = ("conversation.status_changed", "conversation.reopened")
# Events after which the policy that applies may change (`sla.reselect`).
RESELECTING = ("conversation.priority_changed", "conversation.assigned")
# Events on which routing takes a conversation out of its queue (`actions.dequeue`).
DEQUEUING = ("conversation.assigned", "conversation.status_changed", "conversation.merged_away")


def event_time(event: dict[str, Any], fallback: datetime) -> datetime:
    at = event.get("at")
    if isinstance(at, str):
        try:
            return datetime.fromisoformat(at)
        except ValueError:
            return fallback
    return fallback


class RoutingHandlers:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.runtime: Runtime = engine.runtime
        self._connections: Counter[int] = Counter()
        self._last_beat: dict[int, datetime] = {}
        self._last_refresh: datetime | None = None
        self._lock = threading.Lock()

    def install(self) -> None:
        self.engine.before_batch(SLA_ORDER, self.prepare_sla)
        self.engine.before_batch(ROUTING_ORDER, self.prepare_routing)
        self.engine.on_event(SLA_ORDER, self.on_sla_event)
        self.engine.on_event(ROUTING_ORDER, self.on_routing_event)
        self.engine.every_tick(10, self.presence_pass, local=True)
        self.engine.every_tick(15, self.hold_pass)
        self.engine.every_tick(20, self.sla_pass)

    def _run(self, work: Callable[[Tx], object]) -> None:
        with self.runtime.transaction() as tx:
            work(tx)

    # SLA -----------------------------------------------------------------------------

    def prepare_sla(self, tx: Tx, events: list[dict[str, Any]]) -> None:
        """Read in one query which of the batch's conversations customers wrote on have live timers."""
        wrote: set[int] = set()
        resumed: set[int] = set()
        for event in events:
            conversation_id = event.get("conversation_id")
            if conversation_id is None:
                continue
            kind = event.get("type")
            if (kind == "message.created" and event.get("direction") == "inbound") or kind in RESELECTING:
                wrote.add(int(conversation_id))
            elif kind in RESUMING:
                resumed.add(int(conversation_id))
        sla.read_live(tx, wrote - resumed)

    def on_sla_event(self, event: dict[str, Any], depth: int) -> None:
        kind = event.get("type")
        conversation_id = event.get("conversation_id")
        at = event_time(event, self.runtime.clock.now())
        if kind == "contact.updated" and event.get("contact_id") is not None:
            self._contact_updated(int(event["contact_id"]), at)
        if conversation_id is None:
            return
        if kind in ("conversation.created", "conversation.split_from"):
            self._run(lambda tx: sla.apply_policy(tx, conversation_id, at))
        elif kind == "message.created" and event.get("direction") == "inbound":
            self._run(lambda tx: _customer_wrote(tx, event, conversation_id, at))
        elif kind == "message.created" and event.get("direction") == "outbound" and event.get("actor_agent_id"):
            self._run(lambda tx: sla.agent_replied(tx, conversation_id, at))
        elif kind in RESUMING:
            self._run(lambda tx: sla.status_changed(tx, conversation_id, at))
        elif kind in RESELECTING:
            self._run(lambda tx: _reselect(tx, conversation_id, at))
        elif kind == "conversation.merged_away":
            self._run(lambda tx: sla.cancel_all(tx, conversation_id, at))

    def _contact_updated(self, contact_id: int, at: datetime) -> None:
        """Contact attributes can choose the SLA policy: re-check the contact's open thread."""

        def work(tx: Tx) -> None:
            conversation_id = tx.session.execute(
                select(Conversation.id).where(
                    Conversation.contact_id == contact_id,
                    Conversation.status != "resolved",
                    Conversation.merged_into_id.is_(None),
                )
            ).scalar()
            if conversation_id is not None:
                sla.reselect(tx, conversation_id, at)

        self._run(work)

    def sla_pass(self) -> None:
        while True:
            with self.runtime.transaction() as tx:
                moved = sla.evaluate(tx)
            if moved < sla.PASS_BATCH:
                return

    # Routing -------------------------------------------------------------------------

    def prepare_routing(self, tx: Tx, events: list[dict[str, Any]]) -> None:
        """Load in one query the conversations the batch's events will route or take out of their
        queue (see `on_routing_event`), with their routing rows."""
        actions.load_for_routing(
            tx,
            {
                int(event["conversation_id"])
                for event in events
                if event.get("conversation_id") and (_routes(event) or event.get("type") in DEQUEUING)
            },
        )

    def on_routing_event(self, event: dict[str, Any], depth: int) -> None:
        kind = event.get("type")
        if kind in ("agent.presence_changed", "routing.agent_saved", "routing.team_saved"):
            self._settings_event(str(kind), event)
            return
        if event.get("conversation_id") is None:
            return
        conversation_id = int(event["conversation_id"])
        if kind in ROUTED_WHEN_NEW:
            self._run(lambda tx: actions.route(tx, conversation_id, trigger=str(kind)))
        elif kind == "message.created":
            if _routes(event):
                self._run(lambda tx: actions.route(tx, conversation_id, trigger="message_received"))
        elif kind == "conversation.assigned":
            self._assigned(conversation_id, event)
        elif kind == "conversation.status_changed":
            if event.get("status") == "open":
                self._run(lambda tx: actions.route(tx, conversation_id, trigger="status_open"))
            else:
                self._run(lambda tx: actions.dequeue(tx, conversation_id))
                if event.get("assignee_id") is not None:
                    self.drain_agent_teams(int(event["assignee_id"]), "capacity_freed")
        elif kind == "conversation.merged_away":
            self._run(lambda tx: actions.dequeue(tx, conversation_id))
            if event.get("assignee_id") is not None:
                self.drain_agent_teams(int(event["assignee_id"]), "capacity_freed")
        elif kind == "conversation.priority_changed":
            self._run(lambda tx: actions.requeue_keys(tx, conversation_id))

    def _settings_event(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "agent.presence_changed":
            self._presence_changed(int(event["agent_id"]), str(event.get("presence")))
        elif kind == "routing.agent_saved":
            self.drain_agent_teams(int(event["agent_id"]), "agent_settings")
        elif event.get("team_id") is not None:
            team_id = int(event["team_id"])
            self._run(lambda tx: actions.drain_team(tx, team_id, trigger="team_settings"))

    def _assigned(self, conversation_id: int, event: dict[str, Any]) -> None:
        previous: list[int | None] = [None]

        def work(tx: Tx) -> None:
            changes: dict[str, Any] = event.get("changes") or {}
            if "changes" not in event and event.get("message_id") is not None:
                # Recorded before its live update carried the change.
                changes = (
                    tx.session.execute(select(Message.data).where(Message.id == event["message_id"])).scalar() or {}
                )
            before_after = changes.get("assignee_id")
            previous[0] = before_after[0] if isinstance(before_after, list) and before_after else None
            conversation = tx.session.get(Conversation, conversation_id)
            if conversation is None:
                return
            if conversation.assignee_id is not None:
                actions.dequeue(tx, conversation_id)
                return
            # An agent who gave the conversation back is held off it for a while (routing.md).
            gave_back = previous[0] is not None and event.get("actor_agent_id") == previous[0]
            exclude = frozenset({previous[0]}) if gave_back and previous[0] is not None else frozenset()
            actions.route(tx, conversation_id, trigger="unassigned", exclude=exclude)

        self._run(work)
        if previous[0] is not None:
            self.drain_agent_teams(previous[0], "capacity_freed")

    def _presence_changed(self, agent_id: int, now_presence: str) -> None:
        if now_presence == "online":
            self.drain_agent_teams(agent_id, "agent_online")
        elif now_presence == "offline":
            self._run(lambda tx: actions.reassign_from(tx, agent_id))

    def hold_pass(self) -> None:
        """Route again the conversations whose giver-back's hold has ended (they may take it now)."""
        with self.runtime.transaction() as tx:
            conversation_ids = actions.holds_ended(tx)
        for conversation_id in conversation_ids:
            self._run(
                lambda tx, conversation_id=conversation_id: actions.route(  # type: ignore[misc]
                    tx, conversation_id, trigger="hold_ended"
                )
            )

    def drain_agent_teams(self, agent_id: int, trigger: str) -> None:
        with self.runtime.transaction() as tx:
            team_ids = actions.teams_of(tx, agent_id)
        for team_id in team_ids:
            self._run(lambda tx, team_id=team_id: actions.drain_team(tx, team_id, trigger=trigger))  # type: ignore[misc]

    # Presence ------------------------------------------------------------------------

    def watch(self, kind: str, principal: Principal) -> None:
        """Presence watcher (event loop thread): count sockets, hand the writes to the engine."""
        agent_id = principal.id
        with self._lock:
            if kind == "joined":
                self._connections[agent_id] += 1
            elif kind == "left":
                self._connections[agent_id] -= 1
                if self._connections[agent_id] <= 0:
                    del self._connections[agent_id]
                    self._last_beat.pop(agent_id, None)
                    self.engine.submit(
                        lambda: self._run(lambda tx: presence.disconnected(tx, agent_id, self.engine.node_id))
                    )
                return
            now = self.runtime.clock.now()
            last = self._last_beat.get(agent_id)
            if kind == "heartbeat" and last is not None and (now - last).total_seconds() < presence.HEARTBEAT_SECONDS:
                return
            self._last_beat[agent_id] = now
        self.engine.submit(lambda: self._run(lambda tx: presence.heartbeat(tx, [agent_id], self.engine.node_id)))

    def presence_pass(self) -> None:
        now = self.runtime.clock.now()
        with self._lock:
            connected = sorted(self._connections)
        due = self._last_refresh is None or (now - self._last_refresh).total_seconds() >= presence.HEARTBEAT_SECONDS
        if connected and due:
            self._last_refresh = now
            self._run(lambda tx: presence.heartbeat(tx, connected, self.engine.node_id))
        self._run(presence.expire)


def _customer_wrote(tx: Tx, event: dict[str, Any], conversation_id: int, at: datetime) -> None:
    # Cheapest test first: with no policy and no running timer there is nothing to do.
    if sla.has_work(tx, conversation_id) and not _auto_generated(tx, event):
        sla.customer_wrote(tx, conversation_id, at)


def _auto_generated(tx: Tx, event: dict[str, Any]) -> bool:
    message_id = event.get("message_id")
    if message_id is None:
        return False
    # A full load, not one column: automation, next in line, reads the same message.
    message = tx.session.get(Message, message_id)
    return bool(message is not None and message.auto_generated)


def _reselect(tx: Tx, conversation_id: int, at: datetime) -> None:
    # With no policy active and no timer running, no policy applies before or after.
    if sla.has_work(tx, conversation_id):
        sla.reselect(tx, conversation_id, at)


def _routes(event: dict[str, Any]) -> bool:
    """Whether `on_routing_event` routes the event's conversation."""
    kind = event.get("type")
    if kind in ROUTED_WHEN_NEW:
        return True
    return (
        kind == "message.created"
        and event.get("direction") == "inbound"
        and event.get("assignee_id") is None
        and event.get("team_id") is not None
    )
