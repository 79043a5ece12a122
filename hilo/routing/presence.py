"""Agent presence for routing: online, away or offline, shared by every API process.

An agent is online while at least one API process holds a live session for them: the
process writes a `presence_sessions` row per agent it serves, with an expiry pushed
forward by heartbeats (the websocket connecting, its pings, and a refresh of every open
socket each HEARTBEAT_SECONDS). A process that dies stops refreshing and its rows expire.
A closed socket leaves a short grace period, so a page reload does not count as leaving.
Away is the agent's own choice: still connected, but given no new conversations.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.routing.actions import agent_row
from hilo.routing.models import AVAILABILITIES, PresenceSession, RoutingAgent
from hilo.runtime import Tx

HEARTBEAT_SECONDS = 30
SESSION_TTL = timedelta(seconds=90)
RECONNECT_GRACE = timedelta(seconds=30)


def effective(row: RoutingAgent, tx: Tx) -> str:
    if row.online_until is None or row.online_until <= tx.now:
        return "offline"
    return "online" if row.availability == "available" else "away"


def announce(tx: Tx, row: RoutingAgent) -> str | None:
    """Record a presence change (the engine drains queues or re-assigns on it)."""
    now_presence = effective(row, tx)
    if now_presence == row.presence:
        return None
    previous = row.presence
    row.presence = now_presence
    row.updated_at = tx.now
    tx.session.flush()
    tx.record(
        "agent.presence_changed",
        data={"agent_id": row.agent_id, "presence": now_presence, "from": previous},
        realtime={"team_id": None, "assignee_id": None, "agent_id": row.agent_id, "presence": now_presence},
    )
    return now_presence


def _recompute(tx: Tx, row: RoutingAgent) -> None:
    row.online_until = tx.session.execute(
        select(func.max(PresenceSession.expires_at)).where(
            PresenceSession.agent_id == row.agent_id, PresenceSession.expires_at > tx.now
        )
    ).scalar()


def _touch(tx: Tx, agent_id: int, node_id: str, expires: datetime) -> None:
    result = tx.session.execute(
        update(PresenceSession)
        .where(PresenceSession.agent_id == agent_id, PresenceSession.node_id == node_id)
        .values(expires_at=expires)
    )
    if not getattr(result, "rowcount", 0):
        tx.session.add(PresenceSession(agent_id=agent_id, node_id=node_id, expires_at=expires))
        tx.session.flush()


def heartbeat(tx: Tx, agent_ids: list[int], node_id: str) -> None:
    """Keep these agents' sessions on this process alive for another SESSION_TTL."""
    expires = tx.now + SESSION_TTL
    for agent_id in agent_ids:
        row = agent_row(tx, agent_id)
        _touch(tx, agent_id, node_id, expires)
        if row.online_until is None or row.online_until < expires:
            row.online_until = expires
        announce(tx, row)


def disconnected(tx: Tx, agent_id: int, node_id: str) -> None:
    """The agent's last socket on this process closed: keep the session for the grace period."""
    row = agent_row(tx, agent_id)
    tx.session.execute(
        update(PresenceSession)
        .where(PresenceSession.agent_id == agent_id, PresenceSession.node_id == node_id)
        .values(expires_at=tx.now + RECONNECT_GRACE)
    )
    _recompute(tx, row)
    announce(tx, row)


def set_availability(tx: Tx, agent_id: int, availability: str) -> RoutingAgent:
    if availability not in AVAILABILITIES:
        raise ActionError("availability_invalid", N_("Choose available or away."), 422)
    row = agent_row(tx, agent_id)
    row.availability = availability
    row.updated_at = tx.now
    tx.session.flush()
    announce(tx, row)
    return row


def expire(tx: Tx) -> list[int]:
    """Drop expired sessions and announce the agents who went offline with them."""
    tx.session.execute(delete(PresenceSession).where(PresenceSession.expires_at <= tx.now))
    stale = tx.session.execute(
        select(RoutingAgent).where(RoutingAgent.presence != "offline", RoutingAgent.online_until <= tx.now)
    ).scalars()
    gone = []
    for row in list(stale):
        _recompute(tx, row)
        if announce(tx, row) == "offline":
            gone.append(row.agent_id)
    return gone
