"""Inbox views (built-in and saved), their filters, and how many unread conversations each has.

A view is a set of filters over the conversation list (status, assignee, team, channel,
label) plus a sort. Built-in views have stable keys ("mine", "team-3", "label-vip"...);
an agent's saved views are "saved-<id>". Unread means: a customer wrote after the agent
last read the conversation. Counts cover unresolved conversations only, and come from one
query whatever the number of views, so the sidebar never costs a query per view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.agents.models import Agent, Team
from hilo.channels.models import ChannelAccount
from hilo.conversations import queries
from hilo.conversations.access import visible_clause
from hilo.conversations.models import STATUSES, Conversation, Label, conversation_labels
from hilo.errors import ActionError, NotFound
from hilo.i18n import N_
from hilo.web.models import SORTS, ConversationRead, SavedView

UNRESOLVED = ("open", "pending", "snoozed")
FILTER_KEYS = ("status", "assignee", "team", "channel", "label")
# The sidebar lists this many labels at most (alphabetically); the rest are reachable by URL.
MAX_LABELS = 30


@dataclass(frozen=True)
class Filters:
    """Conversation filters, in the vocabulary of GET /api/v1/conversations."""

    status: tuple[str, ...] = ()
    assignee: str | None = None  # "me", "none" or an agent id
    team: str | None = None  # "none" or a team id
    channel: int | None = None
    label: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.status:
            out["status"] = list(self.status)
        for key in ("assignee", "team", "channel", "label"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class View:
    key: str
    name: str
    # Built-in names are catalog msgids; saved views and teams/channels/labels keep their own.
    translate: bool
    filters: Filters
    sort: str = "last_activity"
    # Status views fix the status; the others let the agent pick one (default: open).
    status_fixed: bool = False
    saved_id: int | None = None
    group: str = "inbox"

    def with_status(self, status: str | None) -> View:
        """The view with the status the agent picked ("all" for every status)."""
        if self.status_fixed or not status:
            return self
        if status == "all":
            return replace(self, filters=replace(self.filters, status=()))
        if status not in STATUSES:
            raise ActionError("filter_invalid", N_('The filter "{name}" is not valid.'), 422, name="status")
        return replace(self, filters=replace(self.filters, status=(status,)))

    @property
    def status_choice(self) -> str:
        return self.filters.status[0] if len(self.filters.status) == 1 else "all"


OPEN = ("open",)
BUILTIN = {
    "mine": View("mine", N_("Mine"), True, Filters(status=OPEN, assignee="me")),
    "unassigned": View("unassigned", N_("Unassigned"), True, Filters(status=OPEN, assignee="none")),
    "all": View("all", N_("All"), True, Filters(status=OPEN)),
}
STATUS_NAMES = {
    "open": N_("Open"),
    "pending": N_("Pending"),
    "snoozed": N_("Snoozed"),
    "resolved": N_("Resolved"),
}


def status_view(status: str) -> View:
    return View(
        f"status-{status}", STATUS_NAMES[status], True, Filters(status=(status,)), status_fixed=True, group="status"
    )


def parse_filters(raw: Mapping[str, Any]) -> Filters:
    """Validate filters given by an agent (a saved view) into `Filters`."""

    def invalid(name: str) -> ActionError:
        return ActionError("filter_invalid", N_('The filter "{name}" is not valid.'), 422, name=name)

    for key in raw:
        if key not in FILTER_KEYS:
            raise invalid(str(key))
    status = raw.get("status") or []
    if isinstance(status, str):
        status = [status]
    if not isinstance(status, list) or any(s not in STATUSES for s in status):
        raise invalid("status")
    assignee = raw.get("assignee")
    if assignee is not None and not (assignee in ("me", "none") or str(assignee).isdigit()):
        raise invalid("assignee")
    team = raw.get("team")
    if team is not None and not (team == "none" or str(team).isdigit()):
        raise invalid("team")
    channel = raw.get("channel")
    if channel is not None and not str(channel).isdigit():
        raise invalid("channel")
    label = raw.get("label")
    if label is not None and (not isinstance(label, str) or not label.strip() or len(label) > 64):
        raise invalid("label")
    return Filters(
        status=tuple(dict.fromkeys(status)),
        assignee=str(assignee) if assignee is not None else None,
        team=str(team) if team is not None else None,
        channel=int(channel) if channel is not None else None,
        label=label.strip().lower() if label is not None else None,
    )


def saved_to_view(row: SavedView) -> View:
    return View(
        f"saved-{row.id}",
        row.name,
        False,
        parse_filters(row.filters or {}),
        sort=row.sort if row.sort in SORTS else "last_activity",
        saved_id=row.id,
        group="saved",
    )


@dataclass
class Directory:
    """The small tables every page names things from, loaded once per request."""

    agents: dict[int, Any] = field(default_factory=dict)
    teams: dict[int, Any] = field(default_factory=dict)
    channels: dict[int, Any] = field(default_factory=dict)


def load_directory(session: Session) -> Directory:
    """Agents, teams and channel accounts by id (three small queries)."""
    return Directory(
        agents={a.id: a for a in session.execute(select(Agent).order_by(Agent.name)).scalars()},
        teams={t.id: t for t in session.execute(select(Team).order_by(Team.name)).scalars()},
        channels={c.id: c for c in session.execute(select(ChannelAccount).order_by(ChannelAccount.id)).scalars()},
    )


def label_names(session: Session) -> list[str]:
    return list(session.execute(select(Label.name).order_by(Label.name).limit(MAX_LABELS)).scalars())


def saved_views(session: Session, agent_id: int) -> list[SavedView]:
    return list(
        session.execute(
            select(SavedView).where(SavedView.agent_id == agent_id).order_by(SavedView.position, SavedView.id)
        ).scalars()
    )


def resolve_view(key: str, principal: Principal, session: Session, directory: Directory) -> View:
    """The view named by `key`; 404 for a team, channel or saved view that does not exist."""
    if key in BUILTIN:
        return BUILTIN[key]
    kind, _, rest = key.partition("-")
    if kind == "status" and rest in STATUSES:
        return status_view(rest)
    if kind == "team" and rest.isdigit() and int(rest) in directory.teams:
        team = directory.teams[int(rest)]
        return View(key, team.name, False, Filters(status=OPEN, team=rest), group="teams")
    if kind == "channel" and rest.isdigit() and int(rest) in directory.channels:
        channel = directory.channels[int(rest)]
        return View(key, channel.name, False, Filters(status=OPEN, channel=int(rest)), group="channels")
    if kind == "label" and rest:
        return View(key, rest, False, Filters(status=OPEN, label=rest.lower()), group="labels")
    if kind == "saved" and rest.isdigit():
        row = session.get(SavedView, int(rest))
        if row is not None and row.agent_id == principal.id:
            return saved_to_view(row)
    raise NotFound("view_not_found", N_("This inbox view does not exist."))


def sidebar_views(
    principal: Principal, directory: Directory, labels: Sequence[str], saved: Iterable[SavedView]
) -> dict[str, list[View]]:
    """Every view the sidebar lists, grouped."""
    teams = [t for t in directory.teams.values() if principal.sees_everything or t.id in principal.team_ids]
    return {
        "inbox": list(BUILTIN.values()),
        "saved": [saved_to_view(row) for row in saved],
        "teams": [View(f"team-{t.id}", t.name, False, Filters(status=OPEN, team=str(t.id))) for t in teams],
        "channels": [
            View(f"channel-{c.id}", c.name, False, Filters(status=OPEN, channel=c.id))
            for c in directory.channels.values()
        ],
        "status": [status_view(s) for s in STATUSES],
        "labels": [View(f"label-{name}", name, False, Filters(status=OPEN, label=name)) for name in labels],
    }


def unread_clause() -> ColumnElement[bool]:
    """Conversations with a customer message newer than the agent's last read (reads outer-joined)."""
    return and_(
        Conversation.last_inbound_at.is_not(None),
        or_(ConversationRead.read_at.is_(None), Conversation.last_inbound_at > ConversationRead.read_at),
    )


