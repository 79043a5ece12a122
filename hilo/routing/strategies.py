"""Who can take a conversation: a team's online members with room, and the team's strategy
(round robin, least loaded, skills) choosing among them, with give-back holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session

from hilo.agents.models import Agent, team_members
from hilo.channels.models import ChannelAccount
from hilo.conversations.models import Conversation
from hilo.routing.capacity import CHANNEL_CLASSES, DEFAULT_CAPACITY, capacity_for, channel_class
from hilo.routing.models import (
    ConversationRouting,
    RoutingAgent,
    RoutingTeam,
)
from hilo.runtime import Tx

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The queue reason while only agents who gave the conversation back could take it.
ONLY_EXCLUDED = "only_excluded_agents"
# An agent who gives a conversation back is not offered it again for this long; after
# that they are the last resort: chosen only when nobody else of the team can take it.
GIVE_BACK_HOLD = timedelta(minutes=30)


QUEUE_ORDER = (
    ConversationRouting.priority_rank,
    ConversationRouting.sla_due_at.asc().nulls_last(),
    ConversationRouting.waiting_since,
    ConversationRouting.conversation_id,
)
IN_QUEUE = ConversationRouting.queued_at.is_not(None)
# How far down its team's queue a new conversation looks for one to let go first.
QUEUE_LOOKAHEAD = 100
# The head of the team's queue, other than the conversation being decided: one bounded
# range scan of the queue's partial index, however long the queue.
QUEUE_HEAD = (
    select(ConversationRouting.channel_class, ConversationRouting.required_skills)
    .where(
        ConversationRouting.team_id == bindparam("team_id"),
        IN_QUEUE,
        ConversationRouting.conversation_id != bindparam("conversation_id"),
    )
    .order_by(*QUEUE_ORDER)
    .limit(QUEUE_LOOKAHEAD)
    .subquery("head")
)


def _queue_holds(klass: str) -> ColumnElement[bool]:
    """SQL: the head of the team's queue holds another conversation of class `klass`."""
    return exists(select(literal(1)).select_from(QUEUE_HEAD).where(QUEUE_HEAD.c.channel_class == klass))


@dataclass
class Candidate:
    """An online, available member of the team, with what they already carry."""

    agent_id: int
    skills: frozenset[str]
    capacity: dict[str, int]
    last_assigned_at: datetime | None
    load: Counter[str] = field(default_factory=Counter)

    def free(self, klass: str) -> bool:
        return self.load[klass] < capacity_for(self.capacity, klass)

    def has_room(self) -> bool:
        return any(self.free(klass) for klass in CHANNEL_CLASSES)


def choose(
    strategy: str,
    candidates: list[Candidate],
    klass: str,
    required: frozenset[str],
    *,
    cursor: int | None = None,
    exclude: frozenset[int] = frozenset(),
    avoid: frozenset[int] = frozenset(),
) -> tuple[Candidate | None, str]:
    """Pick an agent by the team's strategy; None and the reason when nobody fits.

    `exclude`: agents who gave the conversation back within GIVE_BACK_HOLD, never chosen
    (when only they could take it the reason is `only_excluded_agents`). `avoid`: agents
    who gave it back earlier, chosen only when nobody else can take it.
    """
    others = [c for c in candidates if c.agent_id not in exclude and c.agent_id not in avoid]
    chosen, reason = _choose(strategy, others, klass, required, cursor)
    if chosen is not None or not (exclude or avoid):
        return chosen, reason
    if avoid:
        fallback, fallback_reason = _choose(
            strategy, [c for c in candidates if c.agent_id not in exclude], klass, required, cursor
        )
        if fallback is not None:
            return fallback, fallback_reason
    # The reason is about everyone online, so that it names what really keeps the conversation waiting.
    anyone, why = _choose(strategy, candidates, klass, required, cursor)
    return None, ONLY_EXCLUDED if anyone is not None else why


