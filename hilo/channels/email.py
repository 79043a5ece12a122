"""E-mail channel: Mailgun inbound webhook, raw MIME ingest (IMAP) and SMTP sending."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import aiosmtplib

from hilo import constant_time
from hilo.channels import json_body
from hilo.channels.base import (
    ChannelAccountView,
    ConnectionCheck,
    DeliveryStatus,
    IdentityKind,
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
from hilo.channels.email_parse import (
    EmailParts,
    Headers,
    ParsedAttachment,
    assemble,
    build_outbound_mime,
    parse_message,
    scrub,
)
from hilo.channels.forms import multipart_boundary
from hilo.channels.media import EMAIL_MEDIA_TYPES, keep_inline_media_within, media_limits
from hilo.i18n import N_

log = logging.getLogger(__name__)

# Mailgun signs timestamp + token; older deliveries are replays as far as we can tell.
SIGNATURE_MAX_AGE = 300.0
SMTP_TIMEOUT = 30.0


class TlsMode(enum.StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    SSL = "ssl"


_DEFAULT_IMAP_PORTS = {TlsMode.SSL: 993, TlsMode.STARTTLS: 143, TlsMode.NONE: 143}
_DEFAULT_SMTP_PORTS = {TlsMode.SSL: 465, TlsMode.STARTTLS: 587, TlsMode.NONE: 25}


@dataclass(frozen=True)
class EmailSettings:
    """A channel account's mailbox settings with their defaults filled in."""

    address: str
    imap_host: str | None
    imap_port: int
    imap_tls: TlsMode
    imap_username: str
    imap_password: str | None
    imap_folder: str
    smtp_host: str | None
    smtp_port: int
    smtp_tls: TlsMode
    smtp_username: str | None
    smtp_password: str | None
    poll_interval: float
    mailgun_signing_key: str | None

    @classmethod
    def from_account(cls, account: ChannelAccountView) -> EmailSettings:
        """Read the settings; raises ValueError on an unknown TLS mode or a bad port."""
        config: Mapping[str, Any] = account.config
        secrets: Mapping[str, str] = account.secrets
        address = str(config.get("address") or "").strip()
        imap_tls = TlsMode(str(config.get("imap_tls") or TlsMode.SSL).lower())
        smtp_tls = TlsMode(str(config.get("smtp_tls") or TlsMode.STARTTLS).lower())
        smtp_password = secrets.get("smtp_password") or None
        return cls(
            address=address,
            imap_host=str(config.get("imap_host") or "").strip() or None,
            imap_port=int(config.get("imap_port") or _DEFAULT_IMAP_PORTS[imap_tls]),
            imap_tls=imap_tls,
            imap_username=str(config.get("imap_username") or address),
            imap_password=secrets.get("imap_password") or None,
            imap_folder=str(config.get("imap_folder") or "INBOX"),
            smtp_host=str(config.get("smtp_host") or "").strip() or None,
            smtp_port=int(config.get("smtp_port") or _DEFAULT_SMTP_PORTS[smtp_tls]),
            smtp_tls=smtp_tls,
            # Without a password the relay is trusted by address (a local MTA): no login.
            smtp_username=(str(config.get("smtp_username") or address) if smtp_password else None),
            smtp_password=smtp_password,
            poll_interval=float(config.get("poll_interval") or 60),
            mailgun_signing_key=secrets.get("mailgun_signing_key") or None,
        )


class SmtpSendError(SendError):
    """A SendError that also keeps the mail server's own reply, for the agent and the logs."""

    def __init__(self, code: str, reason: str, *, retryable: bool, server_reply: str) -> None:
        super().__init__(code, reason, retryable=retryable)
        self.server_reply = server_reply


