"""Record what the provider said about a send: accepted, retry later, or failed."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from hilo.channels.base import SendError, SendResult, StatusUpdate
from hilo.channels.models import ChannelAccount
from hilo.conversations.actions import realtime_of
from hilo.conversations.models import Conversation, Message
from hilo.jobs import backoff_seconds
from hilo.messaging.actions import set_channel_opt_out
from hilo.outbox.models import OutboxJob, OutboxPart
from hilo.runtime import Tx


def _conversation(tx: Tx, message_id: int) -> tuple[Message, Conversation]:
    message = tx.session.get(Message, message_id)
    assert message is not None
    conversation = tx.session.get(Conversation, message.conversation_id)
    assert conversation is not None
    return message, conversation


def _set_status_detail(tx: Tx, message: Message, detail: str | None, attempts: int | None = None) -> None:
    """Keep the provider's own words about the last attempt (an SMTP server's reply) in
    the message data, beside the translated status_reason; cleared once a send succeeds.

    `attempts` is set when Hilo gave up on a reason that could have passed (a network
    error, a busy provider) after the last attempt, so the agent reads how often it tried."""
    data = dict(message.data or {})
    wanted = {"status_detail": detail, "status_attempts": attempts}
    if all(data.get(key) == value for key, value in wanted.items()):
        return
    for key, value in wanted.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    tx.session.execute(update(Message).where(Message.id == message.id).values(data=data))


def record_part_sent(tx: Tx, job_id: int, part: int, provider_message_id: str) -> None:
    """Remember that the provider took one part of a multi-part send.

    Committed before the next part is tried, so a retry of the job skips it. The first
    part's id names the message at once, so an early status callback finds it."""
    job = tx.session.get(OutboxJob, job_id)
    assert job is not None
    tx.session.execute(
        insert(OutboxPart).values(
            job_id=job_id,
            message_id=job.message_id,
            part=part,
            provider_message_id=provider_message_id,
            created_at=tx.now,
        )
    )
    if part == 0:
        tx.session.execute(
            update(Message).where(Message.id == job.message_id).values(provider_message_id=provider_message_id)
        )


def sent_parts(session: Session, job_id: int) -> dict[int, str]:
    """The parts of this job the provider already took: part number -> provider id."""
    rows = session.execute(
        select(OutboxPart.part, OutboxPart.provider_message_id).where(OutboxPart.job_id == job_id)
    ).all()
    return {row.part: row.provider_message_id for row in rows}


def carry_sent_parts(tx: Tx, message_id: int, job_id: int) -> None:
    """Give a new send of a message the parts its last job got out before it failed.

    When a later part failed for good, the earlier ones reached the customer: sending the
    message again sends only the rest. When the provider took every part and reported a
    failure afterwards (the job is done), the new job starts from nothing and really
    re-sends."""
    last = tx.session.execute(
        select(OutboxJob.id, OutboxJob.state)
        .where(OutboxJob.message_id == message_id, OutboxJob.id != job_id)
        .order_by(OutboxJob.id.desc())
        .limit(1)
    ).first()
    if last is None or last.state != "failed":
        return
    for part, provider_message_id in sent_parts(tx.session, last.id).items():
        tx.session.execute(
            insert(OutboxPart).values(
                job_id=job_id,
                message_id=message_id,
                part=part,
                provider_message_id=provider_message_id,
                created_at=tx.now,
            )
        )


def statuses_by_part(session: Session, account_id: int, statuses: Sequence[StatusUpdate]) -> list[StatusUpdate]:
    """Rename status callbacks that name a later part of a multi-part send after the
    message's own provider id (its first part's), which is what ingest matches on."""
    ids = {status.provider_message_id for status in statuses}
    rows = session.execute(
        select(OutboxPart.provider_message_id, Message.provider_message_id.label("message_provider_id"))
        .join(Message, Message.id == OutboxPart.message_id)
        .where(
            OutboxPart.provider_message_id.in_(ids),
            OutboxPart.part > 0,
            Message.channel_account_id == account_id,
            Message.provider_message_id.is_not(None),
        )
    ).all()
    owner = {row.provider_message_id: row.message_provider_id for row in rows}
    return [
        dataclasses.replace(status, provider_message_id=owner[status.provider_message_id])
        if status.provider_message_id in owner
        else status
        for status in statuses
    ]