def _choose(
    strategy: str, pool: list[Candidate], klass: str, required: frozenset[str], cursor: int | None
) -> tuple[Candidate | None, str]:
    if not pool:
        return None, "no_agent_online"
    if strategy == "skills":
        pool = [c for c in pool if required <= c.skills]
        if not pool:
            return None, "no_skilled_agent"
    free = [c for c in pool if c.free(klass)]
    if not free:
        return None, "no_capacity"
    if strategy == "round_robin":
        free.sort(key=lambda c: c.agent_id)
        after = [c for c in free if cursor is not None and c.agent_id > cursor]
        return (after or free)[0], "round_robin"
    chosen = min(
        free,
        key=lambda c: (
            c.load[klass] / max(1, capacity_for(c.capacity, klass)),
            sum(c.load.values()),
            c.last_assigned_at or EPOCH,
            c.agent_id,
        ),
    )
    return chosen, strategy


def gave_back(raw: Iterable[Any] | None) -> dict[int, datetime]:
    """Who gave a conversation back, and when, from its routing row.

    Entries are `{"agent_id": 3, "at": "<ISO time>"}`; a bare id (the format before the
    hold existed) counts as given back long ago.
    """
    found: dict[int, datetime] = {}
    for entry in raw or []:
        if isinstance(entry, dict):
            found[int(entry["agent_id"])] = datetime.fromisoformat(entry["at"])
        else:
            found[int(entry)] = EPOCH
    return found


def held_and_avoided(raw: Iterable[Any] | None, now: datetime) -> tuple[frozenset[int], frozenset[int]]:
    """Agents who gave the conversation back: still within the hold, and past it."""
    given = gave_back(raw)
    held = frozenset(agent_id for agent_id, at in given.items() if now - at < GIVE_BACK_HOLD)
    return held, frozenset(given) - held


def loads(session: Session, agent_ids: Iterable[int]) -> dict[int, Counter[str]]:
    """Open conversations each agent carries, per capacity class."""
    ids = list(agent_ids)
    result: dict[int, Counter[str]] = {agent_id: Counter() for agent_id in ids}
    if not ids:
        return result
    rows = session.execute(
        select(Conversation.assignee_id, ChannelAccount.kind, func.count())
        .select_from(Conversation)
        .outerjoin(ChannelAccount, ChannelAccount.id == Conversation.last_channel_account_id)
        .where(Conversation.assignee_id.in_(ids), Conversation.status == "open")
        .group_by(Conversation.assignee_id, ChannelAccount.kind)
    ).all()
    for agent_id, kind, count in rows:
        result[agent_id][channel_class(kind)] += count
    return result


def candidates_query(team_id: int, now: datetime) -> Select[Any]:
    """Online, available, active members of a team with their open conversations per channel kind."""
    members = select(team_members.c.agent_id).where(team_members.c.team_id == team_id)
    carried = (
        select(
            Conversation.assignee_id.label("agent_id"),
            ChannelAccount.kind.label("kind"),
            func.count().label("conversations"),
        )
        .select_from(Conversation)
        .outerjoin(ChannelAccount, ChannelAccount.id == Conversation.last_channel_account_id)
        .where(Conversation.assignee_id.in_(members), Conversation.status == "open")
        .group_by(Conversation.assignee_id, ChannelAccount.kind)
        .subquery()
    )
    return (
        select(
            RoutingAgent.agent_id,
            RoutingAgent.skills,
            RoutingAgent.capacity,
            RoutingAgent.last_assigned_at,
            carried.c.kind,
            carried.c.conversations,
        )
        .join(team_members, team_members.c.agent_id == RoutingAgent.agent_id)
        .join(Agent, Agent.id == RoutingAgent.agent_id)
        .outerjoin(carried, carried.c.agent_id == RoutingAgent.agent_id)
        .where(
            team_members.c.team_id == team_id,
            Agent.active.is_(True),
            RoutingAgent.availability == "available",
            RoutingAgent.online_until > now,
        )
    )


# Strategies whose choice the database makes in one query returning one row; the same
# order as `choose` (it stays the reference, and serves the queue drain and skills).
SQL_STRATEGIES = ("round_robin", "least_loaded")


