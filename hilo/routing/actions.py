"""Routing actions: team and agent routing settings, the decision that gives a conversation
to an agent (or queues it), the queue drain as capacity frees, and re-assignment.

A decision runs inside the caller's transaction and holds its team's routing row
(`FOR UPDATE` on PostgreSQL; SQLite serialises writers anyway), so two API processes
never hand the same free slot out twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import (
    ColumnElement,
    bindparam,
    exists,
    func,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.util import identity_key

from hilo.agents.models import Agent, Team, team_members
from hilo.channels.models import ChannelAccount
from hilo.conversations import actions as conv_actions
from hilo.conversations.models import Conversation, ConversationSla
from hilo.errors import ActionError
from hilo.hours.models import BusinessHours
from hilo.i18n import N_
from hilo.routing.capacity import CHANNEL_CLASSES, channel_class
from hilo.routing.models import (
    STRATEGIES,
    ConversationRouting,
    RoutingAgent,
    RoutingTeam,
)
from hilo.routing.strategies import (
    CONVERSATIONS_WITH_ROUTING,
    GIVE_BACK_HOLD,
    IN_QUEUE,
    LOCK_TEAM,
    ONLY_EXCLUDED,
    QUEUE_HEAD,
    QUEUE_ORDER,
    SQL_STRATEGIES,
    Candidate,
    choose,
    gave_back,
    held_and_avoided,
    loads,
    online_members,
    pick,
)
from hilo.runtime import Runtime, Tx

PRIORITY_RANK = {"urgent": 0, "high": 1, "medium": 2, "low": 3, "none": 4}
MAX_SKILLS = 50
# Queued conversations read per query while draining a queue (it pages on while anyone has room).
DRAIN_BATCH = 200


def load_for_routing(tx: Tx, conversation_ids: set[int]) -> None:
    """Load these conversations and their routing rows in one query, for `decide`.

    For an engine batch: `decide` then finds them in the session. Kept in `tx.retained`,
    as the session holds what it loaded only weakly.
    """
    if conversation_ids:
        rows = tx.session.execute(CONVERSATIONS_WITH_ROUTING, {"conversation_ids": sorted(conversation_ids)}).all()
        tx.retained.extend(item for row in rows for item in row if item is not None)
        _routing_loaded(tx).update(conversation_ids)


# The conversations whose routing rows (or their absence) this batch loaded (`load_for_routing`).
ROUTING_LOADED = "routing_loaded"


def _routing_loaded(tx: Tx) -> set[int]:
    return tx.cached(ROUTING_LOADED, set[int])


def routing_of(tx: Tx, conversation_id: int) -> ConversationRouting | None:
    """The conversation's routing row if it has one: without a query when the batch loaded it."""
    if conversation_id not in _routing_loaded(tx):
        return tx.session.get(ConversationRouting, conversation_id)
    if tx.session.new:
        tx.session.flush()  # a row added since is then in the identity map
    found = tx.session.identity_map.get(identity_key(ConversationRouting, conversation_id))
    return cast(ConversationRouting | None, found)


STAMP_ASSIGNED = (
    update(RoutingAgent).where(RoutingAgent.agent_id == bindparam("agent")).values(last_assigned_at=bindparam("at"))
)


def lock_team(tx: Tx, team_id: int) -> RoutingTeam | None:
    """The team's routing row, locked until the transaction ends (read once per transaction or
    engine batch: the lock is held all along, and the session keeps the row current)."""
    locked = tx.cached("routing_teams_locked", dict[int, RoutingTeam])
    team = locked.get(team_id)
    if team is None:
        team = tx.session.execute(LOCK_TEAM, {"team_id": team_id}).scalar_one_or_none()
        if team is not None:
            locked[team_id] = team
    return team


# A channel account never changes kind: each runtime remembers the kinds it looked up.
_kinds: WeakKeyDictionary[Runtime, dict[int, str | None]] = WeakKeyDictionary()


