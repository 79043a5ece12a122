"""Reading the events table in order, from a consumer's stored position, without skipping a late commit.

Event ids come from a sequence and are drawn before commit, so on PostgreSQL a transaction
may commit event 10 after event 11 is already visible. A consumer that moved past 11 keeps
10 as a hole and looks for it again on every pass until it appears (its transaction
committed: handled then) or HOLE_SECONDS pass (a transaction rolled back, leaving the id
unused). SQLite has one writer at a time, so its ids commit in order and holes stay empty.

The position row is locked for the whole pass (an UPDATE first, which takes the row lock on
PostgreSQL and the write lock on SQLite): a second process running the same consumer waits,
then finds the position moved on, so no event is handled twice. The pass's reactions and the
new position commit together, so a crash loses neither and repeats nothing that took effect.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, case, func, null, or_, select, update
from sqlalchemy.orm import Session

from hilo import jobs
from hilo.consumers.models import ConsumerPosition
from hilo.events.models import Event

_events = cast(Table, Event.__table__)

# How long a missing id is looked for: longer than any transaction that records events runs.
HOLE_SECONDS = 300.0
# Holes kept at most (a burst of rolled-back ids must not grow every pass's query).
MAX_HOLES = 2000

# The table's columns, not the mapped class's: a Core SELECT skips the ORM's preparation.
EVENT_COLUMNS = tuple(
    _events.c[name]
    for name in (
        "id",
        "kind",
        "conversation_id",
        "contact_id",
        "message_id",
        "actor_agent_id",
        "payload",
        "depth",
        "created_at",
    )
)


@dataclass(frozen=True)
class Committed:
    """One committed event as a consumer sees it: `event` is what the live screens were told
    (None when the event told them nothing), `depth` how many reactions led to it."""

    id: int
    event: dict[str, Any] | None
    depth: int


@dataclass
class Place:
    """A consumer's position as read at the start of a pass."""

    name: str
    position: int
    holes: dict[int, float] = field(default_factory=dict)


def start(session: Session, name: str, now: datetime) -> None:
    """Create the consumer's row if it has none, at the newest event: it reacts to what comes next."""
    if session.get(ConsumerPosition, name) is not None:
        return
    newest = session.execute(select(func.max(Event.id))).scalar() or 0
    session.add(ConsumerPosition(name=name, position=newest, holes=[], updated_at=now))
    session.flush()


def skip_past(session: Session, names: tuple[str, ...], now: datetime) -> int:
    """Put these consumers after every event stored so far: what came before is history
    (seeded demo data), theirs to react to is what comes next. Returns that position."""
    newest = session.execute(select(func.max(Event.id))).scalar() or 0
    for name in names:
        start(session, name, now)
    session.execute(
        update(ConsumerPosition)
        .where(ConsumerPosition.name.in_(names))
        .values(position=newest, holes=[], updated_at=now)
    )
    return int(newest)


# Every pass runs these: built once, as Core statements on the table (an ORM-enabled UPDATE
# costs several times the CPU to prepare, and building a statement costs more than running it).
_positions = cast(Table, ConsumerPosition.__table__)
_LOCK = (
    update(_positions)
    .where(_positions.c.name == bindparam("lock_name"))
    .values(updated_at=bindparam("lock_now"))
    .returning(_positions.c.position, _positions.c.holes)
)
_ADVANCE = (
    update(_positions)
    .where(_positions.c.name == bindparam("advance_name"))
    .values(position=bindparam("advance_position"), holes=bindparam("advance_holes"))
)
_ADVANCE_LEASED = _ADVANCE.values(lease_owner=bindparam("advance_owner"))


def lock(session: Session, name: str, now: datetime) -> Place:
    """Lock the consumer's row for this transaction and read where it stands."""
    row = session.execute(_LOCK, {"lock_name": name, "lock_now": now}).one_or_none()
    if row is None:
        start(session, name, now)
        return lock(session, name, now)
    return Place(name, int(row.position), {int(ident): float(seen) for ident, seen in row.holes or []})