# --- inbound -----------------------------------------------------------------------------


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Hex HMAC-SHA256 of timestamp + token, as Mailgun signs webhooks."""
    digest = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256)
    return digest.hexdigest()


@dataclass(frozen=True)
class _FormFile:
    field: str
    filename: str
    content_type: str
    data: bytes


def _form_fields(request: WebhookRequest) -> tuple[dict[str, Any], list[_FormFile]]:
    """Mailgun posts urlencoded forms, multipart forms (with attachments) or JSON."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    body = request.body
    try:
        if media_type == "application/json" or (not media_type and body.lstrip()[:1] == b"{"):
            payload = json_body.decode(body, N_("The webhook body could not be read."), exact=True)
            if not isinstance(payload, dict):
                raise ValueError("JSON body is not an object")
            return payload, []
        if media_type == "multipart/form-data":
            return _multipart_fields(content_type, body)
        text = body.decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))), []
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise WebhookError("payload_malformed", N_("The webhook body could not be read."), 400) from exc


def _multipart_fields(content_type: str, body: bytes) -> tuple[dict[str, Any], list[_FormFile]]:
    envelope = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    try:
        form = BytesParser(policy=policy.HTTP).parsebytes(envelope + body)
    except Exception as exc:  # the MIME parser on hostile bytes
        raise ValueError("unreadable multipart body") from exc
    parts = form.get_payload()
    if not form.is_multipart() or not isinstance(parts, list):
        raise ValueError("multipart body without parts")
    fields: dict[str, Any] = {}
    files: list[_FormFile] = []
    for part in parts:
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            fields[name] = data.decode("utf-8", "replace")
        else:
            files.append(_FormFile(name, filename, part.get_content_type(), data))
    return fields, files


_SIGNATURE_FIELDS = ("timestamp", "token", "signature")
_PART_NAME = re.compile(rb'(?im)^content-disposition:[^\r\n]*\bname="?(timestamp|token|signature)"?(?=[;\s]|$)')


def _signed_fields(request: WebhookRequest) -> dict[str, Any]:
    """The fields Mailgun's signature covers, found without parsing the rest of a form body.

    The whole body is parsed only once the signature holds, so an unsigned one costs a
    scan. A JSON body (an event webhook, small) is decoded whole: its signature is nested.
    """
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    body = request.body
    if media_type == "application/json" or (not media_type and body.lstrip()[:1] == b"{"):
        return _form_fields(request)[0]
    if media_type == "multipart/form-data":
        boundary = multipart_boundary(content_type)
        return _signed_parts(body, b"--" + boundary) if boundary else {}
    fields: dict[str, Any] = {}
    prefixes = tuple(f"{name}=".encode() for name in _SIGNATURE_FIELDS)
    start = 0
    while start <= len(body):
        end = body.find(b"&", start)
        end = len(body) if end == -1 else end
        if body.startswith(prefixes, start, end):
            fields.update(parse_qsl(body[start:end].decode("utf-8", "replace"), keep_blank_values=True))
        start = end + 1
    return fields


def _signed_parts(body: bytes, delimiter: bytes) -> dict[str, Any]:
    """The signature's fields among a multipart body's parts.

    Walked by offsets, never split: a body of many megabytes is not copied, and the walk
    lets other threads (the event loop) run between parts.
    """
    fields: dict[str, Any] = {}
    position = body.find(delimiter)
    while position != -1:
        start = position + len(delimiter)
        position = body.find(delimiter, start)
        end = len(body) if position == -1 else position
        head_end = body.find(b"\r\n\r\n", start, end)
        found = _PART_NAME.search(body, start, head_end) if head_end != -1 else None
        if found:
            value = body[head_end + 4 : end].removesuffix(b"\r\n")
            fields[found.group(1).decode()] = value.decode("utf-8", "replace")
    return fields


def _signature_parts(payload: Mapping[str, Any]) -> tuple[str, str, str]:
    signed: Mapping[str, Any] = payload
    if isinstance(payload.get("signature"), dict):
        signed = payload["signature"]  # event webhooks nest the three values
    values = tuple(signed.get(key) for key in _SIGNATURE_FIELDS)
    if not all(isinstance(value, str | int) and str(value) for value in values):
        raise WebhookError("signature_missing", N_("The webhook is not signed; it was refused."), 401)
    timestamp, token, signature = (str(value) for value in values)
    return timestamp, token, signature


