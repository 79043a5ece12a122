"""Background work that is claimed, retried and given up, shared by every loop that claims work.

Three ways to take work, one for each kind of loop:
- `claim_due` takes rows of a job table whose work has effects outside the database (the
  outbox, media fetches, these generic jobs): the due, unleased rows, oldest first, locked
  with `FOR UPDATE SKIP LOCKED` on PostgreSQL so any number of processes may claim side by
  side, each claimed row leased for a while (a process that dies leaves its rows to be
  claimed again once the lease runs out) and its attempt counted. `backoff_seconds` spaces
  retries.
- `lock_due` takes due rows whose work is all in the database (scheduled messages): they are
  locked for the caller's transaction, which finishes them before it commits.
- `hold_lease` keeps one long-running piece of work (a mailbox's poller, an engine's event
  stream) with one process: the row's lease is taken when free or expired, and renewed.

The `jobs` table carries work with effects outside the database that features queue in the
transaction of the change that caused it (a rule's webhook): the job commits with the change
or not at all, and `JobRunner` runs it after, with retries, in whichever process runs the
background services. Delivery is at least once: a job whose process dies mid-call is called
again after its lease, so receivers de-duplicate on the key each job is sent with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, Text, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from hilo.db.base import Base, BigId, Json, UTCDateTime, utcnow
from hilo.runtime import Runtime, Tx

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
IDLE_SECONDS = 1.0


def backoff_seconds(attempt: int, base: float, ceiling: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider's Retry-After."""
    exponential = min(ceiling, base**attempt)
    delay = random.uniform(exponential / 2, exponential)
    return max(delay, retry_after or 0.0)


def claim_due(tx: Tx, table: Any, returning: Sequence[Any], *, limit: int, lease: timedelta = LEASE) -> list[Any]:
    """Claim up to `limit` due rows of a job table and return `returning` of each.

    A job table has `state` ("pending" while there is work), `run_at`, `locked_until`,
    `attempts` and `updated_at`. Claiming leases the rows until now + `lease` and counts an
    attempt, in the caller's transaction."""
    now = tx.now
    due = (
        select(table.id)
        .where(
            table.state == "pending",
            table.run_at <= now,
            or_(table.locked_until.is_(None), table.locked_until < now),
        )
        .order_by(table.run_at, table.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(
        tx.session.execute(
            update(table)
            .where(table.id.in_(due.scalar_subquery()))
            .values(locked_until=now + lease, attempts=table.attempts + 1, updated_at=now)
            .returning(*returning)
        ).all()
    )


def lock_due(tx: Tx, table: Any, due: Any, *, limit: int) -> list[Any]:
    """Take up to `limit` rows of `table` in state "pending" whose `due` column has passed,
    oldest first, locked until the caller's transaction ends (rows another process holds
    are passed over). For work done in that same transaction: it must leave "pending"."""
    return list(
        tx.session.execute(
            select(table)
            .where(table.state == "pending", due <= tx.now)
            .order_by(due, table.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def hold_lease(
    session: Any, table: Any, where: Any, owner: str, now: datetime, until: datetime, returning: Sequence[Any] = ()
) -> Any | None:
    """Hold the lease of the row `where` selects for `owner` until `until`, if it is free,
    expired or already `owner`'s; return `returning` of the row (None: another holds it).

    The row has `lease_owner`, `lease_until` and `updated_at` columns."""
    return session.execute(
        update(table)
        .where(
            where,
            or_(
                table.lease_owner == owner,
                table.lease_owner.is_(None),
                table.lease_until.is_(None),
                table.lease_until <= now,
            ),
        )
        .values(lease_owner=owner, lease_until=until, updated_at=now)
        .returning(table.lease_owner, *returning)
    ).first()


class Job(Base):
    """A piece of work with effects outside the database, queued by a feature."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # pending -> done | failed
    state: Mapped[str] = mapped_column(String(16), default="pending")
    run_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


def enqueue(tx: Tx, kind: str, payload: dict[str, Any], *, delay: float = 0.0) -> None:
    """Queue a job in the caller's transaction: it runs once that transaction has committed."""
    now = tx.now
    tx.session.add(
        Job(
            kind=kind,
            payload=payload,
            state="pending",
            run_at=now + timedelta(seconds=delay),
            attempts=0,
            created_at=now,
            updated_at=now,
        )
    )
    tx.wake_worker = True


@dataclass(frozen=True)
class Outcome:
    """What one attempt of a job came to: done, or a retry after `retry_in` seconds, or given up."""

    done: bool
    retry_in: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int


# A job kind's handler: runs one attempt (off the event loop if it blocks) and says how it went.
JobHandler = Callable[[Runtime, Claimed], Awaitable[Outcome]]


class JobRunner:
    """Claim due jobs and run each with its kind's handler; a background service."""

    def __init__(self, runtime: Runtime, handlers: Mapping[str, JobHandler], *, batch: int = 20) -> None:
        self.runtime = runtime
        self.handlers = dict(handlers)
        self.batch = batch
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        runtime.on_outbox_work(self._woken)

    def _woken(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def claim(self) -> list[Claimed]:
        with self.runtime.transaction() as tx:
            rows = claim_due(tx, Job, (Job.id, Job.kind, Job.payload, Job.attempts), limit=self.batch)
        return [Claimed(r.id, r.kind, dict(r.payload or {}), r.attempts) for r in rows]

    async def run_job(self, job: Claimed) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            outcome = Outcome(done=False, error="unknown_kind")
        else:
            try:
                outcome = await handler(self.runtime, job)
            except Exception as exc:
                log.exception("job %s (%s) failed unexpectedly", job.id, job.kind)
                outcome = Outcome(done=False, retry_in=60.0, error=type(exc).__name__)
        await asyncio.to_thread(self._record, job, outcome)

    def _record(self, job: Claimed, outcome: Outcome) -> None:
        with self.runtime.transaction() as tx:
            if outcome.done:
                values: dict[str, Any] = {"state": "done", "locked_until": None, "last_error": None}
            elif outcome.retry_in is not None:
                values = {
                    "run_at": tx.now + timedelta(seconds=outcome.retry_in),
                    "locked_until": None,
                    "last_error": outcome.error,
                }
            else:
                values = {"state": "failed", "locked_until": None, "last_error": outcome.error}
            tx.session.execute(update(Job).where(Job.id == job.id).values(updated_at=tx.now, **values))

    async def run_once(self) -> int:
        """Claim and run one batch of due jobs; returns how many ran."""
        claimed = await asyncio.to_thread(self.claim)
        if claimed:
            await asyncio.gather(*(self.run_job(job) for job in claimed))
        return len(claimed)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                ran = await self.run_once()
            except Exception:
                log.exception("job pass failed")
                ran = 0
            if ran:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=IDLE_SECONDS)

    def stop(self) -> None:
        self._stopping = True
        self._woken()

    def pending(self) -> list[datetime]:
        """When the jobs still to run are due, soonest first."""
        with self.runtime.db.read() as session:
            return list(
                session.execute(select(Job.run_at).where(Job.state == "pending").order_by(Job.run_at)).scalars()
            )
