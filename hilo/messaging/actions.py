"""Actions of the channel plumbing: opt-outs per channel, read/delivery watermarks,
provider account errors, and the inbound media fetch queue."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hilo.channels.base import ChannelAccountView, DeliveryStatus, IdentityRef
from hilo.channels.media import MEDIA_REFUSED, refusal_note
from hilo.contacts.identity import InvalidIdentity, normalize
from hilo.contacts.models import Identity
from hilo.conversations.models import Attachment, Conversation, Message
from hilo.jobs import backoff_seconds
from hilo.messaging.models import ChannelOptOut, MediaFetchJob
from hilo.runtime import Tx

log = logging.getLogger(__name__)

MEDIA_MAX_ATTEMPTS = 5
# Message data key: why files of the message have no stored copy (listed without a query).


def _conversation_realtime(tx: Tx, conversation_id: int, **extra: Any) -> dict[str, Any]:
    row = tx.session.execute(
        select(Conversation.team_id, Conversation.assignee_id, Conversation.status).where(
            Conversation.id == conversation_id
        )
    ).one()
    return {"team_id": row.team_id, "assignee_id": row.assignee_id, "status": row.status, **extra}


# -- opt-outs ---------------------------------------------------------------------------


def set_channel_opt_out(
    tx: Tx,
    identity_id: int,
    channel_kind: str,
    opted_out: bool,
    *,
    source: str,
    channel_account_id: int | None = None,
    code: str | None = None,
) -> bool:
    """Opt an identity out of (or back into) one kind of channel; True if that changed.

    Idempotent: a second STOP, or a START from someone never opted out, changes nothing
    and records nothing."""
    session = tx.session
    if opted_out:
        values = {
            "identity_id": identity_id,
            "channel_kind": channel_kind,
            "source": source,
            "channel_account_id": channel_account_id,
            "created_at": tx.now,
        }
        # The ingest thread and a worker may both learn of the same opt-out at once.
        dialect = session.get_bind().dialect.name
        statement = (
            postgresql.insert(ChannelOptOut).values(**values)
            if dialect == "postgresql"
            else sqlite.insert(ChannelOptOut).values(**values)
        )
        changed = session.execute(statement.on_conflict_do_nothing()).rowcount > 0  # type: ignore[attr-defined]
    else:
        changed = (
            session.execute(  # type: ignore[attr-defined]
                delete(ChannelOptOut).where(
                    ChannelOptOut.identity_id == identity_id, ChannelOptOut.channel_kind == channel_kind
                )
            ).rowcount
            > 0
        )
    if changed:
        contact_id = session.execute(select(Identity.contact_id).where(Identity.id == identity_id)).scalar()
        tx.record(
            "identity.opted_out" if opted_out else "identity.opted_in",
            contact_id=contact_id,
            data={
                "identity_id": identity_id,
                "channel_kind": channel_kind,
                "channel_account_id": channel_account_id,
                "source": source,
                "code": code,
            },
        )
    return changed


# -- receipts ---------------------------------------------------------------------------


def _identity_id(tx: Tx, ref: IdentityRef) -> int | None:
    try:
        ref = normalize(ref, tx.runtime.settings.default_region)
    except InvalidIdentity:
        return None
    return tx.session.execute(
        select(Identity.id).where(Identity.kind == ref.kind, Identity.value == ref.value)
    ).scalar()


def apply_watermark(
    tx: Tx,
    account: ChannelAccountView,
    recipient: IdentityRef,
    status: DeliveryStatus,
    at: datetime,
    allowed: Sequence[str],
) -> int:
    """Move every message sent to `recipient` on this channel account at or before `at`
    to `status` (Messenger/Instagram receipts); `allowed` are the statuses it may replace,
    so a status never moves backwards. Returns how many messages moved."""
    identity_id = _identity_id(tx, recipient)
    if identity_id is None:
        return 0
    rows = tx.session.execute(
        update(Message)
        .where(
            Message.channel_account_id == account.id,
            Message.identity_id == identity_id,
            Message.direction == "outbound",
            Message.sent_at.is_not(None),
            Message.sent_at <= at,
            Message.status.in_(allowed),
        )
        .values(status=str(status))
        .returning(Message.id, Message.conversation_id, Message.contact_id)
    ).all()
    realtime_by_conversation: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row.conversation_id not in realtime_by_conversation:
            realtime_by_conversation[row.conversation_id] = _conversation_realtime(tx, row.conversation_id)
        tx.record(
            "message.status",
            conversation_id=row.conversation_id,
            contact_id=row.contact_id,
            message_id=row.id,
            data={"status": str(status), "watermark": at.isoformat()},
            realtime={**realtime_by_conversation[row.conversation_id], "delivery_status": str(status)},
        )
    return len(rows)


def record_account_errors(tx: Tx, account: ChannelAccountView, errors: list[dict[str, Any]]) -> None:
    """Keep problems of the whole provider account (WhatsApp "errors" webhook) as an event."""
    summary = [
        {
            "code": error.get("code"),
            "title": error.get("title"),
            "message": error.get("message"),
            "details": (error.get("error_data") or {}).get("details")
            if isinstance(error.get("error_data"), dict)
            else None,
        }
        for error in errors
    ]
    for item in summary:
        log.warning(
            "channel account %s (%s) provider error %s: %s", account.id, account.kind, item["code"], item["title"]
        )
    tx.record("channel.provider_error", data={"channel_account_id": account.id, "errors": summary})


# -- inbound media ----------------------------------------------------------------------


def enqueue_media_fetches(tx: Tx, message_id: int, channel_account_id: int) -> None:
    """Queue a fetch for each attachment of `message_id` whose bytes are still at the provider."""
    attachment_ids = (
        tx.session.execute(
            select(Attachment.id)
            .where(
                Attachment.message_id == message_id,
                Attachment.storage_key.is_(None),
                or_(Attachment.provider_media_id.is_not(None), Attachment.provider_url.is_not(None)),
            )
            .order_by(Attachment.id)
        )
        .scalars()
        .all()
    )
    if not attachment_ids:
        return
    tx.session.execute(
        insert(MediaFetchJob),
        [
            {
                "attachment_id": attachment_id,
                "channel_account_id": channel_account_id,
                "state": "pending",
                "attempts": 0,
                "max_attempts": MEDIA_MAX_ATTEMPTS,
                "run_at": tx.now,
                "created_at": tx.now,
                "updated_at": tx.now,
            }
            for attachment_id in attachment_ids
        ],
    )
    tx.wake_worker = True


def _note_refusal(tx: Tx, attachment: Attachment, code: str, reason: str) -> None:
    """Note on the message why this file will not be stored, for timelines to show."""
    ids = list(
        tx.session.execute(
            select(Attachment.id).where(Attachment.message_id == attachment.message_id).order_by(Attachment.id)
        ).scalars()
    )
    # Locked: an edit of the same message may be rewriting its data.
    data = tx.session.execute(
        select(Message.data).where(Message.id == attachment.message_id).with_for_update()
    ).scalar_one()
    data = dict(data or {})
    note = refusal_note(ids.index(attachment.id), attachment.filename, code, reason)
    notes = [n for n in data.get(MEDIA_REFUSED) or [] if isinstance(n, dict) and n.get("index") != note["index"]]
    data[MEDIA_REFUSED] = [*notes, note]
    tx.session.execute(update(Message).where(Message.id == attachment.message_id).values(data=data))


def _job_attachment(tx: Tx, job_id: int) -> tuple[MediaFetchJob, Attachment, int]:
    job = tx.session.get(MediaFetchJob, job_id)
    assert job is not None
    attachment = tx.session.get(Attachment, job.attachment_id)
    assert attachment is not None
    conversation_id = tx.session.execute(
        select(Message.conversation_id).where(Message.id == attachment.message_id)
    ).scalar_one()
    return job, attachment, conversation_id


def record_media_stored(tx: Tx, job_id: int, storage_key: str, size: int, content_type: str) -> None:
    """Attach the fetched bytes to their attachment row and tell the agents' screens."""
    job, attachment, conversation_id = _job_attachment(tx, job_id)
    job.state = "done"
    job.locked_until = None
    job.last_error = None
    job.updated_at = tx.now
    attachment.storage_key = storage_key
    attachment.size = size
    attachment.content_type = content_type
    tx.session.flush()
    tx.record(
        "attachment.stored",
        conversation_id=conversation_id,
        message_id=attachment.message_id,
        data={"attachment_id": attachment.id, "size": size, "content_type": content_type},
        realtime=_conversation_realtime(tx, conversation_id, attachment_id=attachment.id),
    )


def record_media_failure(
    tx: Tx, job_id: int, code: str, reason: str, *, retryable: bool, retry_after: float | None = None
) -> None:
    """Schedule another try with backoff, or give up and say why in the timeline's events."""
    # Imported here: hilo.outbox.delivery records provider opt-outs through this module.

    settings = tx.runtime.settings
    job, attachment, conversation_id = _job_attachment(tx, job_id)
    job.last_error = f"{code}: {reason}"
    job.locked_until = None
    job.updated_at = tx.now
    if retryable and job.attempts < job.max_attempts:
        delay = backoff_seconds(job.attempts, settings.outbox_backoff_base, settings.outbox_backoff_max, retry_after)
        job.run_at = tx.now + timedelta(seconds=delay)
        tx.session.flush()
        return
    job.state = "failed"
    tx.session.flush()
    _note_refusal(tx, attachment, code, reason)
    tx.record(
        "attachment.fetch_failed",
        conversation_id=conversation_id,
        message_id=attachment.message_id,
        data={"attachment_id": attachment.id, "code": code, "reason": reason, "attempts": job.attempts},
        realtime=_conversation_realtime(tx, conversation_id, attachment_id=attachment.id, code=code, reason=reason),
    )