def channel_kind(tx: Tx, account_id: int | None) -> str | None:
    if account_id is None:
        return None
    known = _kinds.setdefault(tx.runtime, {})
    if account_id not in known:
        known[account_id] = tx.session.execute(
            select(ChannelAccount.kind).where(ChannelAccount.id == account_id)
        ).scalar()
    return known[account_id]


def conversation_class(tx: Tx, conversation: Conversation) -> str:
    return channel_class(channel_kind(tx, conversation.last_channel_account_id))


def _routing_row(tx: Tx, conversation_id: int) -> ConversationRouting:
    row = routing_of(tx, conversation_id)
    if row is None:
        row = ConversationRouting(
            conversation_id=conversation_id, required_skills=[], excluded_agent_ids=[], updated_at=tx.now
        )
        tx.session.add(row)
        tx.session.flush()
    return row


def _decision(
    tx: Tx, conversation: Conversation, team: RoutingTeam, agent_id: int | None, reason: str, trigger: str, **extra: Any
) -> None:
    data = {
        "agent_id": agent_id,
        "team_id": team.team_id,
        "strategy": team.strategy,
        "reason": reason,
        "trigger": trigger,
        **extra,
    }
    tx.record(
        "routing.decision",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        data=data,
        realtime=conv_actions.realtime_of(conversation, decision=data),
    )


def _give(
    tx: Tx,
    conversation: Conversation,
    team: RoutingTeam,
    chosen: Candidate,
    reason: str,
    trigger: str,
    routing: ConversationRouting | None,
) -> None:
    waited_since = conversation.waiting_since
    conv_actions.assign(tx, conversation, agent_id=chosen.agent_id, agent_checked=True)
    if routing is not None and routing.queued_at is not None:
        routing.queued_at = None
        routing.reason = None
        routing.updated_at = tx.now
    if team.strategy == "round_robin":
        team.last_agent_id = chosen.agent_id
    tx.session.connection().execute(STAMP_ASSIGNED, {"agent": chosen.agent_id, "at": tx.now})
    chosen.last_assigned_at = tx.now
    waited = (tx.now - waited_since).total_seconds() if waited_since else None
    _decision(tx, conversation, team, chosen.agent_id, reason, trigger, waited_seconds=waited)


def _place(tx: Tx, conversation: Conversation, team: RoutingTeam, klass: str) -> tuple[ConversationRouting, bool]:
    """Put the conversation in its team's queue with fresh sort keys; True when it was not there."""
    row = _routing_row(tx, conversation.id)
    newly = row.queued_at is None or row.team_id != team.team_id
    due = tx.session.execute(
        select(ConversationSla.due_at).where(ConversationSla.conversation_id == conversation.id)
    ).scalar()
    row.queued_at = row.queued_at if not newly else tx.now
    row.team_id = team.team_id
    row.priority_rank = PRIORITY_RANK.get(conversation.priority, 4)
    row.sla_due_at = due
    row.waiting_since = conversation.waiting_since or row.queued_at
    row.channel_class = klass
    if newly:
        row.reason = None
    row.updated_at = tx.now
    tx.session.flush()
    return row, newly


def _waits(
    tx: Tx,
    conversation: Conversation,
    team: RoutingTeam,
    row: ConversationRouting,
    newly: bool,
    reason: str,
    trigger: str,
) -> None:
    """Set why a queued conversation waits; a new place or a new reason is a decision."""
    changed = newly or row.reason != reason
    row.reason = reason
    row.updated_at = tx.now
    # Written even when this transaction already set the same time: `holds_ended` reads it
    # as when the reason was last worked out (left out, `onupdate` would put the wall clock).
    flag_modified(row, "updated_at")
    tx.session.flush()
    if changed:
        _decision(tx, conversation, team, None, reason, trigger, queued=True)


def _enqueue(tx: Tx, conversation: Conversation, team: RoutingTeam, klass: str, reason: str, trigger: str) -> None:
    row, newly = _place(tx, conversation, team, klass)
    _waits(tx, conversation, team, row, newly, reason, trigger)


