"""Conversation actions: status, priority, assignment, labels, merge and split."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from hilo.agents.models import Agent, Team
from hilo.conversations.models import (
    PRIORITIES,
    STATUSES,
    Conversation,
    Label,
    Message,
    conversation_labels,
)
from hilo.errors import ActionError
from hilo.events.models import Event
from hilo.i18n import N_
from hilo.runtime import Tx


def realtime_of(conversation: Conversation, **extra: Any) -> dict[str, Any]:
    return {
        "team_id": conversation.team_id,
        "assignee_id": conversation.assignee_id,
        "status": conversation.status,
        **extra,
    }


# Built once: every conversation action writes one (statement building is costly per call).
INSERT_ACTIVITY = (
    insert(Message).values(direction="event", kind="event", body=None, status="received").returning(Message.id)
)


def _timeline_event(
    tx: Tx, conversation: Conversation, kind: str, data: dict[str, Any], live: dict[str, Any] | None = None
) -> None:
    """An activity line in the conversation's timeline, plus its event record (`live`: more for its live update)."""
    result = tx.session.connection().execute(
        INSERT_ACTIVITY,
        {
            "conversation_id": conversation.id,
            "contact_id": conversation.contact_id,
            "author_agent_id": tx.actor_agent_id,
            "data": {"event": kind, **data},
            "created_at": tx.now,
        },
    )
    message_id = result.scalar_one()
    tx.record(
        kind,
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        message_id=message_id,
        data=data,
        realtime=realtime_of(conversation, **(live or {})),
    )


def _open_conflict(tx: Tx, conversation: Conversation) -> int | None:
    return tx.session.execute(
        select(Conversation.id).where(
            Conversation.contact_id == conversation.contact_id,
            Conversation.id != conversation.id,
            Conversation.status != "resolved",
            Conversation.merged_into_id.is_(None),
        )
    ).scalar()


def set_status(tx: Tx, conversation: Conversation, status: str, snoozed_until: datetime | None = None) -> None:
    if status not in STATUSES:
        raise ActionError("status_invalid", N_("Unknown status."), 422)
    if status == "snoozed" and (snoozed_until is None or snoozed_until <= tx.now):
        raise ActionError("snooze_time_required", N_("Choose a time in the future to snooze until."), 422)
    if status == conversation.status and snoozed_until == conversation.snoozed_until:
        return
    if conversation.merged_into_id is not None:
        raise ActionError("conversation_merged", N_("This conversation was merged into another one."), 409)
    if conversation.status == "resolved" and status != "resolved":
        other = _open_conflict(tx, conversation)
        if other is not None:
            raise ActionError(
                "contact_has_open_conversation",
                N_("This contact already has an open conversation (#{id}). Merge them instead."),
                409,
                id=other,
            )
    previous = conversation.status
    conversation.status = status
    conversation.snoozed_until = snoozed_until if status == "snoozed" else None
    conversation.resolved_at = tx.now if status == "resolved" else None
    if status == "resolved":
        conversation.waiting_since = None
    conversation.updated_at = tx.now
    tx.session.flush()
    _timeline_event(
        tx,
        conversation,
        "conversation.status_changed",
        {"from": previous, "to": status, "snoozed_until": snoozed_until.isoformat() if snoozed_until else None},
    )


def set_priority(tx: Tx, conversation: Conversation, priority: str) -> None:
    if priority not in PRIORITIES:
        raise ActionError("priority_invalid", N_("Unknown priority."), 422)
    if priority == conversation.priority:
        return
    previous = conversation.priority
    conversation.priority = priority
    conversation.updated_at = tx.now
    tx.session.flush()
    _timeline_event(tx, conversation, "conversation.priority_changed", {"from": previous, "to": priority})


