"""The channel adapter protocol: what every channel module provides.

An adapter turns a provider's webhook into normalised `InboundMessage`s and
`StatusUpdate`s (after verifying the provider's signature on the raw body), and turns
an outbound message into a provider API call. Adapters never touch the database:
`hilo.ingest` stores what they parse and `hilo.outbox` calls `send`.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from hilo.contacts.identity import IdentityKind, IdentityRef

# The `InboundMessage.data` key of the sender as the provider named them, kept when it
# differs from their identity's canonical value; replies go back to it (`recipient_address`).
SENDER_ADDRESS = "sender_address"


class MessageKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    LOCATION = "location"
    CONTACTS = "contacts"
    STICKER = "sticker"
    STORY_MENTION = "story_mention"
    CALL = "call"
    UNKNOWN = "unknown"  # stored with the raw payload, never dropped


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class InboundAttachment:
    """Attachment metadata; `url` is where the worker can fetch the bytes, `data` the bytes
    themselves when the provider sent them inline (e-mail, widget upload)."""

    kind: MessageKind
    content_type: str | None = None
    filename: str | None = None
    url: str | None = None
    provider_media_id: str | None = None
    size: int | None = None
    data: bytes | None = None


@dataclass
class InboundMessage:
    """One customer message, normalised. Produced by an adapter's `parse_webhook`."""

    provider_message_id: str
    sender: IdentityRef
    # Further identities the provider vouches for in the same message (e-mail address
    # given in a widget pre-chat form, phone number of a WhatsApp sender, ...).
    other_identities: list[IdentityRef] = field(default_factory=list)
    sender_name: str | None = None
    kind: MessageKind = MessageKind.TEXT
    text: str | None = None
    # For e-mail: the HTML part (sanitised before display) and the subject.
    html: str | None = None
    subject: str | None = None
    attachments: list[InboundAttachment] = field(default_factory=list)
    sent_at: datetime | None = None
    # Provider ids of earlier messages this one quotes or replies to (WhatsApp context,
    # Telegram reply_to_message, e-mail In-Reply-To + References). Ingest threads on them.
    reply_to_provider_ids: list[str] = field(default_factory=list)
    # A conversation id the message names itself (e-mail subject token "[#123]").
    conversation_token: int | None = None
    # Edits and unsends name the message they change.
    edit_of_provider_id: str | None = None
    unsend_of_provider_id: str | None = None
    # Everything else the UI may show: location, shared contacts, cc list, headers...
    data: dict[str, Any] = field(default_factory=dict)
    raw: Any = None
    # Auto-replies and bounces are stored but never answered automatically.
    auto_generated: bool = False
    locale: str | None = None


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status callback for a message we sent."""

    provider_message_id: str
    status: DeliveryStatus
    error_code: str | None = None
    error_message: str | None = None
    # The recipient opted out or blocked us (Twilio 21610, Telegram 403).
    opted_out: bool = False
    at: datetime | None = None


@dataclass(frozen=True)
class Watermark:
    """Every message we sent to `recipient` at or before `at` reached `status`.

    Messenger delivery and read receipts name a time, not message ids."""

    recipient: IdentityRef
    status: DeliveryStatus
    at: datetime


@dataclass
class WebhookResult:
    """What one webhook delivery carried. `reply` answers handshakes (Meta hub.challenge)
    or provider-specific response bodies (TwiML)."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    # Opt-out / opt-in keywords (STOP/BAJA, START/ALTA) found in inbound text:
    # identity value -> True for opted out, False for opted back in.
    opt_changes: dict[str, bool] = field(default_factory=dict)
    # Receipts that name a time, not message ids (Messenger and Instagram): see `Watermark`.
    watermarks: list[Watermark] = field(default_factory=list)
    # Problems of the whole provider account that name no message (WhatsApp's "errors" webhook).
    account_errors: list[dict[str, Any]] = field(default_factory=list)
    reply_body: bytes | None = None
    reply_content_type: str = "application/json"

    def carries_messages_only(self) -> bool:
        """Whether this delivery holds messages and nothing else (the batch path's fast case)."""
        return not (self.statuses or self.opt_changes or self.watermarks or self.account_errors)


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of an HTTP request an adapter may read. `url` is the full public URL
    the provider called (Twilio signs it)."""

    method: str
    url: str
    headers: Mapping[str, str]  # lower-cased names
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class ChannelAccountView:
    """A configured channel account as adapters see it."""

    id: int
    kind: str
    name: str
    config: Mapping[str, Any]
    # Kept out of repr() so a logged view shows no secret.
    secrets: Mapping[str, str] = field(repr=False)


# Records one sent part: (part number, provider message id).
PartSent = Callable[[int, str], Awaitable[None]]
# Sends one part and returns its provider message id.
SendPart = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class OutboundAttachment:
    filename: str
    content_type: str
    data: bytes
    url: str | None = None  # a signed public URL the provider can fetch, when needed


@dataclass(frozen=True)
class OutboundMessage:
    """One message the worker asks an adapter to send."""

    message_id: int
    conversation_id: int
    recipient: IdentityRef
    text: str | None
    idempotency_key: str
    # The recipient as the channel named them when that differs from the identity's
    # canonical value (WhatsApp's wa_id of a Brazilian mobile without its ninth digit):
    # the `SENDER_ADDRESS` of their last message on this channel account, for adapters
    # whose `replies_to_sender_address` is true.
    recipient_address: str | None = None
    attachments: tuple[OutboundAttachment, ...] = ()
    # WhatsApp template: {"name": ..., "language": ..., "components": [...]}
    template: Mapping[str, Any] | None = None
    subject: str | None = None
    # Provider ids used for threading: the inbound message being answered (e-mail
    # In-Reply-To, Telegram reply_to) and earlier ids in the thread (References).
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    # Message tag for sends outside the Messenger 24-hour window.
    tag: str | None = None
    # Parts (the text, each attachment) that the provider took on an earlier attempt of
    # this send, by part number: adapters that send one message as several provider calls
    # skip them, so a retry after a partial failure sends only what is missing.
    sent_parts: Mapping[int, str] = field(default_factory=dict)
    # Awaited after each part the provider took, before the next call can fail.
    on_part_sent: PartSent | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: DeliveryStatus = DeliveryStatus.SENT


async def send_parts(message: OutboundMessage, parts: Sequence[SendPart]) -> SendResult:
    """Send a message that the provider takes as several messages, part by part.

    Parts an earlier attempt sent (`message.sent_parts`) are skipped. When there is more
    than one part, each accepted part is reported through `message.on_part_sent` at once,
    so a failure of a later part (or a crash) leaves a record of what already went out.
    The first part's id names the message."""
    ids: list[str] = []
    for number, send_part in enumerate(parts):
        provider_id = message.sent_parts.get(number)
        if provider_id is None:
            provider_id = await send_part()
            if message.on_part_sent is not None and len(parts) > 1:
                await message.on_part_sent(number, provider_id)
        ids.append(provider_id)
    return SendResult(provider_message_id=ids[0])