def peek(session: Session, name: str) -> Place:
    """Where the consumer stands, without locking (what a locked pass will find may differ)."""
    row = session.execute(
        select(ConsumerPosition.position, ConsumerPosition.holes).where(ConsumerPosition.name == name)
    ).one()
    return Place(name, int(row.position), {int(ident): float(seen) for ident, seen in row.holes or []})


@functools.cache
def _pending_statement(with_holes: bool, kinds: frozenset[str] | None) -> Select[Any]:
    """The read of a pass, built once for each consumer's kinds (with the holes or without)."""
    clause = _events.c.id > bindparam("after")
    if with_holes:
        clause = or_(clause, _events.c.id.in_(bindparam("holes", expanding=True)))
    columns: tuple[Any, ...] = EVENT_COLUMNS
    if kinds is not None:
        # Every id is read (so that a missing one is noticed), but only the kinds the consumer
        # handles bring their live update: the others cost no decoding.
        payload = case((_events.c.kind.in_(sorted(kinds)), _events.c.payload), else_=null()).label("payload")
        columns = tuple(payload if column is _events.c.payload else column for column in EVENT_COLUMNS)
    return select(*columns).where(clause).order_by(_events.c.id).limit(bindparam("limit"))


def read(session: Session, place: Place, limit: int, kinds: frozenset[str] | None = None) -> list[Committed]:
    """The next committed events after the position (and any hole that has appeared), in id order;
    with `kinds`, events of other kinds come without their live update (nothing to handle)."""
    values: dict[str, Any] = {"after": place.position, "limit": limit}
    if place.holes:
        values["holes"] = sorted(place.holes)
    statement = _pending_statement(bool(place.holes), kinds)
    return [_committed(row) for row in session.execute(statement, values)]


def anything_after(session: Session, position: int) -> bool:
    """Whether an event newer than `position` is visible: a cheap look before locking a pass."""
    return session.execute(select(Event.id).where(Event.id > position).limit(1)).first() is not None


def advance(session: Session, place: Place, handled: list[Committed], *, lease_owner: str | None = None) -> int:
    """Store the position after `handled` (read by `read` in this pass); returns the new position."""
    holes = dict(place.holes)
    position = place.position
    clock = time.time()
    for item in handled:
        holes.pop(item.id, None)
        if item.id > position:
            holes.update((missing, clock) for missing in range(position + 1, item.id))
            position = item.id
    holes = {ident: seen for ident, seen in holes.items() if clock - seen < HOLE_SECONDS}
    if len(holes) > MAX_HOLES:
        holes = dict(sorted(holes.items())[-MAX_HOLES:])
    values: dict[str, Any] = {
        "advance_name": place.name,
        "advance_position": position,
        "advance_holes": [[ident, seen] for ident, seen in sorted(holes.items())],
    }
    if lease_owner is None:
        session.execute(_ADVANCE, values)
    else:
        session.execute(_ADVANCE_LEASED, {**values, "advance_owner": lease_owner})
    place.position, place.holes = position, holes
    return position


def take_lease(session: Session, name: str, owner: str, now: datetime, until: datetime) -> bool:
    """Hold the consumer for `owner` until `until` unless another live holder has it; True if held."""
    return jobs.hold_lease(session, ConsumerPosition, ConsumerPosition.name == name, owner, now, until) is not None


def position_of(session: Session, name: str) -> int | None:
    return session.execute(select(ConsumerPosition.position).where(ConsumerPosition.name == name)).scalar()


def _committed(row: Any) -> Committed:
    event = None
    if row.payload is not None:
        event = {
            "type": row.kind,
            "conversation_id": row.conversation_id,
            "contact_id": row.contact_id,
            "message_id": row.message_id,
            "actor_agent_id": row.actor_agent_id,
            "at": row.created_at.isoformat(),
            **row.payload,
        }
    return Committed(int(row.id), event, int(row.depth or 0))