def assign(
    tx: Tx,
    conversation: Conversation,
    *,
    agent_id: int | None | object = ...,
    team_id: int | None | object = ...,
    agent_checked: bool = False,
) -> None:
    """Assign to an agent and/or a team; `None` unassigns, `...` leaves unchanged.

    `agent_checked`: the caller has just read, in this transaction, that the agent exists
    and is active (routing's candidate query does).
    """
    changes: dict[str, Any] = {}
    if agent_id is not ...:
        if agent_id is not None and not agent_checked:
            agent = tx.session.get(Agent, agent_id)
            if agent is None or not agent.active:
                raise ActionError("agent_not_found", N_("Agent not found."), 422)
        if agent_id != conversation.assignee_id:
            changes["assignee_id"] = [conversation.assignee_id, agent_id]
            conversation.assignee_id = agent_id  # type: ignore[assignment]
    if team_id is not ...:
        if team_id is not None and tx.session.get(Team, team_id) is None:
            raise ActionError("team_not_found", N_("Team not found."), 422)
        if team_id != conversation.team_id:
            changes["team_id"] = [conversation.team_id, team_id]
            conversation.team_id = team_id  # type: ignore[assignment]
    if not changes:
        return
    conversation.updated_at = tx.now
    tx.session.flush()
    # The consumers (routing, notifications) read the change from the event itself.
    _timeline_event(tx, conversation, "conversation.assigned", changes, {"changes": changes})


def set_labels(tx: Tx, conversation: Conversation, names: list[str]) -> None:
    wanted = sorted({n.strip().lower() for n in names if n and n.strip()})
    if any(len(n) > 64 for n in wanted):
        raise ActionError("label_invalid", N_("Labels are at most 64 characters long."), 422)
    current = sorted(label.name for label in conversation.labels)
    if wanted == current:
        return
    labels = []
    for name in wanted:
        label = tx.session.execute(select(Label).where(Label.name == name)).scalar_one_or_none()
        if label is None:
            label = Label(name=name)
            tx.session.add(label)
            tx.session.flush()
        labels.append(label)
    conversation.labels = labels
    conversation.updated_at = tx.now
    tx.session.flush()
    _timeline_event(tx, conversation, "conversation.labels_changed", {"from": current, "to": wanted})


def merge_conversation_rows(tx: Tx, *, source_id: int, target_id: int) -> None:
    """Move every message of `source` into `target` and close `source` as merged."""
    session = tx.session
    source = session.get(Conversation, source_id)
    target = session.get(Conversation, target_id)
    if source is None or target is None:
        raise ActionError("conversation_not_found", N_("Conversation not found."), 404)
    moved = (
        session.execute(
            update(Message)
            .where(Message.conversation_id == source_id)
            .values(conversation_id=target_id)
            .returning(Message.id)
        )
        .scalars()
        .all()
    )
    labels = (
        session.execute(
            select(conversation_labels.c.label_id).where(conversation_labels.c.conversation_id == source_id)
        )
        .scalars()
        .all()
    )
    existing = set(
        session.execute(
            select(conversation_labels.c.label_id).where(conversation_labels.c.conversation_id == target_id)
        )
        .scalars()
        .all()
    )
    # What the merge changes of the source, so that splitting the contacts again can put it back.
    source_state = {
        "status": source.status,
        "resolved_at": _iso(source.resolved_at),
        "waiting_since": _iso(source.waiting_since),
        "labels": sorted(labels),
        "labels_added": sorted(set(labels) - existing),
    }
    waiting_since = source.waiting_since
    for label_id in set(labels) - existing:
        session.execute(insert(conversation_labels).values(conversation_id=target_id, label_id=label_id))
    session.execute(delete(conversation_labels).where(conversation_labels.c.conversation_id == source_id))
    source.status = "resolved"
    source.resolved_at = tx.now
    source.merged_into_id = target_id
    source.waiting_since = None
    session.flush()
    stats = session.execute(
        select(func.count(Message.id), func.max(Message.created_at)).where(Message.conversation_id == target_id)
    ).one()
    target.message_count = stats[0]
    target.last_message_at = max(target.last_message_at, stats[1] or target.last_message_at)
    if waiting_since and (target.waiting_since is None or waiting_since < target.waiting_since):
        target.waiting_since = waiting_since
    session.expire(target, ["labels"])
    session.flush()
    _timeline_event(
        tx,
        target,
        "conversation.merged",
        {
            "source_id": source_id,
            "message_ids": list(moved),
            "source_contact_id": source.contact_id,
            "source_state": source_state,
        },
    )
    tx.record(
        "conversation.merged_away",
        conversation_id=source_id,
        contact_id=source.contact_id,
        data={"target_id": target_id},
        realtime=realtime_of(source, merged_into_id=target_id),
    )


