"""Record what the provider said about a send: accepted, retry later, or failed."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select, update

from hilo.actions.conversations import realtime_of
from hilo.channels.base import SendError, SendResult
from hilo.channels.models import ChannelAccount
from hilo.conversations.models import Conversation, Message
from hilo.messaging.actions import set_channel_opt_out
from hilo.runtime import Tx
from hilo.worker.models import OutboxJob


def backoff_seconds(attempt: int, base: float, ceiling: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider's Retry-After."""
    exponential = min(ceiling, base**attempt)
    delay = random.uniform(exponential / 2, exponential)
    return max(delay, retry_after or 0.0)


def _conversation(tx: Tx, message_id: int) -> tuple[Message, Conversation]:
    message = tx.session.get(Message, message_id)
    assert message is not None
    conversation = tx.session.get(Conversation, message.conversation_id)
    assert conversation is not None
    return message, conversation


def _set_status_detail(tx: Tx, message: Message, detail: str | None) -> None:
    """Keep the provider's own words about the last attempt (an SMTP server's reply) in
    the message data, beside the translated status_reason; cleared once a send succeeds."""
    data = dict(message.data or {})
    if data.get("status_detail") == detail or ("status_detail" not in data and detail is None):
        return
    if detail is None:
        data.pop("status_detail")
    else:
        data["status_detail"] = detail
    tx.session.execute(update(Message).where(Message.id == message.id).values(data=data))


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
    _set_status_detail(tx, message, detail or None)
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
