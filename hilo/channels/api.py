"""The generic API channel: any custom source posts signed messages, replies go to its URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hilo import outbound
from hilo.channels import json_body, signing
from hilo.channels.base import (
    ChannelAccountView,
    DeliveryStatus,
    IdentityKind,
    IdentityRef,
    InboundAttachment,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    Refusal,
    SendContext,
    SendError,
    SendResult,
    SettingField,
    StatusUpdate,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from hilo.i18n import N_


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: str = Field(min_length=1, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    locale: str | None = Field(default=None, max_length=16)


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2048)
    content_type: str | None = Field(default=None, max_length=255)
    filename: str | None = Field(default=None, max_length=255)
    size: int | None = Field(default=None, ge=0)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["message"] = "message"
    id: str = Field(min_length=1, max_length=255)
    contact: ContactIn
    text: str | None = Field(default=None, max_length=65536)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)
    reply_to: str | None = Field(default=None, max_length=255)
    sent_at: datetime | None = None


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["status"]
    message_id: str = Field(min_length=1, max_length=255)
    status: Literal["sent", "delivered", "read", "failed"]
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=1000)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[MessageIn | StatusIn] = Field(min_length=1, max_length=100)


def _kind(content_type: str | None) -> MessageKind:
    major = (content_type or "").split("/")[0]
    return {"image": MessageKind.IMAGE, "audio": MessageKind.AUDIO, "video": MessageKind.VIDEO}.get(
        major, MessageKind.DOCUMENT
    )


class ApiChannel:
    kind: ClassVar[str] = "api"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.API
    config_keys: ClassVar[tuple[str, ...]] = ("outbound_url",)
    secret_keys: ClassVar[tuple[str, ...]] = ("secret",)
    label: ClassVar[str] = N_("API (your own system)")
    setting_fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField(
            "outbound_url",
            N_("Outbound URL"),
            N_("Where Hilo POSTs agents' replies, signed with the channel's secret. Empty: replies are not sent out."),
            placeholder="https://shop.example.com/hilo",
        ),
        SettingField(
            "secret",
            N_("Signing secret"),
            N_("Empty: Hilo generates one and shows it once. Your system signs its webhooks with it."),
        ),
    )
    # A reply is one JSON document: its files travel as signed, expiring Hilo links.
    media_by_link: ClassVar[bool] = True

    @staticmethod
    def external_identity(account_id: int, external_id: str) -> str:
        # External ids are the source's own: scoped to the channel account.
        return f"{account_id}:{external_id}"

    def parse_webhook(self, account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        if request.method != "POST":
            raise WebhookError("method_not_allowed", N_("Only POST is accepted here."), 405)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise WebhookError("content_type_unsupported", N_("Send the body as application/json."), 415)
        secret = account.secrets.get("secret")
        if not secret:
            raise WebhookError("channel_not_configured", N_("This channel has no signing secret yet."), 409)
        signing.verify(secret, request.body, request.headers.get(signing.HEADER))
        document = json_body.decode(request.body, N_("The body is not valid JSON."))
        try:
            if isinstance(document, dict) and "events" in document:
                events = BatchIn.model_validate(document).events
            elif isinstance(document, dict) and document.get("type") == "status":
                events = [StatusIn.model_validate(document)]
            else:
                events = [MessageIn.model_validate(document)]
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise WebhookError("payload_invalid", f"{where}: {first['msg']}", 422) from exc
        result = WebhookResult()
        for event in events:
            if isinstance(event, StatusIn):
                result.statuses.append(
                    StatusUpdate(
                        provider_message_id=event.message_id,
                        status=DeliveryStatus(event.status),
                        error_code=event.error_code,
                        error_message=event.error_message,
                    )
                )
            else:
                result.messages.append(self._message(account, event, document))
        return result

    def _message(self, account: ChannelAccountView, event: MessageIn, raw: Any) -> InboundMessage:
        contact = event.contact
        others = []
        if contact.email:
            others.append(IdentityRef(IdentityKind.EMAIL, contact.email))
        if contact.phone:
            others.append(IdentityRef(IdentityKind.PHONE, contact.phone))
        attachments = [
            InboundAttachment(
                kind=_kind(a.content_type), content_type=a.content_type, filename=a.filename, url=a.url, size=a.size
            )
            for a in event.attachments
        ]
        kind = MessageKind.TEXT if event.text or not attachments else attachments[0].kind
        return InboundMessage(
            provider_message_id=event.id,
            sender=IdentityRef(IdentityKind.API, self.external_identity(account.id, contact.external_id)),
            other_identities=others,
            sender_name=contact.name,
            kind=kind,
            text=event.text,
            attachments=attachments,
            sent_at=event.sent_at,
            reply_to_provider_ids=[event.reply_to] if event.reply_to else [],
            locale=contact.locale,
        )

    def check_send(self, ctx: SendContext) -> Refusal | None:
        if not ctx.account.config.get("outbound_url"):
            return Refusal("channel_not_configured", N_("This channel has no outbound URL configured."))
        return None

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult:
        url = str(account.config.get("outbound_url") or "")
        secret = account.secrets.get("secret", "")
        external_id = message.recipient.value.split(":", 1)[-1]
        body = orjson.dumps(
            {
                "id": message.idempotency_key,
                "message_id": message.message_id,
                "conversation_id": message.conversation_id,
                "to": {"external_id": external_id},
                "text": message.text,
                "reply_to": message.in_reply_to,
                "attachments": [
                    {"filename": a.filename, "content_type": a.content_type, "url": a.url} for a in message.attachments
                ],
            }
        )
        headers = {
            "content-type": "application/json",
            "idempotency-key": message.idempotency_key,
            "x-hilo-signature": signing.sign(secret, body),
        }
        try:
            async with httpx.AsyncClient(timeout=15, transport=outbound.AsyncTransport()) as client:
                response = await client.post(url, content=body, headers=headers)
        except outbound.AddressRefused as exc:
            raise SendError(outbound.CODE_REFUSED, outbound.REASON_REFUSED, retryable=False) from exc
        except httpx.HTTPError as exc:
            raise SendError("network_error", N_("The receiving server could not be reached."), retryable=True) from exc
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = response.headers.get("retry-after")
            raise SendError(
                f"http_{response.status_code}",
                N_("The receiving server is busy."),
                retryable=True,
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if response.status_code >= 400:
            raise SendError(
                f"http_{response.status_code}", N_("The receiving server refused the message."), retryable=False
            )
        provider_id = message.idempotency_key
        try:
            answer = response.json()
            if isinstance(answer, dict) and answer.get("id"):
                provider_id = str(answer["id"])
        except ValueError:
            pass
        return SendResult(provider_message_id=provider_id)


ADAPTER = ApiChannel()