class WebhookError(Exception):
    """A webhook the adapter refuses. `code` is the stable machine-readable error code
    returned to the caller (e.g. "signature_invalid", "payload_malformed")."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class SendError(Exception):
    """A send the provider refused or could not take.

    `retryable` tells the worker to try again (after `retry_after` seconds when the
    provider said so); `opted_out` marks the recipient identity as opted out;
    `needs_template` means the free-form window is closed (WhatsApp 131047).
    `reason` is a message id from the translation catalog, shown to the agent.
    """

    def __init__(
        self,
        code: str,
        reason: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        opted_out: bool = False,
        needs_template: bool = False,
    ) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.opted_out = opted_out
        self.needs_template = needs_template


@dataclass(frozen=True)
class SendContext:
    """What channel rules may look at before a send is queued."""

    account: ChannelAccountView
    recipient: IdentityRef
    text: str | None
    has_attachments: bool
    template: Mapping[str, Any] | None
    last_inbound_at: datetime | None  # last inbound message on this channel account
    now: datetime
    recipient_opted_out: bool


@dataclass(frozen=True)
class Refusal:
    """Why a channel cannot be used for a send right now. `reason` is a catalog msgid."""

    code: str
    reason: str


@dataclass(frozen=True)
class SettingField:
    """One setting as the admin's form shows it. `label` and `help` are catalog msgids.

    A required setting must be filled in before the channel is saved; `unless` names
    another setting that, when set, makes this one optional (a Twilio sender number or a
    messaging service)."""

    key: str
    label: str
    help: str = ""
    required: bool = False
    unless: str | None = None
    placeholder: str = ""


@dataclass(frozen=True)
class ConnectionCheck:
    """What a connection test found: `ok`, a stable `code`, a catalog msgid `reason`
    formatted with `values`, and the setting to look at (`setting`) when one is to blame."""

    ok: bool
    code: str
    reason: str
    values: Mapping[str, str] = field(default_factory=dict)
    setting: str | None = None


class ChannelAdapter(Protocol):
    """What a channel module exposes as `ADAPTER`.

    Optional members, read with defaults by `hilo.channels.setup` (so an adapter without
    them still works): `label` (the kind's name, a msgid), `setting_fields` (a
    `SettingField` per setting, in form order), and `async check_connection(account)
    -> ConnectionCheck`, which calls the provider with the configured credentials.
    """

    kind: ClassVar[str]
    # Identity kind this channel reaches customers on.
    identity_kind: ClassVar[IdentityKind]
    # Config keys (non-secret) and secret keys an admin sets on the channel account.
    config_keys: ClassVar[tuple[str, ...]]
    secret_keys: ClassVar[tuple[str, ...]]

    def parse_webhook(self, account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        """Verify the provider's signature on the raw body and normalise the payload.

        Raise `WebhookError` for anything not signed correctly or not parseable."""
        ...

    def check_send(self, ctx: SendContext) -> Refusal | None:
        """Return why this send cannot go out now (24-hour window, opt-out...), or None."""
        ...

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult:
        """Call the provider. Raise `SendError` on refusal or transient failure."""
        ...