def _message_from_forward(fields: Mapping[str, Any], files: list[_FormFile], body: bytes) -> EmailParts:
    """Map Mailgun's parsed forward() fields onto the common e-mail parts."""
    try:
        header_list = json.loads(str(fields.get("message-headers") or "[]"))
    except (ValueError, RecursionError):
        header_list = []
    if not isinstance(header_list, list):
        header_list = []
    pairs = [(str(item[0]), str(item[1])) for item in header_list if isinstance(item, list) and len(item) == 2]
    # Top-level copies fill in what the header list lacks.
    present = {name.lower() for name, _ in pairs}
    for name in ("From", "To", "Cc", "Subject", "Date", "Message-Id", "In-Reply-To", "References"):
        value = fields.get(name) or fields.get(name.lower())
        if isinstance(value, str) and value and name.lower() not in present:
            pairs.append((name, value))
    try:
        content_ids = json.loads(str(fields.get("content-id-map") or "{}"))
    except (ValueError, RecursionError):
        content_ids = {}
    inline_fields = (
        {str(v): str(k).strip("<>") for k, v in content_ids.items()} if isinstance(content_ids, dict) else {}
    )
    attachments = [
        ParsedAttachment(
            data=f.data,
            content_type=f.content_type,
            filename=scrub(f.filename),
            inline=f.field in inline_fields,
            content_id=inline_fields.get(f.field),
        )
        for f in files
    ]

    def text_field(name: str) -> str | None:
        value = fields.get(name)
        return scrub(value) if isinstance(value, str) else None

    sender = text_field("sender")
    safe_fields = {k: v for k, v in fields.items() if isinstance(v, str) and k != "signature"}
    return EmailParts(
        headers=Headers(pairs),
        text=text_field("body-plain"),
        html=text_field("body-html"),
        attachments=attachments,
        id_source=body,
        # The envelope sender is an address alone: read when the From header holds none.
        fallback_sender=sender or text_field("from"),
        stripped_text=text_field("stripped-text"),
        signature=text_field("stripped-signature"),
        extra={"recipient": text_field("recipient"), "envelope_sender": sender},
        raw=safe_fields,
    )


_MAILGUN_EVENTS = {"delivered": DeliveryStatus.DELIVERED, "opened": DeliveryStatus.READ}


def _event_status(event: Mapping[str, Any]) -> StatusUpdate | None:
    """A Mailgun event webhook (delivered / permanent failure / opened) as a StatusUpdate."""
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = headers.get("message-id") if isinstance(headers, dict) else None
    if not isinstance(message_id, str) or not message_id:
        return None
    provider_id = message_id if message_id.startswith("<") else f"<{message_id}>"
    at = None
    if isinstance(event.get("timestamp"), int | float):
        at = datetime.fromtimestamp(float(event["timestamp"]), UTC)
    name = event.get("event")
    if name == "failed":
        if event.get("severity") != "permanent":
            return None  # Mailgun keeps retrying temporary failures itself
        status = event.get("delivery-status")
        status = status if isinstance(status, dict) else {}
        return StatusUpdate(
            provider_message_id=provider_id,
            status=DeliveryStatus.FAILED,
            error_code=str(status.get("code") or "") or None,
            error_message=str(status.get("description") or status.get("message") or "") or None,
            at=at,
        )
    if name in _MAILGUN_EVENTS:
        return StatusUpdate(provider_id, _MAILGUN_EVENTS[str(name)], at=at)
    return None