# Each agent's open conversations per class, as the triggers of migration 0016 count them.
OPEN_COUNTS = {"call": RoutingAgent.open_call, "chat": RoutingAgent.open_chat, "email": RoutingAgent.open_email}


@cache
def _pick_statement(strategy: str, klass: str, excluding: bool) -> Select[Any]:
    """The query behind `pick`, built once per strategy and capacity class.

    Parameters: `team_id`, `now`, `cursor` (round robin's last agent), `conversation_id`
    (for the queue check) and, when `excluding`, `exclude` (agents who gave the
    conversation back). Loads come from the counters on each member's routing row, so the
    query reads the team's routing rows and nothing per conversation.
    """
    capacity = func.coalesce(RoutingAgent.capacity[klass].as_integer(), DEFAULT_CAPACITY[klass])
    same = OPEN_COUNTS[klass]
    query = (
        select(RoutingAgent.agent_id, RoutingAgent.last_assigned_at, _queue_holds(klass).label("queue_ahead"))
        .join(team_members, team_members.c.agent_id == RoutingAgent.agent_id)
        .join(Agent, Agent.id == RoutingAgent.agent_id)
        .where(
            team_members.c.team_id == bindparam("team_id"),
            Agent.active.is_(True),
            RoutingAgent.availability == "available",
            RoutingAgent.online_until > bindparam("now"),
            capacity > same,
        )
        .limit(1)
    )
    if excluding:
        query = query.where(RoutingAgent.agent_id.not_in(bindparam("exclude", expanding=True)))
    if strategy == "round_robin":
        after = RoutingAgent.agent_id > bindparam("cursor", type_=Integer)
        return query.order_by(case((after, 0), else_=1), RoutingAgent.agent_id)
    return query.order_by(
        cast(same, Float) / capacity,
        RoutingAgent.open_call + RoutingAgent.open_chat + RoutingAgent.open_email,
        RoutingAgent.last_assigned_at.asc().nulls_first(),
        RoutingAgent.agent_id,
    )


def pick(
    tx: Tx, team: RoutingTeam, klass: str, exclude: frozenset[int], conversation_id: int
) -> tuple[Candidate, bool] | None:
    """The agent `choose` would pick under round robin or least loaded, chosen by the database,
    and whether the head of the team's queue holds another conversation of the same kind
    of channel (see `_queue_ahead`), read in the same query."""
    statement = _pick_statement(team.strategy, klass, bool(exclude))
    params = {
        "team_id": team.team_id,
        "now": tx.now,
        "cursor": team.last_agent_id,
        "exclude": sorted(exclude),
        "conversation_id": conversation_id,
    }
    row = tx.session.connection().execute(statement, params).first()
    if row is None:
        return None
    return Candidate(row.agent_id, frozenset(), {}, row.last_assigned_at), bool(row.queue_ahead)


def online_members(tx: Tx, team_id: int) -> list[Candidate]:
    """The team's active members who are connected and available, with their loads (one query)."""
    rows = tx.session.execute(candidates_query(team_id, tx.now)).all()
    candidates: dict[int, Candidate] = {}
    for row in rows:
        candidate = candidates.get(row.agent_id)
        if candidate is None:
            candidate = candidates[row.agent_id] = Candidate(
                row.agent_id, frozenset(row.skills or []), dict(row.capacity or {}), row.last_assigned_at
            )
        if row.conversations:
            candidate.load[channel_class(row.kind)] += row.conversations
    return list(candidates.values())


LOCK_TEAM = select(RoutingTeam).where(RoutingTeam.team_id == bindparam("team_id")).with_for_update()
# The conversation and its routing row (queue place, required skills), in one query.
CONVERSATIONS_WITH_ROUTING = (
    select(Conversation, ConversationRouting)
    .outerjoin(ConversationRouting, ConversationRouting.conversation_id == Conversation.id)
    .where(Conversation.id.in_(bindparam("conversation_ids", expanding=True)))
)