def dequeue(tx: Tx, conversation_id: int) -> None:
    """Take the conversation out of its team's queue, if it waits in one."""
    row = routing_of(tx, conversation_id)
    if row is None or row.queued_at is None:
        return
    row.queued_at = None
    row.reason = None
    row.updated_at = tx.now


def routable(conversation: Conversation | None) -> bool:
    return (
        conversation is not None
        and conversation.merged_into_id is None
        and conversation.status == "open"
        and conversation.assignee_id is None
        and conversation.team_id is not None
    )


# The queue's order: priority, then SLA due time (none last), then waiting time. The
# partial index ix_conversation_routing_queue serves it.
def skills_within(
    dialect: str, skills: Iterable[str], required: Any = ConversationRouting.required_skills
) -> ColumnElement[bool]:
    """SQL: every skill in `required` (a JSON list column) is among `skills`."""
    wanted = sorted(set(skills))
    if dialect == "postgresql":
        return type_coerce(required, JSONB).contained_by(type_coerce(wanted, JSONB))
    each = func.json_each(required).table_valued("value")
    return ~exists(select(literal(1)).select_from(each).where(each.c.value.not_in(wanted)))


def _queue_ahead(tx: Tx, team: RoutingTeam, conversation_id: int, klass: str, chosen: Candidate, skilled: bool) -> bool:
    """Whether the head of the team's queue holds another conversation the chosen agent
    might take instead: the same kind of channel and (skills strategy) skills they have."""
    statement = select(literal(1)).select_from(QUEUE_HEAD).where(QUEUE_HEAD.c.channel_class == klass).limit(1)
    if skilled:
        statement = statement.where(skills_within(tx.runtime.db.dialect, chosen.skills, QUEUE_HEAD.c.required_skills))
    params = {"team_id": team.team_id, "conversation_id": conversation_id}
    return tx.session.connection().execute(statement, params).first() is not None


@dataclass
class Decision:
    """Who gets a conversation, or why nobody can take it now (`chosen` None, `reason`).

    `queue_first`: someone could take it, but the team's queue holds conversations they
    might take too; carrying out then drains the queue with this conversation in it.
    """

    conversation: Conversation
    routing: ConversationRouting | None
    team: RoutingTeam
    klass: str
    chosen: Candidate | None
    reason: str
    queue_first: bool = False


def decide(tx: Tx, conversation_id: int, *, exclude: frozenset[int] = frozenset()) -> Decision | None:
    """Choose the agent for an open, unassigned team conversation, holding the team's lock.

    None when the conversation is not for routing (assigned, closed, no team, or a team
    without automatic assignment). Changes nothing but the agents `exclude` adds to those
    who gave the conversation back, and a closed conversation's place in the queue.
    """
    # Found in the session when the engine's batch loaded it (`load_for_routing`).
    conversation = tx.session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    if not routable(conversation):
        if conversation.status != "open":
            routing = routing_of(tx, conversation_id)
            if routing is not None and routing.queued_at is not None:
                dequeue(tx, conversation_id)
        return None
    routing = routing_of(tx, conversation_id)
    assert conversation.team_id is not None
    team = lock_team(tx, conversation.team_id)
    if team is None or not team.auto_assign:
        return None
    klass = conversation_class(tx, conversation)
    if exclude:
        routing = routing or _routing_row(tx, conversation_id)
        given = gave_back(routing.excluded_agent_ids) | dict.fromkeys(exclude, tx.now)
        routing.excluded_agent_ids = [
            {"agent_id": agent_id, "at": at.isoformat()} for agent_id, at in sorted(given.items())
        ]
        routing.updated_at = tx.now
    required = frozenset(routing.required_skills or []) if routing else frozenset()
    held, avoided = held_and_avoided(routing.excluded_agent_ids if routing else None, tx.now)
    picked = pick(tx, team, klass, held | avoided, conversation_id) if team.strategy in SQL_STRATEGIES else None
    reason = team.strategy
    if picked is not None:
        chosen: Candidate | None
        chosen, queue_first = picked
    else:
        # Skills-based, or nobody free: the full candidate list says who fits, or why nobody does.
        candidates = online_members(tx, team.team_id)
        chosen, reason = choose(
            team.strategy, candidates, klass, required, cursor=team.last_agent_id, exclude=held, avoid=avoided
        )
        queue_first = chosen is not None and _queue_ahead(
            tx, team, conversation_id, klass, chosen, team.strategy == "skills"
        )
    return Decision(conversation, routing, team, klass, chosen, reason, queue_first)


