"""Replies, private notes and manual retries (DESIGN invariant 3: reply on the right channel)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from hilo.channels.base import IdentityKind, IdentityRef, SendContext
from hilo.channels.models import ChannelAccount
from hilo.channels.registry import get_adapter
from hilo.contacts.identity import CHANNEL_IDENTITY_KIND, InvalidIdentity, normalize_email
from hilo.contacts.models import Identity
from hilo.conversations.actions import realtime_of
from hilo.conversations.models import Attachment, Conversation, Message
from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.messaging.optouts import is_opted_out
from hilo.outbox.delivery import carry_sent_parts
from hilo.outbox.models import OutboxJob
from hilo.runtime import Tx

SCOPED_KINDS = (IdentityKind.API, IdentityKind.WIDGET)


@dataclass
class ChannelOption:
    """One channel this contact can be reached on, and whether it can be used now."""

    channel_account_id: int
    kind: str
    name: str
    identity_id: int | None
    identity_value: str | None
    available: bool
    code: str | None
    reason: str | None
    default: bool
    # E-mail only: who a "reply all" copies (see `reply_all_cc`).
    cc: list[str] = field(default_factory=list)


def _recipient(tx: Tx, conversation: Conversation, account: ChannelAccount) -> Identity | None:
    kind = CHANNEL_IDENTITY_KIND.get(account.kind)
    if kind is None:
        return None
    query = select(Identity).where(Identity.contact_id == conversation.contact_id, Identity.kind == kind)
    if kind in SCOPED_KINDS:
        query = query.where(Identity.value.startswith(f"{account.id}:"))
    identities = tx.session.execute(query.order_by(Identity.id)).scalars().all()
    if not identities:
        return None
    # Prefer the identity the customer last wrote from on this channel account.
    last = _of_last_inbound(tx, Message.identity_id, conversation, account.id)
    return next((i for i in identities if i.id == last), identities[-1])


def _of_last_inbound(tx: Tx, column: Any, conversation: Conversation, account_id: int) -> Any:
    """`column` of the customer's last message in this conversation on this channel account."""
    return tx.session.execute(
        select(column)
        .where(
            Message.conversation_id == conversation.id,
            Message.channel_account_id == account_id,
            Message.direction == "inbound",
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).scalar()


def _last_inbound_at(tx: Tx, conversation: Conversation, account_id: int) -> Any:
    return tx.session.execute(
        select(func.max(Message.created_at)).where(
            Message.contact_id == conversation.contact_id,
            Message.channel_account_id == account_id,
            Message.direction == "inbound",
        )
    ).scalar()


def _context(
    tx: Tx,
    conversation: Conversation,
    account: ChannelAccount,
    identity: Identity,
    text: str | None,
    has_attachments: bool,
    template: dict[str, Any] | None,
) -> SendContext:
    return SendContext(
        account=account.view(),
        recipient=IdentityRef(IdentityKind(identity.kind), identity.value, identity.verified),
        text=text,
        has_attachments=has_attachments,
        template=template,
        last_inbound_at=_last_inbound_at(tx, conversation, account.id),
        now=tx.now,
        # Opt-outs are per kind of channel: an SMS STOP leaves WhatsApp open.
        recipient_opted_out=is_opted_out(tx.session, identity.id, identity.opted_out, account.kind),
    )


def _check(
    tx: Tx,
    conversation: Conversation,
    account: ChannelAccount,
    identity: Identity | None,
    text: str | None,
    has_attachments: bool,
    template: dict[str, Any] | None,
) -> tuple[str, str] | None:
    if not account.enabled:
        return "channel_disabled", N_("This channel is disabled by an administrator.")
    if identity is None:
        return "no_identity_on_channel", N_("This contact has no address on this channel.")
    ctx = _context(tx, conversation, account, identity, text, has_attachments, template)
    # The adapter speaks first: its refusals name the channel's own rule ("reply START").
    refusal = get_adapter(account.kind).check_send(ctx)
    if refusal is not None:
        return refusal.code, refusal.reason
    if ctx.recipient_opted_out:
        return "recipient_opted_out", N_("The contact opted out of messages on this channel.")
    return None


def _message_tag(
    tx: Tx,
    conversation: Conversation,
    account: ChannelAccount,
    identity: Identity,
    text: str | None,
    has_attachments: bool,
    template: dict[str, Any] | None,
) -> str | None:
    """The provider's message tag for this send, from the adapter's optional `message_tag`
    hook (Messenger/Instagram: HUMAN_AGENT for a person answering after 24 hours)."""
    hook = getattr(get_adapter(account.kind), "message_tag", None)
    if hook is None or tx.actor_agent_id is None:
        # Only a human agent's reply may carry the human-agent tag; automations never do.
        return None
    tag: str | None = hook(_context(tx, conversation, account, identity, text, has_attachments, template))
    return tag


def queue_send(tx: Tx, message_id: int, idempotency_key: str, run_at: datetime | None = None) -> int:
    """Add the outbox job that sends `message_id`, in the caller's transaction, and return
    its id; the worker is woken after the commit."""
    job_id: int = tx.session.execute(
        insert(OutboxJob)
        .values(
            message_id=message_id,
            idempotency_key=idempotency_key,
            state="pending",
            attempts=0,
            max_attempts=tx.runtime.settings.outbox_max_attempts,
            run_at=run_at or tx.now,
            created_at=tx.now,
            updated_at=tx.now,
        )
        .returning(OutboxJob.id)
    ).scalar_one()
    tx.wake_worker = True
    return job_id


def channel_options(tx: Tx, conversation: Conversation) -> list[ChannelOption]:
    """Every channel account this contact has an identity for, with why it is unavailable."""
    accounts = tx.session.execute(select(ChannelAccount).order_by(ChannelAccount.id)).scalars().all()
    options = []
    for account in accounts:
        identity = _recipient(tx, conversation, account)
        if identity is None:
            continue
        problem = _check(tx, conversation, account, identity, "", False, None)
        options.append(
            ChannelOption(
                channel_account_id=account.id,
                kind=account.kind,
                name=account.name,
                identity_id=identity.id,
                identity_value=identity.value,
                available=problem is None,
                code=problem[0] if problem else None,
                reason=problem[1] if problem else None,
                default=account.id == conversation.last_channel_account_id,
                cc=reply_all_cc(tx, conversation, account, identity) if account.kind == "email" else [],
            )
        )
    return options


def reply_all_cc(tx: Tx, conversation: Conversation, account: ChannelAccount, recipient: Identity) -> list[str]:
    """Who a "reply all" on this e-mail account copies: the other To and CC addresses of the
    customer's last mail in this conversation, without the channel's own address and the
    recipient. Hilo never copies them on its own; the composer offers them, editable."""
    data = _of_last_inbound(tx, Message.data, conversation, account.id)
    if not isinstance(data, dict):
        return []
    skip = {recipient.value, str((account.config or {}).get("address") or "").strip().lower()}
    addresses = []
    for value in [*(data.get("to") or []), *(data.get("cc") or [])]:
        try:
            address = normalize_email(str(value))
        except InvalidIdentity:
            continue
        if address not in skip:
            addresses.append(address)
    return list(dict.fromkeys(addresses))


def _addressed(tx: Tx, conversation: Conversation, account: ChannelAccount, to: str) -> Identity:
    """The contact's e-mail identity the agent typed in To: a reply goes to the contact, so
    an address that is not theirs is refused (it can go in CC)."""
    if account.kind != "email":
        raise ActionError("to_not_supported", N_("Only e-mail replies can choose their recipient (To)."), 422)
    try:
        address = normalize_email(to)
    except InvalidIdentity:
        raise ActionError(
            "to_invalid", N_('"{address}" is not a valid e-mail address for To.'), 422, address=to[:320]
        ) from None
    identity = tx.session.execute(
        select(Identity).where(
            Identity.contact_id == conversation.contact_id,
            Identity.kind == IdentityKind.EMAIL,
            Identity.value == address,
        )
    ).scalar_one_or_none()
    if identity is None:
        raise ActionError(
            "to_not_contact",
            N_("{address} is not an e-mail address of this contact. Put it in CC, or add it to the contact first."),
            422,
            address=address,
        )
    return identity


def _cc_addresses(account: ChannelAccount, cc: list[str]) -> list[str]:
    """Copy recipients: e-mail only, each a valid address (no header injection), once each."""
    if account.kind != "email":
        raise ActionError("cc_not_supported", N_("Only e-mail replies can have copy (CC) recipients."), 422)
    addresses = []
    for value in cc:
        try:
            addresses.append(normalize_email(value))
        except InvalidIdentity:
            raise ActionError(
                "cc_invalid", N_('"{address}" is not a valid e-mail address for CC.'), 422, address=value[:320]
            ) from None
    return list(dict.fromkeys(addresses))


def add_note(tx: Tx, conversation: Conversation, body: str, mentions: list[int] | None = None) -> Message:
    if not body.strip():
        raise ActionError("body_required", N_("Write something first."), 422)
    message = Message(
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        direction="note",
        kind="text",
        author_agent_id=tx.actor_agent_id,
        body=body,
        data={"mentions": mentions or []},
        status="received",
        created_at=tx.now,
    )
    tx.session.add(message)
    conversation.updated_at = tx.now
    tx.session.flush()
    tx.record(
        "message.created",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        message_id=message.id,
        data={"direction": "note", "mentions": mentions or []},
        realtime=realtime_of(conversation, direction="note", preview=body[:140], mentions=mentions or []),
    )
    return message


def reply(
    tx: Tx,
    conversation: Conversation,
    body: str | None,
    *,
    channel_account_id: int | None = None,
    attachments: list[dict[str, Any]] | None = None,
    template: dict[str, Any] | None = None,
    cc: list[str] | None = None,
    to: str | None = None,
) -> Message:
    """Queue a reply on the chosen channel (default: the one the customer used last).

    The message and its outbox job commit together; the worker sends it. `to` (e-mail only)
    picks another of the contact's addresses than the one they last wrote from.
    """
    attachments = attachments or []
    if not (body and body.strip()) and not attachments and not template:
        raise ActionError("body_required", N_("Write something first."), 422)
    if conversation.merged_into_id is not None:
        raise ActionError("conversation_merged", N_("This conversation was merged into another one."), 409)
    account_id = channel_account_id or conversation.last_channel_account_id
    if account_id is None:
        raise ActionError("no_channel", N_("Choose a channel: this contact has not written on any yet."), 422)
    account = tx.session.get(ChannelAccount, account_id)
    if account is None:
        raise ActionError("channel_not_found", N_("Channel not found."), 404)
    identity = _recipient(tx, conversation, account) if to is None else _addressed(tx, conversation, account, to)
    problem = _check(tx, conversation, account, identity, body, bool(attachments), template)
    if problem is not None:
        raise ActionError(problem[0], problem[1], 409)
    assert identity is not None
    key = uuid.uuid4().hex
    data: dict[str, Any] = {}
    if template:
        data["template"] = template
    tag = _message_tag(tx, conversation, account, identity, body, bool(attachments), template)
    if tag:
        data["tag"] = tag
    if cc:
        data["cc"] = _cc_addresses(account, cc)
    message = Message(
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        channel_account_id=account.id,
        identity_id=identity.id,
        direction="outbound",
        kind="text",
        author_agent_id=tx.actor_agent_id,
        body=body,
        data=data,
        status="queued",
        idempotency_key=key,
        created_at=tx.now,
    )
    tx.session.add(message)
    tx.session.flush()
    for attachment in attachments:
        tx.session.add(Attachment(message_id=message.id, created_at=tx.now, **attachment))
    queue_send(tx, message.id, key)
    if conversation.first_response_at is None and tx.actor_agent_id is not None:
        conversation.first_response_at = tx.now
    conversation.last_message_at = tx.now
    conversation.waiting_since = None
    conversation.message_count = Conversation.message_count + 1
    conversation.updated_at = tx.now
    switched = conversation.last_channel_account_id not in (None, account.id)
    tx.session.flush()
    tx.session.refresh(conversation, ["message_count"])
    if switched:
        tx.record(
            "conversation.channel_switched",
            conversation_id=conversation.id,
            contact_id=conversation.contact_id,
            message_id=message.id,
            data={"channel_account_id": account.id, "from": conversation.last_channel_account_id},
        )
    tx.record(
        "message.created",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        message_id=message.id,
        data={"direction": "outbound", "channel_account_id": account.id},
        realtime=realtime_of(
            conversation,
            direction="outbound",
            channel_account_id=account.id,
            channel_kind=account.kind,
            preview=(body or "")[:140],
            delivery_status="queued",
        ),
    )
    tx.wake_worker = True
    return message


def retry(tx: Tx, message: Message) -> Message:
    """Send a failed message again, as a new attempt with a new idempotency key."""
    if message.direction != "outbound" or message.status != "failed":
        raise ActionError("not_failed", N_("Only a failed message can be sent again."), 409)
    conversation = tx.session.get(Conversation, message.conversation_id)
    assert conversation is not None
    key = uuid.uuid4().hex
    tx.session.execute(
        update(Message)
        .where(Message.id == message.id)
        .values(status="queued", status_code=None, status_reason=None, idempotency_key=key)
    )
    job_id = queue_send(tx, message.id, key)
    # Parts of a multi-part send that already reached the customer do not go again.
    carry_sent_parts(tx, message.id, job_id)
    tx.session.refresh(message)
    tx.record(
        "message.retried",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        message_id=message.id,
        realtime=realtime_of(conversation, delivery_status="queued"),
    )
    tx.wake_worker = True
    return message
