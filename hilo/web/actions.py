"""Agent-workspace actions: saved views, read markers and notifications."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from hilo.conversations.models import Conversation
from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.runtime import Record, Tx
from hilo.web.inbox import parse_filters
from hilo.web.models import NOTIFICATION_KINDS, SORTS, ConversationRead, Notification, SavedView

MAX_VIEWS = 50


def _only(agent_id: int, **extra: Any) -> dict[str, Any]:
    """Real-time payload for one agent's own tabs (no conversation access needed)."""
    return {"team_id": None, "assignee_id": None, "only_agent_ids": [agent_id], **extra}


def _check_view(name: str | None, sort: str | None) -> None:
    if name is not None and not name.strip():
        raise ActionError("name_required", N_("Give the view a name."), 422)
    if name is not None and len(name.strip()) > 80:
        raise ActionError("name_too_long", N_("Use a name of at most {n} characters."), 422, n=80)
    if sort is not None and sort not in SORTS:
        raise ActionError("sort_invalid", N_("Unknown sort order."), 422)


def create_view(tx: Tx, agent_id: int, name: str, filters: dict[str, Any], sort: str = "last_activity") -> SavedView:
    """Save an inbox view for `agent_id`; it is listed after their other views."""
    _check_view(name, sort)
    parsed = parse_filters(filters)
    count, last = tx.session.execute(
        select(func.count(SavedView.id), func.max(SavedView.position)).where(SavedView.agent_id == agent_id)
    ).one()
    if count >= MAX_VIEWS:
        raise ActionError("too_many_views", N_("You have {n} saved views already; delete one first."), 409, n=MAX_VIEWS)
    view = SavedView(
        agent_id=agent_id,
        name=name.strip(),
        filters=parsed.as_dict(),
        sort=sort,
        position=(last or 0) + 1,
        created_at=tx.now,
        updated_at=tx.now,
    )
    tx.session.add(view)
    tx.session.flush()
    tx.record("view.created", data={"view_id": view.id}, realtime=_only(agent_id, view_id=view.id))
    return view


def update_view(
    tx: Tx,
    view: SavedView,
    *,
    name: str | None = None,
    filters: dict[str, Any] | None = None,
    sort: str | None = None,
    position: int | None = None,
) -> SavedView:
    _check_view(name, sort)
    changed = []
    if name is not None and name.strip() != view.name:
        view.name = name.strip()
        changed.append("name")
    if filters is not None:
        normalized = parse_filters(filters).as_dict()
        if normalized != view.filters:
            view.filters = normalized
            changed.append("filters")
    if sort is not None and sort != view.sort:
        view.sort = sort
        changed.append("sort")
    if position is not None and position != view.position:
        view.position = position
        changed.append("position")
    if changed:
        view.updated_at = tx.now
        tx.session.flush()
        tx.record(
            "view.updated",
            data={"view_id": view.id, "changed": changed},
            realtime=_only(view.agent_id, view_id=view.id),
        )
    return view


def delete_view(tx: Tx, view: SavedView) -> None:
    tx.session.delete(view)
    tx.session.flush()
    tx.record("view.deleted", data={"view_id": view.id}, realtime=_only(view.agent_id, view_id=view.id))


def mark_read(tx: Tx, agent_id: int, conversation: Conversation) -> bool:
    """Record that the agent has read the conversation up to now; False if nothing was unread."""
    row = tx.session.get(ConversationRead, (agent_id, conversation.id))
    if row is not None and (conversation.last_inbound_at is None or row.read_at >= conversation.last_inbound_at):
        return False
    if row is None:
        tx.session.add(ConversationRead(agent_id=agent_id, conversation_id=conversation.id, read_at=tx.now))
    else:
        row.read_at = tx.now
    tx.session.flush()
    tx.record(
        "conversation.read",
        conversation_id=conversation.id,
        data={"agent_id": agent_id},
        realtime={
            "team_id": conversation.team_id,
            "assignee_id": conversation.assignee_id,
            "only_agent_ids": [agent_id],
        },
    )
    return True


@dataclass(frozen=True)
class Notice:
    """A notification to store: for whom, of what kind, about which conversation."""

    agent_id: int
    kind: str
    conversation: Conversation
    message_id: int | None
    actor_agent_id: int | None
    data: dict[str, Any]


def notify(
    tx: Tx,
    agent_id: int,
    kind: str,
    conversation: Conversation,
    *,
    message_id: int | None,
    actor_agent_id: int | None,
    data: dict[str, Any],
) -> Notification:
    """Store a notification for one agent and push it to their open pages."""
    return notify_many(tx, [Notice(agent_id, kind, conversation, message_id, actor_agent_id, data)])[0]


def notify_many(tx: Tx, notices: Sequence[Notice]) -> list[Notification]:
    """Store notifications and push each to its agent's open pages: one insert for the rows, one for the events."""
    for notice in notices:
        if notice.kind not in NOTIFICATION_KINDS:
            raise ActionError("notification_kind_invalid", N_("Unknown kind of notification."), 422)
    rows = [
        Notification(
            agent_id=n.agent_id,
            kind=n.kind,
            conversation_id=n.conversation.id,
            message_id=n.message_id,
            actor_agent_id=n.actor_agent_id,
            data=n.data,
            created_at=tx.now,
        )
        for n in notices
    ]
    if not rows:
        return rows
    tx.session.add_all(rows)
    tx.session.flush()
    tx.record_many(
        [
            Record(
                "notification.created",
                conversation_id=n.conversation.id,
                message_id=n.message_id,
                data={"notification_id": row.id, "agent_id": n.agent_id, "kind": n.kind},
                realtime={
                    "team_id": n.conversation.team_id,
                    "assignee_id": n.conversation.assignee_id,
                    "only_agent_ids": [n.agent_id],
                    "notification": {
                        "id": row.id,
                        "kind": n.kind,
                        "conversation_id": n.conversation.id,
                        "actor_agent_id": n.actor_agent_id,
                        **n.data,
                    },
                },
            )
            for n, row in zip(notices, rows, strict=True)
        ]
    )
    return rows


def mark_notifications_read(tx: Tx, agent_id: int, ids: Sequence[int] | None) -> int:
    """Mark the agent's notifications `ids` (None: all of them) as read; return how many changed."""
    query = update(Notification).where(Notification.agent_id == agent_id, Notification.read_at.is_(None))
    if ids is not None:
        query = query.where(Notification.id.in_(list(ids)))
    changed = tx.session.execute(query.values(read_at=tx.now)).rowcount or 0  # type: ignore[attr-defined]
    if changed:
        tx.record("notifications.read", data={"agent_id": agent_id, "count": changed}, realtime=_only(agent_id))
    return int(changed)