def unmerge_conversation_rows(tx: Tx, source: Conversation, *, identity_ids: list[int]) -> list[int]:
    """Take `source` back out of the conversation it was merged into, as it was; return the
    ids of the messages that went back.

    The messages the merge moved go back, and so do the joined thread's later messages from
    or to `identity_ids` (the customer wrote on after the merge, or was answered); notes
    and activity added to the joined thread after the merge stay there. `source` gets back
    the status, waiting time and labels it had, unless its contact has another unresolved
    conversation by now (one thread per customer): then it comes back resolved. The caller
    has given `source` its contact.
    """
    session = tx.session
    target = session.get(Conversation, source.merged_into_id)
    if target is None:
        raise ActionError("conversation_not_found", N_("Conversation not found."), 404)
    record = _merge_record(tx, target.id, source.id)
    state = record.get("source_state") or {}
    merged_ids = [int(i) for i in record.get("message_ids") or []]
    while target.merged_into_id is not None:
        # The joined thread was merged on into another: the messages are there now.
        onward = session.get(Conversation, target.merged_into_id)
        if onward is None:
            break
        target = onward
    moving = list(
        session.execute(
            select(Message.id).where(
                Message.conversation_id == target.id,
                Message.id.in_(merged_ids) | Message.identity_id.in_(identity_ids),
            )
        ).scalars()
    )
    if moving:
        session.execute(
            update(Message)
            .where(Message.id.in_(moving))
            .values(conversation_id=source.id, contact_id=source.contact_id)
        )
    source.merged_into_id = None
    session.flush()
    # A merge made before states were recorded joined an unresolved conversation: open.
    status = state.get("status") or "open"
    if status != "resolved" and _open_conflict(tx, source) is not None:
        status = "resolved"
    source.status = status
    source.resolved_at = (_from_iso(state.get("resolved_at")) or tx.now) if status == "resolved" else None
    source.waiting_since = _from_iso(state.get("waiting_since")) if status != "resolved" else None
    source.updated_at = tx.now
    _restore_labels(tx, source, target, state)
    for conversation in (source, target):
        _recount(tx, conversation)
    session.flush()
    _timeline_event(tx, target, "conversation.unmerged", {"source_id": source.id, "message_ids": moving})
    _timeline_event(tx, source, "conversation.unmerged", {"source_id": source.id, "target_id": target.id})
    if status != "resolved":
        # Routing and SLA timers take the conversation up again as for any reopening.
        _timeline_event(
            tx, source, "conversation.status_changed", {"from": "resolved", "to": status, "reason": "unmerged"}
        )
    return moving


def _merge_record(tx: Tx, target_id: int, source_id: int) -> dict[str, Any]:
    """The data of the latest merge of `source_id` into `target_id` (its timeline event)."""
    rows = tx.session.execute(
        select(Event.data)
        .where(Event.conversation_id == target_id, Event.kind == "conversation.merged")
        .order_by(Event.id.desc())
    ).scalars()
    return next((data for data in rows if isinstance(data, dict) and data.get("source_id") == source_id), {})


def _restore_labels(tx: Tx, source: Conversation, target: Conversation, state: dict[str, Any]) -> None:
    """Give `source` its labels again and take from `target` those only the merge gave it."""
    session = tx.session
    labels = {int(i) for i in state.get("labels") or []}
    known = set(session.execute(select(Label.id).where(Label.id.in_(labels))).scalars()) if labels else set()
    held = set(
        session.execute(
            select(conversation_labels.c.label_id).where(conversation_labels.c.conversation_id == source.id)
        ).scalars()
    )
    for label_id in sorted(known - held):
        session.execute(insert(conversation_labels).values(conversation_id=source.id, label_id=label_id))
    added = [int(i) for i in state.get("labels_added") or []]
    if added:
        session.execute(
            delete(conversation_labels).where(
                conversation_labels.c.conversation_id == target.id, conversation_labels.c.label_id.in_(added)
            )
        )
    session.expire(source, ["labels"])
    session.expire(target, ["labels"])