def result_from_mime(raw: bytes, *, fallback_sender: str | None = None) -> WebhookResult:
    """Parse one raw message (IMAP fetch, Mailgun body-mime) into a WebhookResult.

    A delivery status notification for a message we sent also yields a FAILED status
    for that message when the failure is permanent.
    """
    message = parse_message(raw, fallback_sender=fallback_sender)
    result = WebhookResult(messages=[message])
    bounce = message.data.get("bounce")
    if isinstance(bounce, dict) and bounce.get("permanent") and bounce.get("original_message_id"):
        result.statuses.append(
            StatusUpdate(
                provider_message_id=str(bounce["original_message_id"]),
                status=DeliveryStatus.FAILED,
                error_code=str(bounce.get("status") or "") or None,
                error_message=str(bounce.get("diagnostic") or "") or None,
                at=message.sent_at,
            )
        )
    return result


def _within_media_limits(account: ChannelAccountView, result: WebhookResult) -> WebhookResult:
    """Store a mail whatever its attachments; the files over the channel's limits are left out."""
    if result.messages:
        limits = media_limits(account.config, EMAIL_MEDIA_TYPES)
        for message in result.messages:
            keep_inline_media_within(message, limits)
    return result


# --- outbound ----------------------------------------------------------------------------

_REFUSAL_REASONS = {
    "5.1.1": N_("The recipient's mail server says this address does not exist; check the contact's e-mail address."),
    "5.1.10": N_("The recipient's mail server says this address does not exist; check the contact's e-mail address."),
    "5.2.2": N_("The recipient's mailbox is full; try again later or use another channel."),
    "5.7.1": N_("The mail server refused the message by policy (spam or permissions)."),
}


def _response_error(code: int, text: str) -> SendError:
    reply = f"{code} {text}".strip()
    if 400 <= code < 500:
        return SmtpSendError(
            f"smtp_{code}",
            N_("The mail server is temporarily refusing mail."),
            retryable=True,
            server_reply=reply,
        )
    enhanced = text.split(" ", 1)[0] if text[:2] in ("5.", "4.") else ""
    reason = _REFUSAL_REASONS.get(enhanced)
    if reason is None and code in (550, 551, 553) and "user" in text.lower():
        reason = _REFUSAL_REASONS["5.1.1"]
    if reason is None and code == 552:
        reason = _REFUSAL_REASONS["5.2.2"]
    return SmtpSendError(
        f"smtp_{code}",
        reason or N_("The mail server refused the message; try another channel or ask your mail administrator."),
        retryable=False,
        server_reply=reply,
    )