def record_sent(tx: Tx, job_id: int, result: SendResult) -> None:
    job = tx.session.get(OutboxJob, job_id)
    assert job is not None
    job.state = "done"
    job.locked_until = None
    job.last_error = None
    message, conversation = _conversation(tx, job.message_id)
    _set_status_detail(tx, message, None)
    # A status callback may have arrived first ("delivered" before we recorded "sent").
    tx.session.execute(
        update(Message)
        .where(Message.id == message.id)
        .values(provider_message_id=result.provider_message_id, sent_at=tx.now, status_code=None, status_reason=None)
    )
    tx.session.execute(
        update(Message)
        .where(Message.id == message.id, Message.status.in_(("queued", "failed")))
        .values(status=str(result.status))
    )
    tx.session.refresh(message)
    tx.record(
        "message.status",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        message_id=message.id,
        data={"status": message.status, "attempt": job.attempts},
        realtime=realtime_of(conversation, delivery_status=message.status),
    )


def record_failure(tx: Tx, job_id: int, error: SendError) -> None:
    settings = tx.runtime.settings
    job = tx.session.get(OutboxJob, job_id)
    assert job is not None
    message, conversation = _conversation(tx, job.message_id)
    job.last_error = f"{error.code}: {error.reason}"
    job.locked_until = None
    final = not error.retryable or job.attempts >= job.max_attempts
    if final:
        job.state = "failed"
        tx.session.execute(
            update(Message)
            .where(Message.id == message.id, Message.status == "queued")
            .values(status="failed", status_code=error.code, status_reason=error.reason)
        )
        if error.opted_out and message.identity_id is not None and message.channel_account_id is not None:
            # Blocked on this kind of channel only (Twilio 21610 says nothing about WhatsApp).
            channel_kind = tx.session.execute(
                select(ChannelAccount.kind).where(ChannelAccount.id == message.channel_account_id)
            ).scalar_one()
            set_channel_opt_out(
                tx,
                message.identity_id,
                channel_kind,
                True,
                source="provider",
                channel_account_id=message.channel_account_id,
                code=error.code,
            )
        kind = "message.status"
        data = {
            "status": "failed",
            "code": error.code,
            "reason": error.reason,
            "attempts": job.attempts,
            "needs_template": error.needs_template,
        }
    else:
        delay = backoff_seconds(
            job.attempts, settings.outbox_backoff_base, settings.outbox_backoff_max, error.retry_after
        )
        job.run_at = tx.now + timedelta(seconds=delay)
        # The agent sees why it has not gone yet; the status stays "queued".
        tx.session.execute(
            update(Message).where(Message.id == message.id).values(status_code=error.code, status_reason=error.reason)
        )
        kind = "message.retry_scheduled"
        data = {"code": error.code, "reason": error.reason, "attempt": job.attempts, "delay_seconds": round(delay, 3)}
    detail = getattr(error, "server_reply", None)
    if detail:
        data["detail"] = detail
    # A reason that could have passed, final only because the attempts ran out.
    gave_up = final and error.retryable and job.attempts > 1
    _set_status_detail(tx, message, detail or None, job.attempts if gave_up else None)
    tx.session.flush()
    tx.session.refresh(message)
    tx.record(
        kind,
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        message_id=message.id,
        data=data,
        realtime=realtime_of(
            conversation, delivery_status=message.status, status_code=error.code, status_reason=error.reason
        ),
    )


def pending_jobs(tx: Tx) -> int:
    return len(tx.session.execute(select(OutboxJob.id).where(OutboxJob.state == "pending")).all())
