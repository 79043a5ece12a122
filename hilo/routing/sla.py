"""SLA actions: choose a conversation's policy, run its timers, and the evaluation pass.

Each target (first response, next response, resolution) is a timer that counts time
(business time when the policy has a calendar) while the conversation waits on us; it
pauses while the conversation is pending. A timer stores the time it counted before its
current run (`consumed_seconds`) and when that run began, so its due time is
`add(running_since, target - consumed)` in the right calendar, and pausing never loses
time. The evaluation pass reads only timers whose `next_check_at` has come, on an index,
so it costs what is due, not what is open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update

from hilo.agents.models import Agent, team_members
from hilo.contacts.models import Contact
from hilo.conversations.models import PRIORITIES, Conversation, ConversationSla
from hilo.errors import ActionError
from hilo.hours.calendar import add_time, time_between
from hilo.hours.calendars import calendar
from hilo.hours.models import BusinessHours
from hilo.i18n import N_
from hilo.routing.actions import channel_kind
from hilo.routing.models import (
    SLA_KINDS,
    ConversationRouting,
    SlaPolicy,
    SlaTimer,
)
from hilo.runtime import Tx

LIVE = ("running", "paused")
PASS_BATCH = 500
CONDITION_KEYS = ("priorities", "channel_kinds", "team_ids", "contact_attributes")

# Built once: the engine runs these for every customer message (or every batch of them).
SELECT_ACTIVE_POLICIES = select(SlaPolicy).where(SlaPolicy.active.is_(True)).order_by(SlaPolicy.position, SlaPolicy.id)
_timers = cast(Table, SlaTimer.__table__)
SELECT_LIVE = (
    select(SlaTimer)
    .where(
        SlaTimer.conversation_id == bindparam("conversation_id"),
        SlaTimer.state.in_(LIVE),
        SlaTimer.kind.in_(bindparam("kinds", expanding=True)),
    )
    .order_by(SlaTimer.id)
)
SELECT_ANY_LIVE = (
    select(_timers.c.id)
    .where(
        _timers.c.conversation_id == bindparam("conversation_id"),
        _timers.c.state.in_(LIVE),
        _timers.c.kind.in_(SLA_KINDS),
    )
    .limit(1)
)
SELECT_LIVE_AMONG = (
    select(_timers.c.conversation_id)
    .where(
        _timers.c.conversation_id.in_(bindparam("conversation_ids", expanding=True)),
        _timers.c.state.in_(LIVE),
        _timers.c.kind.in_(SLA_KINDS),
    )
    .distinct()
)


@dataclass(frozen=True)
class LiveTimers:
    """Which of an engine batch's conversations had live timers when the batch began."""

    known: frozenset[int]
    live: frozenset[int]


LIVE_TIMERS_KEY = "sla_live_timers"
NOTHING_READ = LiveTimers(frozenset(), frozenset())


def _target(policy: SlaPolicy, kind: str) -> int | None:
    return {
        "first_response": policy.first_response_seconds,
        "next_response": policy.next_response_seconds,
        "resolution": policy.resolution_seconds,
    }[kind]


def matches(
    policy: SlaPolicy, conversation: Conversation, channel_kind: str | None, attributes: dict[str, Any]
) -> bool:
    conditions = policy.conditions or {}
    if conditions.get("priorities") and conversation.priority not in conditions["priorities"]:
        return False
    if conditions.get("channel_kinds") and channel_kind not in conditions["channel_kinds"]:
        return False
    if conditions.get("team_ids") and conversation.team_id not in conditions["team_ids"]:
        return False
    wanted = conditions.get("contact_attributes") or {}
    return all(attributes.get(key) == value for key, value in wanted.items())


def active_policies(tx: Tx) -> list[SlaPolicy]:
    """The active policies by position (read once per transaction or engine batch)."""
    return tx.cached_setting("sla_policies", lambda: list(tx.session.execute(SELECT_ACTIVE_POLICIES).scalars()))


