"""Outbox dispatcher: claims due jobs, calls the channel adapter, records the outcome.

Any number of dispatchers may run against PostgreSQL: a claim (`hilo.jobs.claim_due`) takes
rows with `FOR UPDATE SKIP LOCKED` and holds them with a lease (`locked_until`), so a worker
that dies mid-send leaves its jobs to be claimed again once the lease runs out. The lease is
at least four times the send timeout, so a send that returns has its outcome recorded long
before anyone else may claim the job: a repeat happens only when a worker dies between the
provider's answer and that record. The job's idempotency key goes with every attempt, so the
receiver can recognise such a repeat (see docs/api.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from hilo.channels.base import (
    SENDER_ADDRESS,
    IdentityKind,
    IdentityRef,
    OutboundAttachment,
    OutboundMessage,
    SendError,
    SendResult,
)
from hilo.channels.models import ChannelAccount
from hilo.channels.registry import get_adapter, transport_for
from hilo.contacts.models import Identity
from hilo.conversations.actions import wake_snoozed
from hilo.conversations.models import Attachment, Conversation, Message
from hilo.i18n import N_
from hilo.jobs import LEASE, claim_due
from hilo.messaging.links import media_link
from hilo.messaging.media import MediaFetcher
from hilo.outbox.delivery import record_failure, record_part_sent, record_sent, sent_parts
from hilo.outbox.models import OutboxJob
from hilo.runtime import Runtime

log = logging.getLogger(__name__)
# How soon a reply held by a disabled channel is looked at again.
DISABLED_RETRY_SECONDS = 60


@dataclass
class Claimed:
    job_id: int
    message_id: int
    idempotency_key: str
    attempts: int


class OutboxDispatcher:
    def __init__(self, runtime: Runtime, *, batch: int = 20, idle_seconds: float = 1.0) -> None:
        self.runtime = runtime
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.media = MediaFetcher(runtime)
        self.lease = max(LEASE, timedelta(seconds=4 * runtime.settings.send_timeout))
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    def wake(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def claim(self) -> list[Claimed]:
        with self.runtime.transaction() as tx:
            rows = claim_due(
                tx,
                OutboxJob,
                (OutboxJob.id, OutboxJob.message_id, OutboxJob.idempotency_key, OutboxJob.attempts),
                limit=self.batch,
                lease=self.lease,
            )
        return [Claimed(r.id, r.message_id, r.idempotency_key, r.attempts) for r in rows]

    def _outbound(self, claimed: Claimed) -> tuple[ChannelAccount, OutboundMessage]:
        with self.runtime.db.read() as session:
            message = session.get(Message, claimed.message_id)
            assert message is not None and message.channel_account_id is not None
            account = session.get(ChannelAccount, message.channel_account_id)
            identity = session.get(Identity, message.identity_id) if message.identity_id else None
            conversation = session.get(Conversation, message.conversation_id)
            assert account is not None and identity is not None and conversation is not None
            # E-mail threading (RFC 5322 §3.6.4): In-Reply-To names the customer's latest
            # message (not an auto-reply or bounce); References lists the thread before it,
            # oldest first, and the adapter appends In-Reply-To last.
            answered = session.execute(
                select(Message.id, Message.provider_message_id)
                .where(
                    Message.conversation_id == message.conversation_id,
                    Message.id < message.id,
                    Message.direction == "inbound",
                    Message.channel_account_id == account.id,
                    Message.auto_generated.is_(False),
                    Message.provider_message_id.is_not(None),
                )
                .order_by(Message.id.desc())
                .limit(1)
            ).first()
            last_inbound = answered.provider_message_id if answered is not None else None
            previous = (
                session.execute(
                    select(Message.provider_message_id)
                    .where(
                        Message.conversation_id == message.conversation_id,
                        Message.id < (answered.id if answered is not None else message.id),
                        Message.channel_account_id == account.id,
                        Message.auto_generated.is_(False),
                        Message.provider_message_id.is_not(None),
                    )
                    .order_by(Message.id.desc())
                    .limit(10)
                )
                .scalars()
                .all()
            )
            files = session.execute(select(Attachment).where(Attachment.message_id == message.id)).scalars().all()
            # Providers that only take files by URL (Instagram, Twilio) get a signed Hilo link,
            # fresh for each attempt.
            by_link = getattr(get_adapter(account.kind), "media_by_link", False)
            now = self.runtime.clock.now()
            attachments = tuple(
                OutboundAttachment(
                    filename=a.filename or "file",
                    content_type=a.content_type or "application/octet-stream",
                    data=self.runtime.storage.read(a.storage_key) if a.storage_key else b"",
                    url=a.provider_url
                    or (media_link(self.runtime.settings, now, a.id) if by_link and a.storage_key else None),
                )
                for a in files
            )
            outbound = OutboundMessage(
                recipient_address=_sender_address(session, account, identity),
                message_id=message.id,
                conversation_id=message.conversation_id,
                recipient=IdentityRef(IdentityKind(identity.kind), identity.value, identity.verified),
                text=message.body,
                idempotency_key=claimed.idempotency_key,
                attachments=attachments,
                template=(message.data or {}).get("template"),
                subject=conversation.subject,
                in_reply_to=last_inbound,
                references=tuple(reversed([p for p in previous if p])),
                cc=tuple((message.data or {}).get("cc", [])),
                tag=(message.data or {}).get("tag"),
                # Only a message with files goes out in several parts.
                sent_parts=sent_parts(session, claimed.job_id) if files else {},
                on_part_sent=partial(self._part_sent, claimed),
            )
            session.expunge(account)
            return account, outbound

    async def run_job(self, claimed: Claimed) -> None:
        try:
            account, outbound = await asyncio.to_thread(self._outbound, claimed)
            if not account.enabled:
                # Disabled after the reply was queued: hold it (and say why) until an admin
                # enables the channel again, or the attempts run out.
                raise SendError(
                    "channel_disabled",
                    N_("This channel is disabled by an administrator."),
                    retryable=True,
                    retry_after=DISABLED_RETRY_SECONDS,
                )
            view = account.view()
            result: SendResult | SendError = await asyncio.wait_for(
                transport_for(view).send(view, outbound), timeout=self.runtime.settings.send_timeout
            )
        except SendError as exc:
            result = exc
        except TimeoutError:
            result = SendError("timeout", N_("The provider did not answer in time."), retryable=True)
        except Exception as exc:  # an adapter bug must not stop the queue
            log.exception("send of message %s failed unexpectedly", claimed.message_id)
            result = SendError("internal_error", N_("Sending failed unexpectedly (an error in Hilo)."), retryable=True)
            result.__cause__ = exc
        await asyncio.to_thread(self._record, claimed, result)

    async def _part_sent(self, claimed: Claimed, part: int, provider_message_id: str) -> None:
        await asyncio.to_thread(self._record_part, claimed, part, provider_message_id)

    def _record_part(self, claimed: Claimed, part: int, provider_message_id: str) -> None:
        with self.runtime.transaction() as tx:
            record_part_sent(tx, claimed.job_id, part, provider_message_id)

    def _record(self, claimed: Claimed, result: SendResult | SendError) -> None:
        with self.runtime.transaction() as tx:
            if isinstance(result, SendError):
                log.info("send of message %s: %s (attempt %s)", claimed.message_id, result.code, claimed.attempts)
                record_failure(tx, claimed.job_id, result)
            else:
                record_sent(tx, claimed.job_id, result)

    def wake_snoozed(self) -> int:
        with self.runtime.transaction() as tx:
            return wake_snoozed(tx)

    async def run_once(self) -> int:
        """Wake due snoozed conversations, then claim and run one batch of due jobs and
        of due media fetches; return how many jobs ran."""
        await asyncio.to_thread(self.wake_snoozed)
        claimed = await asyncio.to_thread(self.claim)
        if claimed:
            await asyncio.gather(*(self.run_job(c) for c in claimed))
        # Inbound files the providers only named are fetched by the same loop.
        fetched = await self.media.run_once()
        return len(claimed) + fetched

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.runtime.on_outbox_work(self.wake)
        while not self._stopping:
            try:
                ran = await self.run_once()
            except Exception:
                log.exception("outbox dispatcher pass failed")
                ran = 0
            if ran:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.idle_seconds)

    def stop(self) -> None:
        self._stopping = True
        self.wake()


def _sender_address(session: Session, account: ChannelAccount, identity: Identity) -> str | None:
    """How the provider named the recipient in their last message on this channel account,
    for adapters that reply to that rather than to the identity's canonical value."""
    if not getattr(get_adapter(account.kind), "replies_to_sender_address", False):
        return None
    data = session.execute(
        select(Message.data)
        .where(
            Message.contact_id == identity.contact_id,
            Message.identity_id == identity.id,
            Message.channel_account_id == account.id,
            Message.direction == "inbound",
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).scalar()
    address = (data or {}).get(SENDER_ADDRESS)
    return address if isinstance(address, str) else None