def carry_out(tx: Tx, decision: Decision, *, trigger: str) -> int | None:
    """Assign the chosen agent, or queue the conversation; record the decision either way."""
    if decision.chosen is None:
        _enqueue(tx, decision.conversation, decision.team, decision.klass, decision.reason, trigger)
        return None
    if decision.queue_first:
        return _serve_queue_first(tx, decision, trigger)
    _give(tx, decision.conversation, decision.team, decision.chosen, decision.reason, trigger, decision.routing)
    return decision.chosen.agent_id


def _serve_queue_first(tx: Tx, decision: Decision, trigger: str) -> int | None:
    """Queue the conversation, then drain the queue in order: it is served in its turn."""
    conversation, team, klass = decision.conversation, decision.team, decision.klass
    row, newly = _place(tx, conversation, team, klass)
    candidates = online_members(tx, team.team_id)
    _drain(tx, team, candidates, trigger)
    if row.queued_at is None:
        return conversation.assignee_id
    # Those ahead of it took the free places (or it needs what nobody left has): say why it waits.
    held, avoided = held_and_avoided(row.excluded_agent_ids, tx.now)
    chosen, reason = choose(
        team.strategy,
        candidates,
        klass,
        frozenset(row.required_skills or []),
        cursor=team.last_agent_id,
        exclude=held,
        avoid=avoided,
    )
    if chosen is not None:
        _give(tx, conversation, team, chosen, reason, trigger, row)
        return chosen.agent_id
    _waits(tx, conversation, team, row, newly, reason, trigger)
    return None


def route(tx: Tx, conversation_id: int, *, trigger: str, exclude: frozenset[int] = frozenset()) -> int | None:
    """Give an open, unassigned team conversation to an agent, or queue it; return the agent."""
    decision = decide(tx, conversation_id, exclude=exclude)
    return carry_out(tx, decision, trigger=trigger) if decision is not None else None


def drain_team(tx: Tx, team_id: int, *, trigger: str) -> int:
    """Assign queued conversations of a team in queue order while agents have room."""
    team = lock_team(tx, team_id)
    if team is None or not team.auto_assign:
        return 0
    return _drain(tx, team, online_members(tx, team_id), trigger)


def _drain(tx: Tx, team: RoutingTeam, candidates: list[Candidate], trigger: str) -> int:
    """Go through the queue in order, giving each conversation someone present can take to
    them, until nobody has room or the queue ends; `candidates` carry their new loads.

    The query leaves out what nobody with room could take (a kind of channel nobody has
    room for; under the skills strategy, a skill none of them has), so conversations that
    wait for someone absent never hold up those behind them. What is left but still not
    taken (the only fitting agents gave it back) is skipped, and the next page starts
    after it.
    """

    def room(klass: str) -> bool:
        return any(c.free(klass) for c in candidates)

    classes = {klass for klass in CHANNEL_CLASSES if room(klass)}
    base = select(ConversationRouting).where(ConversationRouting.team_id == team.team_id, IN_QUEUE)
    if team.strategy == "skills":
        skills = frozenset().union(*(c.skills for c in candidates if c.has_room()))
        base = base.where(skills_within(tx.runtime.db.dialect, skills))
    assigned = 0
    # Conversations left in the queue (nobody fitting could take them), per kind of
    # channel: the next page of that kind starts after them.
    skipped: Counter[str] = Counter()
    while classes:
        query = base.where(ConversationRouting.channel_class.in_(sorted(classes))).order_by(*QUEUE_ORDER)
        page = list(tx.session.execute(query.offset(sum(skipped[k] for k in classes)).limit(DRAIN_BATCH)).scalars())
        narrowed = False
        for item in page:
            if not room(item.channel_class):
                # That kind of channel is full now: look on only at the kinds with room.
                classes = {klass for klass in classes if room(klass)}
                narrowed = True
                break
            conversation = tx.session.get(Conversation, item.conversation_id)
            if conversation is None or not routable(conversation) or conversation.team_id != team.team_id:
                # Out of the queue, so out of the next page's offset.
                item.queued_at = None
                item.reason = None
                continue
            held, avoided = held_and_avoided(item.excluded_agent_ids, tx.now)
            chosen, reason = choose(
                team.strategy,
                candidates,
                item.channel_class,
                frozenset(item.required_skills or []),
                cursor=team.last_agent_id,
                exclude=held,
                avoid=avoided,
            )
            if chosen is None:
                skipped[item.channel_class] += 1
                continue
            _give(tx, conversation, team, chosen, reason, trigger, item)
            chosen.load[item.channel_class] += 1
            assigned += 1
        tx.session.flush()
        if not narrowed and len(page) < DRAIN_BATCH:
            break
    return assigned