def select_policy(tx: Tx, conversation: Conversation) -> SlaPolicy | None:
    """The first active policy, by position, whose conditions the conversation meets."""
    policies = active_policies(tx)
    if not policies:
        return None
    kind = channel_kind(tx, conversation.last_channel_account_id)
    attributes = (
        tx.session.execute(select(Contact.custom_attributes).where(Contact.id == conversation.contact_id)).scalar()
        or {}
    )
    for policy in policies:
        if matches(policy, conversation, kind, attributes):
            return policy
    return None


def _schedule(tx: Tx, timer: SlaTimer) -> None:
    """Work out due, warning and next-check times of a running timer (clear them otherwise)."""
    if timer.state != "running" or timer.running_since is None:
        timer.due_at = timer.warn_at = timer.next_check_at = None
        return
    cal = calendar(tx.session, timer.business_hours_id)
    timer.due_at = add_time(cal, timer.running_since, timer.target_seconds - timer.consumed_seconds)
    timer.warn_at = None
    if timer.warned_at is None and timer.breached_at is None and timer.warning_share < 1:
        budget = timer.warning_share * timer.target_seconds - timer.consumed_seconds
        timer.warn_at = add_time(cal, timer.running_since, budget)
    if timer.breached_at is not None:
        timer.next_check_at = None
    else:
        timer.next_check_at = timer.warn_at or timer.due_at


def _counted(tx: Tx, timer: SlaTimer, until: datetime) -> float:
    if timer.running_since is None:
        return 0.0
    return time_between(calendar(tx.session, timer.business_hours_id), timer.running_since, until)


def _start(tx: Tx, conversation: Conversation, policy: SlaPolicy, kind: str, at: datetime) -> SlaTimer | None:
    seconds = _target(policy, kind)
    if seconds is None:
        return None
    paused = conversation.status == "pending"
    timer = SlaTimer(
        conversation_id=conversation.id,
        policy_id=policy.id,
        kind=kind,
        state="paused" if paused else "running",
        target_seconds=seconds,
        warning_share=policy.warning_share,
        business_hours_id=policy.business_hours_id,
        started_at=at,
        consumed_seconds=0.0,
        running_since=None if paused else at,
        created_at=tx.now,
        updated_at=tx.now,
    )
    _schedule(tx, timer)
    tx.session.add(timer)
    return timer


def _live(tx: Tx, conversation_id: int, kinds: Iterable[str] = SLA_KINDS) -> list[SlaTimer]:
    return list(tx.session.execute(SELECT_LIVE, {"conversation_id": conversation_id, "kinds": list(kinds)}).scalars())


def _pause(tx: Tx, timer: SlaTimer, at: datetime) -> None:
    if timer.state != "running":
        return
    timer.consumed_seconds += _counted(tx, timer, at)
    timer.running_since = None
    timer.state = "paused"
    timer.updated_at = tx.now
    _schedule(tx, timer)


def _resume(tx: Tx, timer: SlaTimer, at: datetime) -> None:
    if timer.state != "paused":
        return
    timer.state = "running"
    timer.running_since = at
    timer.updated_at = tx.now
    _schedule(tx, timer)


def _stop(tx: Tx, conversation: Conversation, timer: SlaTimer, at: datetime, state: str) -> None:
    timer.consumed_seconds += _counted(tx, timer, at)
    timer.running_since = None
    timer.state = state
    timer.stopped_at = at
    timer.updated_at = tx.now
    _schedule(tx, timer)
    if state == "met":
        tx.record(
            "sla.met",
            conversation_id=conversation.id,
            contact_id=conversation.contact_id,
            data={
                "kind": timer.kind,
                "policy_id": timer.policy_id,
                "seconds": round(timer.consumed_seconds, 3),
                "target_seconds": timer.target_seconds,
                "breached": timer.breached_at is not None,
            },
        )