def smtp_error(exc: Exception) -> SendError:
    """Map an aiosmtplib or socket error to a SendError: 4xx and network retry, 5xx not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return _response_error(first.code, first.message)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError) and exc.code >= 500:
        return SmtpSendError(
            "smtp_auth_failed",
            N_("The mail server did not accept the SMTP username or password; update them in the channel settings."),
            retryable=False,
            server_reply=f"{exc.code} {exc.message}",
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _response_error(exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return SendError(
            "smtp_not_supported",
            N_("The mail server does not support the security or sign-in method configured."),
            retryable=False,
        )
    cause = exc.__cause__ or exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        return SendError(
            "smtp_tls_failed",
            N_("The mail server's TLS certificate could not be verified; check the SMTP host and security setting."),
            retryable=False,
        )
    return SendError(
        "smtp_unreachable",
        N_("The mail server could not be reached."),
        retryable=True,
    )


class EmailAdapter:
    """The e-mail channel: inbound by Mailgun forward() webhook or IMAP, outbound by SMTP."""

    kind: ClassVar[str] = "email"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.EMAIL
    config_keys: ClassVar[tuple[str, ...]] = (
        "address",
        "imap_host",
        "imap_port",
        "imap_tls",
        "imap_username",
        "imap_folder",
        "smtp_host",
        "smtp_port",
        "smtp_tls",
        "smtp_username",
        "poll_interval",
    )
    secret_keys: ClassVar[tuple[str, ...]] = (
        "imap_password",
        "smtp_password",
        "mailgun_signing_key",
    )
    label: ClassVar[str] = N_("E-mail")
    setting_fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField(
            "address",
            N_("Address"),
            N_("The address customers write to; replies go out from it."),
            required=True,
            placeholder="support@example.com",
        ),
        SettingField(
            "smtp_host", N_("Outgoing server (SMTP)"), N_("Needed to send replies."), placeholder="smtp.example.com"
        ),
        SettingField(
            "smtp_port", N_("SMTP port"), N_("Empty: 587 with STARTTLS, 465 with SSL, 25 without."), placeholder="587"
        ),
        SettingField("smtp_tls", N_("SMTP security"), N_("starttls (default), ssl or none."), placeholder="starttls"),
        SettingField("smtp_username", N_("SMTP username"), N_("Empty: the address.")),
        SettingField(
            "smtp_password", N_("SMTP password"), N_("Empty: the server accepts this host without signing in.")
        ),
        SettingField(
            "imap_host",
            N_("Incoming server (IMAP)"),
            N_("Hilo reads new mail from this mailbox. Or use Mailgun below."),
            placeholder="imap.example.com",
        ),
        SettingField("imap_port", N_("IMAP port"), N_("Empty: 993 with SSL, 143 otherwise."), placeholder="993"),
        SettingField("imap_tls", N_("IMAP security"), N_("ssl (default), starttls or none."), placeholder="ssl"),
        SettingField("imap_username", N_("IMAP username"), N_("Empty: the address.")),
        SettingField("imap_password", N_("IMAP password")),
        SettingField("imap_folder", N_("IMAP folder"), N_("Empty: INBOX."), placeholder="INBOX"),
        SettingField("poll_interval", N_("Check for mail every (seconds)"), N_("Empty: 60."), placeholder="60"),
        SettingField(
            "mailgun_signing_key",
            N_("Mailgun webhook signing key"),
            N_("For mail forwarded by a Mailgun route to the webhook URL instead of IMAP."),
        ),
    )

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._clock = clock
        self._tls_context = tls_context

    def parse_webhook(self, account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        """Verify and parse a Mailgun Routes forward() delivery (or a signed event webhook)."""
        return _within_media_limits(account, self._parse_mailgun(account, request))

    def _parse_mailgun(self, account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        timestamp, token, signature = _signature_parts(_signed_fields(request))
        signing_key = account.secrets.get("mailgun_signing_key")
        if not signing_key:
            raise WebhookError(
                "signing_key_missing",
                N_("This e-mail channel has no Mailgun signing key; add it in its settings."),
                401,
            )
        expected = mailgun_signature(signing_key, timestamp, token)
        if not constant_time.equal(expected, signature.strip().lower()):
            raise WebhookError("signature_invalid", N_("The webhook signature is invalid; it was refused."), 401)
        try:
            age = abs(self._clock() - float(timestamp))
        except ValueError as exc:
            raise WebhookError(
                "signature_invalid", N_("The webhook signature is invalid; it was refused."), 401
            ) from exc
        if age > SIGNATURE_MAX_AGE:
            raise WebhookError(
                "timestamp_stale",
                N_("The webhook is too old and was refused; check the server clock."),
                401,
            )
        fields, files = _form_fields(request)
        event = fields.get("event-data")
        if isinstance(event, dict):
            status = _event_status(event)
            return WebhookResult(statuses=[status] if status else [])
        fallback_sender = fields.get("sender") or fields.get("from")
        body_mime = fields.get("body-mime")
        if isinstance(body_mime, str) and body_mime:
            return result_from_mime(
                body_mime.encode("utf-8", "surrogateescape"),
                fallback_sender=fallback_sender if isinstance(fallback_sender, str) else None,
            )
        try:
            message = assemble(_message_from_forward(fields, files, request.body))
        except WebhookError:
            raise
        except Exception as exc:  # odd field values must not crash the webhook endpoint
            log.warning("unreadable mailgun forward", exc_info=True)
            raise WebhookError("payload_malformed", N_("The webhook body could not be read."), 400) from exc
        return WebhookResult(messages=[message])

    def parse_raw(self, account: ChannelAccountView, raw: bytes) -> WebhookResult:
        """Parse a raw message fetched by `ImapPoller` (no signature: we fetched it)."""
        return _within_media_limits(account, result_from_mime(raw))

    def check_send(self, ctx: SendContext) -> Refusal | None:
        if not str(ctx.account.config.get("smtp_host") or "").strip():
            return Refusal(
                "smtp_not_configured",
                N_("This e-mail channel has no outgoing mail server (SMTP) configured."),
            )
        return None

    async def check_connection(self, account: ChannelAccountView) -> ConnectionCheck:
        """Connect to the outgoing mail server and sign in, as a send would, without sending."""
        try:
            settings = EmailSettings.from_account(account)
        except (ValueError, KeyError):
            return ConnectionCheck(
                False,
                "channel_misconfigured",
                N_("The e-mail channel settings are invalid; check the mail server settings."),
                setting="smtp_tls",
            )
        if not settings.smtp_host:
            return ConnectionCheck(
                False,
                "smtp_not_configured",
                N_("This e-mail channel has no outgoing mail server (SMTP) configured."),
                setting="smtp_host",
            )
        values = {"host": f"{settings.smtp_host}:{settings.smtp_port}"}
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_tls is TlsMode.SSL,
            start_tls=settings.smtp_tls is TlsMode.STARTTLS,
            tls_context=self._tls_context,
            timeout=10,
        )
        try:
            await client.connect()
            if settings.smtp_username and settings.smtp_password:
                await client.login(settings.smtp_username, settings.smtp_password)
            await client.quit()
        except (aiosmtplib.SMTPException, OSError) as exc:
            error = smtp_error(exc)
            log.info("smtp connection test of channel %s failed: %s", account.id, exc)
            if error.code == "smtp_unreachable":
                return ConnectionCheck(
                    False,
                    "smtp_unreachable",
                    N_("Hilo could not connect to the mail server {host}. Check the SMTP host, port and security."),
                    values,
                    "smtp_host",
                )
            setting = "smtp_password" if error.code == "smtp_auth_failed" else "smtp_host"
            return ConnectionCheck(False, error.code, error.reason, setting=setting)
        return ConnectionCheck(True, "connected", N_("Connected to the mail server {host}."), values)

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult:
        """Send by SMTP; the provider id is the Message-ID we generated."""
        try:
            settings = EmailSettings.from_account(account)
        except (ValueError, KeyError) as exc:
            raise SendError(
                "channel_misconfigured",
                N_("The e-mail channel settings are invalid; check the mail server settings."),
                retryable=False,
            ) from exc
        if not settings.smtp_host:
            raise SendError(
                "smtp_not_configured",
                N_("This e-mail channel has no outgoing mail server (SMTP) configured."),
                retryable=False,
            )
        if message.recipient.kind != IdentityKind.EMAIL:
            raise SendError(
                "recipient_not_email",
                N_("This contact has no e-mail address to send to."),
                retryable=False,
            )
        mime = build_outbound_mime(
            message_id=message.message_id,
            conversation_id=message.conversation_id,
            from_address=settings.address,
            from_name=account.name or None,
            to=message.recipient.value,
            cc=message.cc,
            subject=message.subject or account.name,
            text=message.text,
            attachments=message.attachments,
            in_reply_to=message.in_reply_to,
            references=message.references,
        )
        try:
            await aiosmtplib.send(
                mime,
                sender=settings.address,
                recipients=[message.recipient.value, *message.cc],
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                use_tls=settings.smtp_tls is TlsMode.SSL,
                start_tls=settings.smtp_tls is TlsMode.STARTTLS,
                tls_context=self._tls_context,
                timeout=SMTP_TIMEOUT,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            error = smtp_error(exc)
            log.info("smtp send of message %s failed: %s", message.message_id, exc)
            raise error from exc
        return SendResult(provider_message_id=str(mime["Message-ID"]))


ADAPTER = EmailAdapter()