def holds_ended(tx: Tx) -> list[int]:
    """Queued conversations that wait only for agents who gave them back, where such an
    agent's hold has ended since the conversation was last looked at."""
    looked = select(
        ConversationRouting.conversation_id, ConversationRouting.excluded_agent_ids, ConversationRouting.updated_at
    )
    rows = tx.session.execute(
        looked.where(IN_QUEUE, ConversationRouting.reason == ONLY_EXCLUDED).order_by(
            ConversationRouting.conversation_id
        )
    ).all()
    return [
        conversation_id
        for conversation_id, raw, looked_at in rows
        if any(looked_at < at + GIVE_BACK_HOLD <= tx.now for at in gave_back(raw).values())
    ]


def teams_of(tx: Tx, agent_id: int) -> list[int]:
    return list(
        tx.session.execute(select(team_members.c.team_id).where(team_members.c.agent_id == agent_id)).scalars().all()
    )


def reassign_from(tx: Tx, agent_id: int) -> list[int]:
    """Hand the open conversations of an agent who went offline back to routing, where the
    team asks for it; return the conversation ids moved."""
    rows = tx.session.execute(
        select(Conversation)
        .join(RoutingTeam, RoutingTeam.team_id == Conversation.team_id)
        .where(
            Conversation.assignee_id == agent_id,
            Conversation.status == "open",
            RoutingTeam.reassign_when_offline.is_(True),
            RoutingTeam.auto_assign.is_(True),
        )
        .order_by(Conversation.id)
    ).scalars()
    moved = []
    for conversation in list(rows):
        conv_actions.assign(tx, conversation, agent_id=None)
        # The agent is offline, so no longer a candidate; they may take it again once back.
        route(tx, conversation.id, trigger="agent_offline")
        moved.append(conversation.id)
    return moved


def requeue_keys(tx: Tx, conversation_id: int) -> None:
    """Refresh a queued conversation's sort keys (priority, SLA due) after they changed."""
    row = tx.session.get(ConversationRouting, conversation_id)
    if row is None or row.queued_at is None:
        return
    conversation = tx.session.get(Conversation, conversation_id)
    if conversation is None:
        return
    row.priority_rank = PRIORITY_RANK.get(conversation.priority, 4)
    row.sla_due_at = tx.session.execute(
        select(ConversationSla.due_at).where(ConversationSla.conversation_id == conversation_id)
    ).scalar()
    row.updated_at = tx.now


def require_skills(tx: Tx, conversation: Conversation, skills: list[str]) -> None:
    """Add skills the conversation's agent must have (under the skills-based strategy)."""
    wanted = normalize_skills(skills)
    row = _routing_row(tx, conversation.id)
    merged = sorted(set(row.required_skills or []) | set(wanted))
    if merged == sorted(row.required_skills or []):
        return
    row.required_skills = merged
    row.updated_at = tx.now
    tx.session.flush()
    tx.record(
        "routing.skills_required",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        data={"skills": merged},
        realtime=conv_actions.realtime_of(conversation, skills=merged),
    )