def summarize(tx: Tx, conversation_id: int) -> ConversationSla | None:
    """Store the conversation's SLA status and nearest due time from its timers."""
    tx.session.flush()
    timers = tx.session.execute(select(SlaTimer).where(SlaTimer.conversation_id == conversation_id)).scalars().all()
    relevant = [t for t in timers if t.state != "cancelled"]
    row = tx.session.get(ConversationSla, conversation_id)
    before = (row.status, row.due_at, row.due_kind) if row is not None else None
    if not relevant:
        if row is not None:
            tx.session.delete(row)
            _announce(tx, conversation_id, None)
        _queue_due(tx, conversation_id, None)
        return None
    live = [t for t in relevant if t.state in LIVE]
    running = [t for t in live if t.state == "running" and t.due_at is not None]
    if any(t.breached_at is not None for t in relevant):
        status = "breached"
    elif any(t.warned_at is not None for t in live):
        status = "warning"
    elif running:
        status = "on_track"
    elif live:
        status = "paused"
    else:
        status = "met"
    nearest = min(running, key=lambda t: t.due_at or t.started_at, default=None)
    if row is None:
        row = ConversationSla(conversation_id=conversation_id)
        tx.session.add(row)
    row.policy_id = next((t.policy_id for t in reversed(relevant)), None)
    row.status = status
    row.due_at = nearest.due_at if nearest else None
    row.due_kind = nearest.kind if nearest else None
    row.updated_at = tx.now
    _queue_due(tx, conversation_id, row.due_at)
    if before != (row.status, row.due_at, row.due_kind):
        _announce(tx, conversation_id, row)
    return row


def _announce(tx: Tx, conversation_id: int, row: ConversationSla | None) -> None:
    """Tell open pages the conversation's SLA summary changed (the header and list row show it)."""
    conversation = tx.session.get(Conversation, conversation_id)
    if conversation is None:
        return
    tx.publish_live(
        "sla.changed",
        conversation_id=conversation_id,
        contact_id=conversation.contact_id,
        realtime={
            "team_id": conversation.team_id,
            "assignee_id": conversation.assignee_id,
            "status": conversation.status,
            "sla_status": row.status if row is not None else None,
            "sla_kind": row.due_kind if row is not None else None,
            "due_at": _iso(row.due_at) if row is not None else None,
        },
    )


def _queue_due(tx: Tx, conversation_id: int, due: datetime | None) -> None:
    tx.session.execute(
        update(ConversationRouting)
        .where(ConversationRouting.conversation_id == conversation_id, ConversationRouting.queued_at.is_not(None))
        .values(sla_due_at=due)
    )


def apply_policy(tx: Tx, conversation_id: int, at: datetime) -> SlaPolicy | None:
    """Start the targets of a new conversation's policy."""
    if not active_policies(tx):
        return None
    conversation = tx.session.get(Conversation, conversation_id)
    if conversation is None or conversation.status == "resolved":
        return None
    policy = select_policy(tx, conversation)
    if policy is None or _live(tx, conversation_id):
        return policy
    if conversation.first_response_at is None:
        _start(tx, conversation, policy, "first_response", at)
    _start(tx, conversation, policy, "resolution", at)
    summarize(tx, conversation_id)
    tx.record(
        "sla.applied",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        data={"policy_id": policy.id, "policy": policy.name},
    )
    return policy


def read_live(tx: Tx, conversation_ids: set[int]) -> None:
    """Read in one query which of these conversations have live timers, for `has_work`.

    For an engine batch, before its events are handled. Only while no policy is active:
    then nothing but a conversation open again (`status_changed`) makes a timer live, so
    the caller leaves out the conversations with such an event in the batch. With a
    policy active `has_work` needs no query.
    """
    if not conversation_ids or active_policies(tx):
        return
    live = tx.session.execute(SELECT_LIVE_AMONG, {"conversation_ids": sorted(conversation_ids)}).scalars()
    found = LiveTimers(known=frozenset(conversation_ids), live=frozenset(live))
    tx.cached(LIVE_TIMERS_KEY, lambda: found)