def _reads_join(agent_id: int) -> ColumnElement[bool]:
    return and_(ConversationRead.conversation_id == Conversation.id, ConversationRead.agent_id == agent_id)


def unread_counts(session: Session, principal: Principal, views: Iterable[View]) -> dict[str, int]:
    """Unread unresolved conversations per view key, in a query or two whatever the number of views.

    Views without a label: one pass over the agent's unresolved unread conversations with
    one filtered count per view (`count(*) FILTER (WHERE <the view's filters>)`). Views with
    a label: one query per set of other filters (usually one: the label views of the
    sidebar), joining the labels and grouping by label name.
    """
    plain: list[tuple[str, ColumnElement[int]]] = []
    by_label: dict[Filters, list[View]] = {}
    for view in views:
        f = view.filters
        try:
            clauses = _view_clauses(principal, replace(f, label=None))
        except ActionError:
            continue  # a saved view whose filter no longer parses counts nothing
        if f.label:
            by_label.setdefault(replace(f, label=None), []).append(view)
        else:
            plain.append((view.key, func.count().filter(and_(true(), *clauses))))
    base = (
        Conversation.merged_into_id.is_(None),
        Conversation.status.in_(UNRESOLVED),
        visible_clause(principal),
        unread_clause(),
    )
    counts: dict[str, int] = {}
    if plain:
        row = session.execute(
            select(*(column for _key, column in plain))
            .select_from(Conversation)
            .outerjoin(ConversationRead, _reads_join(principal.id))
            .where(*base)
        ).one()
        counts.update({key: int(value or 0) for (key, _column), value in zip(plain, row, strict=True)})
    for others, labelled in by_label.items():
        names = sorted({str(v.filters.label).strip().lower() for v in labelled})
        found = dict(
            session.execute(
                select(Label.name, func.count())
                .select_from(Conversation)
                .join(conversation_labels, conversation_labels.c.conversation_id == Conversation.id)
                .join(Label, Label.id == conversation_labels.c.label_id)
                .outerjoin(ConversationRead, _reads_join(principal.id))
                .where(*base, *_view_clauses(principal, others), Label.name.in_(names))
                .group_by(Label.name)
            )
            .tuples()
            .all()
        )
        for view in labelled:
            counts[view.key] = int(found.get(str(view.filters.label).strip().lower(), 0))
    return counts


def _view_clauses(principal: Principal, f: Filters) -> list[ColumnElement[bool]]:
    return queries.filter_clauses(
        principal,
        queries.Filters(status=list(f.status), assignee=f.assignee, team=f.team, channel=f.channel, label=f.label),
    )


def unread_ids(session: Session, agent_id: int, conversations: Sequence[Any]) -> set[int]:
    """Which of these conversations have a customer message the agent has not read."""
    if not conversations:
        return set()
    reads = dict(
        session.execute(
            select(ConversationRead.conversation_id, ConversationRead.read_at).where(
                ConversationRead.agent_id == agent_id,
                ConversationRead.conversation_id.in_([c.id for c in conversations]),
            )
        )
        .tuples()
        .all()
    )
    return {
        c.id
        for c in conversations
        if c.last_inbound_at is not None and (c.id not in reads or c.last_inbound_at > reads[c.id])
    }