def normalize_skills(skills: Iterable[str]) -> list[str]:
    cleaned = sorted({s.strip().lower() for s in skills if s and s.strip()})
    if len(cleaned) > MAX_SKILLS or any(len(s) > 64 for s in cleaned):
        raise ActionError("skills_invalid", N_("Use at most 50 skills of at most 64 characters each."), 422)
    return cleaned


def agent_row(tx: Tx, agent_id: int) -> RoutingAgent:
    """The agent's routing row, created with defaults on first use."""
    row = tx.session.get(RoutingAgent, agent_id)
    if row is not None:
        return row
    try:
        with tx.session.begin_nested():
            # The open-conversation counters start from what the agent already carries;
            # the triggers keep them from here on.
            carried = loads(tx.session, [agent_id])[agent_id]
            row = RoutingAgent(
                agent_id=agent_id,
                skills=[],
                capacity={},
                availability="available",
                presence="offline",
                updated_at=tx.now,
                open_call=carried["call"],
                open_chat=carried["chat"],
                open_email=carried["email"],
            )
            tx.session.add(row)
    except IntegrityError:
        # Another process created it first.
        row = tx.session.get(RoutingAgent, agent_id, populate_existing=True)
        assert row is not None
    return row


def save_team(
    tx: Tx,
    team_id: int,
    *,
    strategy: str,
    auto_assign: bool,
    reassign_when_offline: bool,
    business_hours_id: int | None,
) -> RoutingTeam:
    if tx.session.get(Team, team_id) is None:
        raise ActionError("team_not_found", N_("Team not found."), 404)
    if strategy not in STRATEGIES:
        raise ActionError("strategy_invalid", N_("Unknown routing strategy."), 422)
    if business_hours_id is not None and tx.session.get(BusinessHours, business_hours_id) is None:
        raise ActionError("business_hours_not_found", N_("Business hours not found."), 422)
    row = tx.session.get(RoutingTeam, team_id)
    if row is None:
        row = RoutingTeam(team_id=team_id, created_at=tx.now)
        tx.session.add(row)
    row.strategy = strategy
    row.auto_assign = auto_assign
    row.reassign_when_offline = reassign_when_offline
    row.business_hours_id = business_hours_id
    row.updated_at = tx.now
    tx.session.flush()
    tx.record(
        "routing.team_saved",
        data={
            "team_id": team_id,
            "strategy": strategy,
            "auto_assign": auto_assign,
            "reassign_when_offline": reassign_when_offline,
            "business_hours_id": business_hours_id,
        },
        realtime={"team_id": team_id, "assignee_id": None, "only_agent_ids": [tx.actor_agent_id]},
    )
    return row


def save_agent(tx: Tx, agent_id: int, *, skills: list[str] | None, capacity: dict[str, int] | None) -> RoutingAgent:
    agent = tx.session.get(Agent, agent_id)
    if agent is None:
        raise ActionError("agent_not_found", N_("Agent not found."), 404)
    row = agent_row(tx, agent_id)
    if skills is not None:
        row.skills = normalize_skills(skills)
    if capacity is not None:
        unknown = set(capacity) - set(CHANNEL_CLASSES)
        if unknown or any(not 0 <= int(v) <= 1000 for v in capacity.values()):
            raise ActionError(
                "capacity_invalid", N_("Capacity is a number from 0 to 1000 for call, chat or email."), 422
            )
        row.capacity = {k: int(v) for k, v in sorted(capacity.items())}
    row.updated_at = tx.now
    tx.session.flush()
    tx.record(
        "routing.agent_saved",
        data={"agent_id": agent_id, "skills": row.skills, "capacity": row.capacity},
        realtime={"team_id": None, "assignee_id": None, "agent_id": agent_id, "only_agent_ids": [agent_id]},
    )
    return row