def has_work(tx: Tx, conversation_id: int) -> bool:
    """Whether SLA timers run on this conversation or a policy could start one."""
    if active_policies(tx):
        return True
    read = tx.cached(LIVE_TIMERS_KEY, lambda: NOTHING_READ)
    if conversation_id in read.known:
        # Timers the batch stopped since are no harm: `customer_wrote` reads them again.
        return conversation_id in read.live
    return tx.session.execute(SELECT_ANY_LIVE, {"conversation_id": conversation_id}).first() is not None


def customer_wrote(tx: Tx, conversation_id: int, at: datetime) -> None:
    """An inbound message: resume paused timers and start the next-response target."""
    conversation = tx.session.get(Conversation, conversation_id)
    if conversation is None or conversation.status == "resolved":
        return
    live = _live(tx, conversation_id)
    if conversation.status != "pending":
        for timer in live:
            _resume(tx, timer, at)
    waiting_on_first = any(t.kind == "first_response" for t in live)
    has_next = any(t.kind == "next_response" for t in live)
    if not live and not active_policies(tx):
        # No target runs and none can start: the conversation's SLA summary stands.
        return
    if conversation.first_response_at is not None and not waiting_on_first and not has_next:
        policy_id = tx.session.execute(
            select(ConversationSla.policy_id).where(ConversationSla.conversation_id == conversation_id)
        ).scalar()
        policy = tx.session.get(SlaPolicy, policy_id) if policy_id else None
        if policy is not None and policy.active:
            _start(tx, conversation, policy, "next_response", at)
    summarize(tx, conversation_id)


def agent_replied(tx: Tx, conversation_id: int, at: datetime) -> None:
    """An agent's reply meets the first-response and next-response targets."""
    conversation = tx.session.get(Conversation, conversation_id)
    if conversation is None:
        return
    timers = _live(tx, conversation_id, ("first_response", "next_response"))
    for timer in timers:
        _stop(tx, conversation, timer, at, "met")
    if timers:
        summarize(tx, conversation_id)


def status_changed(tx: Tx, conversation_id: int, at: datetime) -> None:
    """Pause while pending, resume when open again, close the targets on resolve."""
    conversation = tx.session.get(Conversation, conversation_id)
    if conversation is None:
        return
    if conversation.status == "resolved":
        for timer in _live(tx, conversation_id):
            _stop(tx, conversation, timer, at, "met" if timer.kind == "resolution" else "cancelled")
    elif conversation.status == "pending":
        for timer in _live(tx, conversation_id):
            _pause(tx, timer, at)
    else:
        resolution = _live(tx, conversation_id, ("resolution",))
        if not resolution:
            _reopen_resolution(tx, conversation, at)
        for timer in _live(tx, conversation_id):
            _resume(tx, timer, at)
    summarize(tx, conversation_id)