def _recount(tx: Tx, conversation: Conversation) -> None:
    """Count a conversation's messages again and find its latest, and its customer's latest."""
    session = tx.session
    count, latest = session.execute(
        select(func.count(Message.id), func.max(Message.created_at)).where(Message.conversation_id == conversation.id)
    ).one()
    conversation.message_count = count
    if latest is not None:
        conversation.last_message_at = latest
    last_inbound = session.execute(
        select(Message.created_at, Message.channel_account_id)
        .where(Message.conversation_id == conversation.id, Message.direction == "inbound")
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    if last_inbound is not None:
        # The default reply channel is the one the customer of this conversation wrote on last.
        conversation.last_inbound_at = last_inbound.created_at
        conversation.last_channel_account_id = last_inbound.channel_account_id


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _from_iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def split_conversation(tx: Tx, conversation: Conversation, from_message_id: int) -> Conversation:
    """Move the message `from_message_id` and every later one to a new conversation.

    The original keeps the earlier messages and is resolved, so that the new one is the
    contact's open thread.
    """
    session = tx.session
    first = session.get(Message, from_message_id)
    if first is None or first.conversation_id != conversation.id:
        raise ActionError("message_not_in_conversation", N_("That message is not in this conversation."), 422)
    earliest = session.execute(select(func.min(Message.id)).where(Message.conversation_id == conversation.id)).scalar()
    if earliest == from_message_id:
        raise ActionError(
            "split_whole_conversation", N_("Choose a later message: the split would move everything."), 422
        )
    keep_status = conversation.status
    conversation.status = "resolved"
    conversation.resolved_at = tx.now
    conversation.waiting_since = None
    session.flush()
    new = Conversation(
        contact_id=conversation.contact_id,
        status=keep_status if keep_status != "resolved" else "resolved",
        priority=conversation.priority,
        assignee_id=conversation.assignee_id,
        team_id=conversation.team_id,
        subject=conversation.subject,
        last_channel_account_id=conversation.last_channel_account_id,
        created_at=tx.now,
        updated_at=tx.now,
        last_message_at=tx.now,
        resolved_at=tx.now if keep_status == "resolved" else None,
    )
    session.add(new)
    session.flush()
    moved = (
        session.execute(
            update(Message)
            .where(Message.conversation_id == conversation.id, Message.id >= from_message_id)
            .values(conversation_id=new.id)
            .returning(Message.id)
        )
        .scalars()
        .all()
    )
    for target in (conversation, new):
        stats = session.execute(
            select(
                func.count(Message.id),
                func.max(Message.created_at),
                func.max(Message.created_at).filter(Message.direction == "inbound"),
            ).where(Message.conversation_id == target.id)
        ).one()
        target.message_count = stats[0]
        target.last_message_at = stats[1] or target.created_at
        target.last_inbound_at = stats[2]
    session.flush()
    _timeline_event(tx, conversation, "conversation.split", {"new_conversation_id": new.id, "message_ids": list(moved)})
    _timeline_event(tx, new, "conversation.split_from", {"source_id": conversation.id, "message_ids": list(moved)})
    return new


def wake_snoozed(tx: Tx, limit: int = 200) -> int:
    """Re-open snoozed conversations whose time has come; return how many woke."""
    due = (
        tx.session.execute(
            select(Conversation)
            .where(Conversation.status == "snoozed", Conversation.snoozed_until <= tx.now)
            .order_by(Conversation.snoozed_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    for conversation in due:
        conversation.status = "open"
        conversation.snoozed_until = None
        conversation.updated_at = tx.now
        tx.session.flush()
        _timeline_event(
            tx, conversation, "conversation.status_changed", {"from": "snoozed", "to": "open", "reason": "snooze_ended"}
        )
    return len(due)


def unassign_all(tx: Tx, agent_id: int) -> int:
    """Hand an agent's unresolved conversations back to their teams' queues; returns how many."""
    rows = tx.session.execute(
        select(Conversation).where(Conversation.assignee_id == agent_id, Conversation.status != "resolved")
    ).scalars()
    unassigned = 0
    for conversation in rows:
        assign(tx, conversation, agent_id=None)
        unassigned += 1
    return unassigned
