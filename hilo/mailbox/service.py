"""Run one IMAP poller per enabled e-mail channel account, and ingest what they fetch.

Every worker process (the in-process worker of `hilo serve`, each `hilo worker`) runs one
`MailboxService`. It scans the channel accounts every few seconds, and at once when an
account is created or changed in this process, then starts, restarts or stops pollers to
match. A lease row per mailbox (`mailbox_states`) makes sure one worker polls a mailbox
at a time: the holder renews it while it polls; a worker that dies leaves it to expire
and another worker takes over from the saved cursor.

A fetched message is marked \\Seen only after the ingest transaction holding it has
committed. Mail that is not an e-mail at all (no sender, unreadable bytes) is kept in
storage, recorded as a `mailbox.mail_rejected` event and marked \\Seen, so it never
blocks the mailbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aioimaplib
from sqlalchemy import select

from hilo.channels.base import ChannelAccountView, WebhookError
from hilo.channels.email import ADAPTER, EmailSettings
from hilo.channels.email_imap import ImapPoller, ImapState, OnMessage
from hilo.channels.models import ChannelAccount
from hilo.ingest.queue import IngestQueue
from hilo.mailbox import actions
from hilo.mailbox.models import MailboxState
from hilo.runtime import Runtime

log = logging.getLogger(__name__)

# How long a mailbox stays with a worker that stopped renewing (crashed, cut off).
LEASE = timedelta(seconds=60)
# How often accounts are re-read; changes made in this process apply at once.
SCAN_SECONDS = 5.0
# Channel events that may start, change or stop a poller.
CHANNEL_EVENTS = frozenset({"channel.created", "channel.updated"})

SaveCursor = Callable[[ImapState], Awaitable[None]]
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")


def mailbox_key(settings: EmailSettings) -> str:
    """Name the folder a cursor belongs to: UIDs mean nothing in another mailbox."""
    return f"{settings.imap_username}@{settings.imap_host}:{settings.imap_port}/{settings.imap_folder}"


def _fingerprint(account: ChannelAccountView) -> str:
    """Digest of everything a poller reads, so a changed setting or password restarts it."""
    payload = json.dumps([account.name, dict(account.config), dict(account.secrets)], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class _Poller(ImapPoller):
    """An ImapPoller that saves its cursor after every message, so a stop resumes right there."""

    def __init__(
        self,
        account: ChannelAccountView,
        on_message: OnMessage,
        *,
        state: ImapState,
        save: SaveCursor,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(account, on_message, state=state, tls_context=tls_context)
        self._save = save
        self._saved = (state.uidvalidity, state.last_uid)

    async def _deliver(self, client: aioimaplib.IMAP4, uid: int) -> bool:
        delivered = await super()._deliver(client, uid)
        # UIDs go in ascending order, so every lower one is handled: delivered, or left
        # unseen for the next UNSEEN search. A stop from here on resumes after `uid`.
        self.state.last_uid = max(self.state.last_uid, self._baseline, uid)
        await self._checkpoint()
        return delivered

    async def _fetch_new(self, client: aioimaplib.IMAP4) -> int:
        delivered = await super()._fetch_new(client)
        await self._checkpoint()
        return delivered

    async def _checkpoint(self) -> None:
        current = (self.state.uidvalidity, self.state.last_uid)
        if current != self._saved:
            await self._save(ImapState(*current))
            self._saved = current


@dataclass
class _Running:
    account: ChannelAccountView
    fingerprint: str
    mailbox: str
    poller: _Poller
    task: asyncio.Task[None]
    lease_until: datetime


@dataclass(frozen=True)
class _Candidate:
    account: ChannelAccountView
    lease_owner: str | None
    lease_until: datetime | None


class MailboxService:
    """Keep one poller running for each enabled IMAP mailbox this worker holds the lease on."""

    def __init__(
        self,
        runtime: Runtime,
        ingest: IngestQueue,
        *,
        owner: str | None = None,
        scan_seconds: float = SCAN_SECONDS,
        lease: timedelta = LEASE,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.runtime = runtime
        self.ingest = ingest
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.scan_seconds = scan_seconds
        self.lease = lease
        self._tls_context = tls_context
        self._running: dict[int, _Running] = {}
        self._unusable: dict[int, str] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._scan_lock = asyncio.Lock()
        runtime.on_committed(self._on_committed)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start scanning in the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="hilo-mailboxes")

    async def close(self) -> None:
        """Stop every poller, save its cursor and give its mailbox back."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            # Let a scan under way finish rather than cancel it between claim and start.
            await self._task
            self._task = None
        async with self._scan_lock:
            for account_id in list(self._running):
                await self._stop(account_id, release=True)
        self._loop = None

    def polling(self) -> set[int]:
        """Channel account ids whose mailbox this service polls right now."""
        return {account_id for account_id, running in self._running.items() if not running.task.done()}

    def _on_committed(self, events: list[dict[str, Any]]) -> None:
        # Runs in the committing thread: only hand a wake-up to our loop.
        loop = self._loop
        if loop is None or not any(event.get("type") in CHANNEL_EVENTS for event in events):
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.scan()
            except Exception:
                log.exception("mailbox scan failed; trying again in %s s", self.scan_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.scan_seconds)

    # --- reconciling -------------------------------------------------------------------

    async def scan(self) -> None:
        """Match the running pollers to the enabled accounts and the leases this worker holds."""
        async with self._scan_lock:
            candidates = await asyncio.to_thread(self._candidates)
            now = self.runtime.clock.now()
            for account_id in list(self._running):
                running = self._running[account_id]
                candidate = candidates.get(account_id)
                if candidate is None or _fingerprint(candidate.account) != running.fingerprint:
                    await self._stop(account_id, release=True)
                elif running.task.done():
                    # ImapPoller.run only ends on a bug; log it and start afresh below.
                    if not running.task.cancelled() and running.task.exception() is not None:
                        log.error("imap poller for channel %s crashed", account_id, exc_info=running.task.exception())
                    await self._stop(account_id, release=False)
                elif running.lease_until - now <= self.lease / 2:
                    await self._renew(account_id)
            for account_id, candidate in candidates.items():
                if account_id in self._running:
                    continue
                held_elsewhere = (
                    candidate.lease_owner not in (None, self.owner)
                    and candidate.lease_until is not None
                    and candidate.lease_until > now
                )
                if not held_elsewhere:
                    await self._start(candidate.account)

    def _candidates(self) -> dict[int, _Candidate]:
        """Enabled e-mail accounts with an IMAP host, with their current lease."""
        with self.runtime.db.read() as session:
            rows = session.execute(
                select(ChannelAccount, MailboxState.lease_owner, MailboxState.lease_until)
                .outerjoin(MailboxState, MailboxState.channel_account_id == ChannelAccount.id)
                .where(ChannelAccount.kind == ADAPTER.kind, ChannelAccount.enabled.is_(True))
                .order_by(ChannelAccount.id)
            ).all()
            found = {}
            for account, lease_owner, lease_until in rows:
                if str((account.config or {}).get("imap_host") or "").strip():
                    found[account.id] = _Candidate(account.view(), lease_owner, lease_until)
            return found

    async def _start(self, account: ChannelAccountView) -> None:
        fingerprint = _fingerprint(account)
        try:
            settings = EmailSettings.from_account(account)
        except (ValueError, KeyError):
            if self._unusable.get(account.id) != fingerprint:
                log.warning("e-mail channel %s has invalid IMAP settings; not polling it", account.id)
                self._unusable[account.id] = fingerprint
            return
        self._unusable.pop(account.id, None)
        mailbox = mailbox_key(settings)
        state = await asyncio.to_thread(self._claim, account.id, mailbox)
        if state is None:
            return  # another worker took it first
        lease_until = self.runtime.clock.now() + self.lease

        async def on_message(raw: bytes) -> None:
            await self._ingest(account, raw)

        async def save(cursor: ImapState) -> None:
            await asyncio.to_thread(self._save, account.id, cursor)

        poller = _Poller(account, on_message, state=state, save=save, tls_context=self._tls_context)
        task = asyncio.create_task(poller.run(), name=f"hilo-imap-{account.id}")
        self._running[account.id] = _Running(account, fingerprint, mailbox, poller, task, lease_until)
        log.info("polling mailbox %s for channel %s", mailbox, account.id)

    async def _stop(self, account_id: int, *, release: bool) -> None:
        running = self._running.pop(account_id)
        running.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running.task
        cursor = ImapState(running.poller.state.uidvalidity, running.poller.state.last_uid)
        try:
            if release:
                await asyncio.to_thread(self._release, account_id, cursor)
            else:
                await asyncio.to_thread(self._save, account_id, cursor)
        except Exception:
            # The lease expires by itself; the next holder re-reads a few messages at most.
            log.exception("could not save the cursor of channel %s", account_id)

    async def _renew(self, account_id: int) -> None:
        running = self._running[account_id]
        held = await asyncio.to_thread(self._renew_lease, account_id, running.mailbox)
        if held:
            running.lease_until = self.runtime.clock.now() + self.lease
        else:
            log.warning("channel %s: another worker took the mailbox; stopping this poller", account_id)
            running = self._running.pop(account_id)
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running.task

    # --- ingest ------------------------------------------------------------------------

    async def _ingest(self, account: ChannelAccountView, raw: bytes) -> None:
        """Store one fetched message; return only once it is committed (or kept as rejected)."""
        try:
            result = await asyncio.to_thread(ADAPTER.parse_raw, account, raw)
        except WebhookError as exc:
            await asyncio.to_thread(self._reject, account.id, raw, exc)
            return
        # Shielded: a poller stopped mid-ingest must not cancel the commit under way.
        await asyncio.shield(asyncio.wrap_future(self.ingest.submit(account, result)))

    # --- database work (in threads) ----------------------------------------------------

    def _claim(self, account_id: int, mailbox: str) -> ImapState | None:
        with self.runtime.transaction() as tx:
            return actions.claim_mailbox(tx, account_id, mailbox, self.owner, self.lease)

    def _renew_lease(self, account_id: int, mailbox: str) -> bool:
        with self.runtime.transaction() as tx:
            return actions.renew_mailbox(tx, account_id, mailbox, self.owner, self.lease)

    def _save(self, account_id: int, cursor: ImapState) -> None:
        with self.runtime.transaction() as tx:
            actions.save_cursor(tx, account_id, self.owner, cursor)

    def _release(self, account_id: int, cursor: ImapState) -> None:
        with self.runtime.transaction() as tx:
            actions.release_mailbox(tx, account_id, self.owner, cursor)

    def _reject(self, account_id: int, raw: bytes, error: WebhookError) -> None:
        key = self.runtime.storage.save(raw, "rejected.eml")
        log.warning("channel %s: kept unreadable mail (%s) as %s", account_id, error.code, key)
        with self.runtime.transaction() as tx:
            actions.record_rejected_mail(tx, account_id, error.code, error.message, key, len(raw))