def _reopen_resolution(tx: Tx, conversation: Conversation, at: datetime) -> None:
    """A conversation open again resumes its resolution target where it stopped."""
    last = tx.session.execute(
        select(SlaTimer)
        .where(SlaTimer.conversation_id == conversation.id, SlaTimer.kind == "resolution", SlaTimer.state == "met")
        .order_by(SlaTimer.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last is None:
        return
    last.state = "paused"
    last.stopped_at = None
    last.updated_at = tx.now
    _resume(tx, last, at)


def reselect(tx: Tx, conversation_id: int, at: datetime) -> None:
    """Priority, team or channel changed: move live timers to the policy that now applies."""
    conversation = tx.session.get(Conversation, conversation_id)
    if conversation is None or conversation.status == "resolved":
        return
    current = tx.session.get(ConversationSla, conversation_id)
    policy = select_policy(tx, conversation)
    if (policy.id if policy else None) == (current.policy_id if current else None):
        return
    live = _live(tx, conversation_id)
    for timer in live:
        seconds = _target(policy, timer.kind) if policy else None
        if policy is None or seconds is None:
            _stop(tx, conversation, timer, at, "cancelled")
            continue
        if timer.state == "running":
            # Count the time so far in the old calendar before switching.
            timer.consumed_seconds += _counted(tx, timer, at)
            timer.running_since = at
        timer.policy_id = policy.id
        timer.target_seconds = seconds
        timer.warning_share = policy.warning_share
        timer.business_hours_id = policy.business_hours_id
        timer.updated_at = tx.now
        _schedule(tx, timer)
    if policy is not None:
        kinds = {t.kind for t in live}
        if "resolution" not in kinds:
            _start(tx, conversation, policy, "resolution", at)
        if conversation.first_response_at is None and "first_response" not in kinds:
            _start(tx, conversation, policy, "first_response", at)
        tx.record(
            "sla.applied",
            conversation_id=conversation.id,
            contact_id=conversation.contact_id,
            data={"policy_id": policy.id, "policy": policy.name},
        )
    summarize(tx, conversation_id)


def cancel_all(tx: Tx, conversation_id: int, at: datetime) -> None:
    conversation = tx.session.get(Conversation, conversation_id)
    if conversation is None:
        return
    for timer in _live(tx, conversation_id):
        _stop(tx, conversation, timer, at, "cancelled")
    summarize(tx, conversation_id)


def _supervisors(tx: Tx, team_ids: set[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {team_id: [] for team_id in team_ids}
    if not team_ids:
        return found
    rows = tx.session.execute(
        select(team_members.c.team_id, Agent.id)
        .join(Agent, Agent.id == team_members.c.agent_id)
        .where(team_members.c.team_id.in_(team_ids), Agent.role.in_(("admin", "supervisor")), Agent.active.is_(True))
    ).all()
    for team_id, agent_id in rows:
        found[team_id].append(agent_id)
    return found


def evaluate(tx: Tx, limit: int = PASS_BATCH) -> int:
    """Record the warnings and breaches that have come due; return how many timers moved.

    Takes at most `limit` timers (claimed with SKIP LOCKED on PostgreSQL, so several API
    processes share the work); the caller repeats while it gets a full batch.
    """
    timers = list(
        tx.session.execute(
            select(SlaTimer)
            .where(SlaTimer.next_check_at <= tx.now)
            .order_by(SlaTimer.next_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not timers:
        return 0
    conversations = {
        row.id: row
        for row in tx.session.execute(
            select(
                Conversation.id,
                Conversation.contact_id,
                Conversation.team_id,
                Conversation.assignee_id,
                Conversation.status,
            ).where(Conversation.id.in_({t.conversation_id for t in timers}))
        ).all()
    }
    supervisors = _supervisors(tx, {c.team_id for c in conversations.values() if c.team_id is not None})
    breached: set[int] = set()
    warned: set[int] = set()
    for timer in timers:
        conversation = conversations[timer.conversation_id]
        if timer.due_at is not None and timer.due_at <= tx.now and timer.breached_at is None:
            timer.breached_at = tx.now
            timer.warned_at = timer.warned_at or tx.now
            kind = "sla.breached"
            breached.add(conversation.id)
        elif timer.warn_at is not None and timer.warn_at <= tx.now and timer.warned_at is None:
            timer.warned_at = tx.now
            kind = "sla.warning"
            warned.add(conversation.id)
        else:
            _schedule(tx, timer)
            continue
        timer.updated_at = tx.now
        _schedule(tx, timer)
        recipients = sorted(
            {a for a in [conversation.assignee_id, *supervisors.get(conversation.team_id or 0, [])] if a is not None}
        )
        tx.record(
            kind,
            conversation_id=conversation.id,
            contact_id=conversation.contact_id,
            data={
                "kind": timer.kind,
                "policy_id": timer.policy_id,
                "due_at": _iso(timer.due_at),
                "notified": recipients,
            },
            realtime={
                "team_id": conversation.team_id,
                "assignee_id": conversation.assignee_id,
                "status": conversation.status,
                "sla_kind": timer.kind,
                "due_at": _iso(timer.due_at),
                "only_agent_ids": recipients,
            },
        )
    _mark(tx, breached, "breached", ())
    _mark(tx, warned - breached, "warning", ("breached",))
    return len(timers)


def _mark(tx: Tx, conversation_ids: set[int], status: str, unless: tuple[str, ...]) -> None:
    """Set the summary status of many conversations in one statement (due times are unchanged:
    a warning or a breach does not move a deadline)."""
    if not conversation_ids:
        return
    tx.session.flush()
    query = update(ConversationSla).where(ConversationSla.conversation_id.in_(conversation_ids))
    if unless:
        query = query.where(ConversationSla.status.not_in(unless))
    tx.session.execute(query.values(status=status, updated_at=tx.now), execution_options={"synchronize_session": False})
    known = set(
        tx.session.execute(
            select(ConversationSla.conversation_id).where(ConversationSla.conversation_id.in_(conversation_ids))
        ).scalars()
    )
    for conversation_id in conversation_ids - known:
        summarize(tx, conversation_id)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def validate_policy(tx: Tx, fields: dict[str, Any]) -> None:
    conditions = fields.get("conditions") or {}
    unknown = set(conditions) - set(CONDITION_KEYS)
    if unknown:
        raise ActionError("sla_condition_invalid", N_("Unknown SLA condition: {name}."), 422, name=sorted(unknown)[0])
    if any(p not in PRIORITIES for p in conditions.get("priorities") or []):
        raise ActionError("priority_invalid", N_("Unknown priority."), 422)
    if not any(fields.get(f"{k}_seconds") for k in SLA_KINDS):
        raise ActionError(
            "sla_target_required", N_("Set at least one target: first response, next response or resolution."), 422
        )
    share = fields.get("warning_share", 0.8)
    if not 0 < share <= 1:
        raise ActionError("warning_share_invalid", N_("The warning share is a number above 0 and at most 1."), 422)
    hours_id = fields.get("business_hours_id")
    if hours_id is not None and tx.session.get(BusinessHours, hours_id) is None:
        raise ActionError("business_hours_not_found", N_("Business hours not found."), 422)


def save_policy(tx: Tx, policy: SlaPolicy | None, fields: dict[str, Any]) -> SlaPolicy:
    tx.forget_settings()
    validate_policy(tx, fields)
    name = fields["name"].strip()
    clash = tx.session.execute(select(SlaPolicy.id).where(SlaPolicy.name == name)).scalar()
    if clash is not None and (policy is None or clash != policy.id):
        raise ActionError("name_taken", N_("That name is already in use."), 409)
    if policy is None:
        policy = SlaPolicy(created_at=tx.now)
        tx.session.add(policy)
    policy.name = name
    policy.position = fields.get("position", 0)
    policy.active = fields.get("active", True)
    policy.conditions = fields.get("conditions") or {}
    policy.first_response_seconds = fields.get("first_response_seconds")
    policy.next_response_seconds = fields.get("next_response_seconds")
    policy.resolution_seconds = fields.get("resolution_seconds")
    policy.business_hours_id = fields.get("business_hours_id")
    policy.warning_share = fields.get("warning_share", 0.8)
    policy.updated_at = tx.now
    tx.session.flush()
    tx.record("sla.policy_saved", data={"policy_id": policy.id, "name": policy.name})
    return policy


def delete_policy(tx: Tx, policy: SlaPolicy) -> None:
    """Delete a policy; conversations keep the timers it started, with their targets."""
    tx.forget_settings()
    tx.session.execute(delete(SlaPolicy).where(SlaPolicy.id == policy.id))
    tx.record("sla.policy_deleted", data={"policy_id": policy.id, "name": policy.name})
