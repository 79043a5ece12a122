"""Twilio Programmable Messaging pieces shared by the SMS and WhatsApp-via-Twilio adapters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mimetypes
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from hilo import constant_time
from hilo.channels.base import (
    ChannelAccountView,
    ConnectionCheck,
    DeliveryStatus,
    IdentityKind,
    IdentityRef,
    InboundAttachment,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    SendError,
    SendResult,
    SettingField,
    StatusUpdate,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from hilo.channels.setup import CheckFailed, json_object, probe, provider_error
from hilo.i18n import N_

DEFAULT_API_BASE_URL = "https://api.twilio.com"
SIGNATURE_HEADER = "x-twilio-signature"
# Twilio only needs a 2xx; an empty <Response/> tells it not to answer the customer itself.
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWIML_CONTENT_TYPE = "text/xml"
SEND_TIMEOUT = httpx.Timeout(15.0, connect=5.0)

OPTED_OUT_CODE = 21610
RATE_LIMIT_CODE = 20429
WINDOW_CLOSED_CODE = 63016

REASON_MALFORMED = N_("The request body is not a Twilio webhook.")
REASON_OPTED_OUT = N_(
    "The customer has unsubscribed by replying STOP. They must reply START before you can text them again."
)
REASON_RATE_LIMITED = N_("Twilio is rate limiting this account.")
REASON_INVALID_NUMBER = N_("The customer's phone number is not valid.")
REASON_NOT_MOBILE = N_("The customer's number cannot receive text messages (it may be a landline).")
REASON_UNREACHABLE_NOW = N_("The customer's number cannot be reached by text message right now.")
REASON_SENDER_NOT_ALLOWED = N_(
    "This Twilio number cannot send to that destination. An administrator must check "
    "the sender number and the allowed countries in the Twilio console."
)
REASON_BODY_TOO_LONG = N_("The message is longer than Twilio accepts (1600 characters). Shorten it.")
REASON_AUTH_FAILED = N_(
    "Twilio rejected the account credentials. An administrator must check the Account SID and Auth Token."
)
REASON_WINDOW_CLOSED = N_(
    "More than 24 hours have passed since the customer's last WhatsApp message. Send an approved template instead."
)
REASON_PROVIDER_DOWN = N_("Twilio is temporarily unavailable.")
REASON_NETWORK = N_("Could not reach Twilio.")
REASON_REFUSED = N_("Twilio refused the message. The error code tells an administrator what went wrong.")
REASON_NOT_CONFIGURED = N_(
    "This channel is not fully configured. An administrator must set the Account SID, "
    "the Auth Token and a sender number or Messaging Service."
)
REASON_MEDIA_URL_MISSING = N_(
    "Twilio can only send attachments it can download from a public link, and this attachment has none."
)
REASON_UNREADABLE = N_(
    "Twilio accepted the request but its answer could not be read. "
    "Check the message log in the Twilio console before sending again."
)
REASON_UNDELIVERED = N_("Twilio could not deliver the message.")

# Send API error code -> (SendError code, reason, opted_out, needs_template).
_SEND_ERRORS: dict[int, tuple[str, str, bool, bool]] = {
    OPTED_OUT_CODE: ("opted_out", REASON_OPTED_OUT, True, False),
    21211: ("invalid_number", REASON_INVALID_NUMBER, False, False),
    21614: ("not_mobile_number", REASON_NOT_MOBILE, False, False),
    21612: ("number_unreachable", REASON_UNREACHABLE_NOW, False, False),
    21606: ("sender_not_allowed", REASON_SENDER_NOT_ALLOWED, False, False),
    21408: ("sender_not_allowed", REASON_SENDER_NOT_ALLOWED, False, False),
    21617: ("body_too_long", REASON_BODY_TOO_LONG, False, False),
    20003: ("auth_failed", REASON_AUTH_FAILED, False, False),
    WINDOW_CLOSED_CODE: ("whatsapp_window_closed", REASON_WINDOW_CLOSED, False, True),
}

# Status callback ErrorCode -> readable reason for the agent's timeline.
STATUS_ERROR_REASONS: dict[str, str] = {
    str(OPTED_OUT_CODE): REASON_OPTED_OUT,
    "30003": N_("The customer's phone is switched off or out of coverage."),
    "30005": N_("The customer's number does not exist or is no longer in service."),
    "30006": N_("The customer's number is a landline or its carrier cannot receive text messages."),
    "30007": N_("The carrier filtered the message as spam."),
    "30008": N_("The carrier could not deliver the message for an unknown reason."),
    str(WINDOW_CLOSED_CODE): REASON_WINDOW_CLOSED,
}

_STATUSES: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
# MessageStatus values that describe an incoming message rather than one we sent.
_INBOUND_STATUSES = frozenset({"received", "receiving"})


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Return Twilio's X-Twilio-Signature for `url` and the POST `params`.

    Twilio appends every parameter name and value to the URL, names sorted, the values
    of a repeated name sorted and de-duplicated (as twilio-python's RequestValidator does).
    """
    values_by_name: dict[str, set[str]] = {}
    for name, value in params:
        values_by_name.setdefault(name, set()).add(value)
    data = url
    for name in sorted(values_by_name):
        for value in sorted(values_by_name[name]):
            data += name + value
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _is_url(url: str) -> bool:
    """False for what a forged X-Forwarded-Host makes of a URL (a port that is no number, a stray "[")."""
    try:
        urlsplit(url).port  # noqa: B018 - reading the port is the check
    except ValueError:
        return False
    return True


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc[: parts.netloc.rfind(":")]))


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is not None:
        return url
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def candidate_urls(url: str, headers: Mapping[str, str]) -> list[str]:
    """List the URLs Twilio may have signed for a request that reached us at `url`.

    Behind a TLS-terminating proxy the app sees http:// and an inner host, so the
    X-Forwarded-Proto/Host values are tried too; and Twilio's signing has not always
    agreed on whether the default port is part of the URL, so both forms are tried.
    """
    urls = [url]
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip()
    host = headers.get("x-forwarded-host", "").split(",")[0].strip()
    if proto or host:
        parts = urlsplit(url)
        forwarded = urlunsplit(parts._replace(scheme=proto or parts.scheme, netloc=host or parts.netloc))
        if _is_url(forwarded):
            urls.append(forwarded)
    candidates: list[str] = []
    for base in urls:
        for variant in (base, _without_port(base), _with_port(base)):
            if variant not in candidates:
                candidates.append(variant)
    return candidates


def is_valid_signature(
    auth_token: str,
    url: str,
    params: Sequence[tuple[str, str]],
    signature: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> bool:
    """Check an X-Twilio-Signature against every URL form Twilio may have signed.

    A JSON-bodied webhook carries `bodySHA256` in the URL query: then only the URL is
    signed and the body must hash to that value.
    """
    body_hashes = parse_qs(urlsplit(url).query).get("bodySHA256")
    if body_hashes:
        if not constant_time.equal(hashlib.sha256(body).hexdigest(), body_hashes[0]):
            return False
        params = ()
    return any(
        constant_time.equal(compute_signature(auth_token, candidate, params), signature)
        for candidate in candidate_urls(url, headers or {})
    )


def decode_form(body: bytes) -> list[tuple[str, str]]:
    """Decode an application/x-www-form-urlencoded body, keeping empty and repeated fields."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookError("payload_malformed", REASON_MALFORMED, 400) from exc
    return parse_qsl(text, keep_blank_values=True)


def verified_params(account: ChannelAccountView, request: WebhookRequest) -> dict[str, str]:
    """Verify the request's X-Twilio-Signature and return its parameters."""
    auth_token = account.secrets.get("auth_token", "")
    if not auth_token:
        raise WebhookError("channel_not_configured", N_("This channel has no Twilio Auth Token configured."), 503)
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise WebhookError("signature_missing", N_("The request has no X-Twilio-Signature header."), 401)
    # A webhook configured as GET carries its parameters in the signed URL itself.
    pairs = decode_form(request.body) if request.method.upper() == "POST" else []
    if not is_valid_signature(auth_token, request.url, pairs, signature, body=request.body, headers=request.headers):
        raise WebhookError(
            "signature_invalid",
            N_("The X-Twilio-Signature header does not match this channel's Auth Token."),
            401,
        )
    return dict(pairs) if request.method.upper() == "POST" else dict(request.query)


def phone_identity_value(address: str, prefix: str = "") -> str:
    """Strip a channel prefix ("whatsapp:") and add the "+" missing from digits-only numbers."""
    value = address.strip()
    if prefix and value.startswith(prefix):
        value = value[len(prefix) :]
    return f"+{value}" if value.isdigit() else value


def _attachment_kind(content_type: str | None, url: str) -> MessageKind:
    guessed = content_type or mimetypes.guess_type(urlsplit(url).path)[0] or ""
    major = guessed.split("/")[0]
    if major == "image":
        return MessageKind.IMAGE
    if major == "audio":
        return MessageKind.AUDIO
    if major == "video":
        return MessageKind.VIDEO
    return MessageKind.DOCUMENT


def media_attachments(params: Mapping[str, str]) -> list[InboundAttachment]:
    """Return the MediaUrlN / MediaContentTypeN attachments of an incoming message."""
    try:
        count = int(params.get("NumMedia") or 0)
    except ValueError:
        count = 0
    attachments = []
    for index in range(count):
        url = params.get(f"MediaUrl{index}")
        if not url:
            continue
        content_type = params.get(f"MediaContentType{index}") or None
        attachments.append(
            InboundAttachment(
                kind=_attachment_kind(content_type, url),
                content_type=content_type,
                url=url,
                # The media sid is the last path segment of Twilio's media URL.
                provider_media_id=url.rstrip("/").rsplit("/", 1)[-1],
            )
        )
    return attachments


def parse_status_callback(params: Mapping[str, str]) -> StatusUpdate | None:
    """Turn a status callback into a StatusUpdate (None for states we do not track)."""
    status = _STATUSES.get(params.get("MessageStatus", "").lower())
    message_sid = params.get("MessageSid") or params.get("SmsSid")
    if status is None or not message_sid:
        return None
    error_code = params.get("ErrorCode") or None
    if error_code == "0":
        error_code = None
    error_message = None
    if status is DeliveryStatus.FAILED:
        error_message = STATUS_ERROR_REASONS.get(error_code or "", REASON_UNDELIVERED)
    return StatusUpdate(
        provider_message_id=message_sid,
        status=status,
        error_code=error_code,
        error_message=error_message,
        opted_out=error_code == str(OPTED_OUT_CODE),
    )


def is_status_callback(params: Mapping[str, str]) -> bool:
    status = params.get("MessageStatus", "").lower()
    return bool(status) and status not in _INBOUND_STATUSES


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def send_error_from_response(response: httpx.Response) -> SendError:
    """Map a non-2xx Twilio REST response to a SendError."""
    code: int | None = None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("code"), int):
        code = payload["code"]
    if response.status_code == 429 or code == RATE_LIMIT_CODE:
        return SendError(
            "rate_limited",
            REASON_RATE_LIMITED,
            retryable=True,
            retry_after=_retry_after_seconds(response.headers.get("retry-after")),
        )
    if code in _SEND_ERRORS:
        error_code, reason, opted_out, needs_template = _SEND_ERRORS[code]
        return SendError(
            error_code,
            reason,
            retryable=False,
            opted_out=opted_out,
            needs_template=needs_template,
        )
    if response.status_code == 401:
        return SendError("auth_failed", REASON_AUTH_FAILED, retryable=False)
    if response.status_code >= 500:
        return SendError(
            "provider_unavailable",
            REASON_PROVIDER_DOWN,
            retryable=True,
            retry_after=_retry_after_seconds(response.headers.get("retry-after")),
        )
    return SendError(
        f"twilio_{code}" if code is not None else f"http_{response.status_code}",
        REASON_REFUSED,
        retryable=False,
    )


def basic_auth(account: ChannelAccountView) -> tuple[str, str]:
    """Return the (Account SID, Auth Token) pair for Twilio's HTTP Basic auth.

    The same pair fetches inbound media when the account has media authentication on.
    """
    account_sid = str(account.config.get("account_sid") or "")
    auth_token = account.secrets.get("auth_token", "")
    if not account_sid or not auth_token:
        raise SendError("channel_not_configured", REASON_NOT_CONFIGURED, retryable=False)
    return account_sid, auth_token


class TwilioMessagingAdapter:
    """Webhook parsing and sending over Twilio's Messages API, for one address scheme.

    SMS numbers are plain E.164; WhatsApp numbers carry a "whatsapp:" prefix.
    """

    kind: ClassVar[str]
    identity_kind: ClassVar[IdentityKind] = IdentityKind.PHONE
    config_keys: ClassVar[tuple[str, ...]] = (
        "account_sid",
        "from_number",
        "messaging_service_sid",
        "api_base_url",
        "status_callback_url",
    )
    secret_keys: ClassVar[tuple[str, ...]] = ("auth_token",)
    address_prefix: ClassVar[str] = ""
    setting_fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField(
            "account_sid",
            N_("Account SID"),
            N_("Twilio Console > Account info: starts with AC."),
            required=True,
            placeholder="AC...",
        ),
        SettingField(
            "auth_token",
            N_("Auth token"),
            N_(
                "Twilio Console > Account info, next to the Account SID. Hilo checks every webhook's signature with it."
            ),
            required=True,
        ),
        SettingField(
            "from_number",
            N_("Sender number"),
            N_("The Twilio number replies come from, in international format (+14155550100)."),
            required=True,
            unless="messaging_service_sid",
            placeholder="+14155550100",
        ),
        SettingField(
            "messaging_service_sid",
            N_("Messaging service SID"),
            N_("Instead of a sender number: a Messaging Service (starts with MG) that picks the sender."),
            placeholder="MG...",
        ),
        SettingField(
            "status_callback_url",
            N_("Status callback URL"),
            N_(
                "Where Twilio reports delivered and read: paste this channel's webhook URL. "
                "Empty: no delivery statuses."
            ),
        ),
        SettingField(
            "api_base_url",
            N_("API base URL"),
            N_("Leave empty to use Twilio's API. Set it only to reach Twilio through a proxy or a test server."),
            placeholder=DEFAULT_API_BASE_URL,
        ),
    )

    async def check_connection(self, account: ChannelAccountView) -> ConnectionCheck:
        """Fetch the Twilio account with the Account SID and auth token (HTTP Basic)."""
        account_sid, auth_token = basic_auth(account)
        base = str(account.config.get("api_base_url") or DEFAULT_API_BASE_URL).rstrip("/")
        response = await probe(
            "GET", f"{base}/2010-04-01/Accounts/{account_sid}.json", provider="Twilio", auth=(account_sid, auth_token)
        )
        body = json_object(response, provider="Twilio")
        if response.status_code == 401:
            raise CheckFailed(
                ConnectionCheck(
                    False,
                    "credentials_invalid",
                    N_(
                        "Twilio rejected the Account SID and auth token. Copy both again from the Twilio Console: "
                        "the token must belong to this account."
                    ),
                    setting="auth_token",
                )
            )
        if response.status_code == 404:
            raise CheckFailed(
                ConnectionCheck(
                    False,
                    "account_not_found",
                    N_("Twilio has no account {sid}. Check the Account SID."),
                    {"sid": account_sid},
                    "account_sid",
                )
            )
        if not response.is_success:
            return provider_error("Twilio", response.status_code)
        if str(body.get("status") or "active") != "active":
            return ConnectionCheck(
                False,
                "account_inactive",
                N_("The Twilio account {name} is {status}: it cannot send. Check it in the Twilio Console."),
                {"name": str(body.get("friendly_name") or account_sid), "status": str(body.get("status"))},
                "account_sid",
            )
        values = {"name": str(body.get("friendly_name") or account_sid)}
        return ConnectionCheck(True, "connected", N_("Connected to the Twilio account {name}."), values)

    # Twilio fetches MediaUrl itself: the worker gives each file a signed public Hilo URL.
    media_by_link: ClassVar[bool] = True

    def parse_webhook(self, account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        params = verified_params(account, request)
        result = WebhookResult(reply_body=EMPTY_TWIML, reply_content_type=TWIML_CONTENT_TYPE)
        if is_status_callback(params):
            update = parse_status_callback(params)
            if update is not None:
                result.statuses.append(update)
            return result
        message = self.parse_inbound(params)
        result.messages.append(message)
        self.add_opt_changes(result, params, message)
        return result

    def parse_inbound(self, params: Mapping[str, str]) -> InboundMessage:
        """Normalise an incoming-message webhook."""
        message_sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")
        sender = params.get("From")
        if not message_sid or not sender:
            raise WebhookError("payload_malformed", REASON_MALFORMED, 400)
        attachments = media_attachments(params)
        kind = attachments[0].kind if attachments else MessageKind.TEXT
        data: dict[str, Any] = {"to": params.get("To")}
        for field, key in (("NumSegments", "num_segments"), ("FromCountry", "from_country")):
            if params.get(field):
                data[key] = params[field]
        return InboundMessage(
            provider_message_id=message_sid,
            sender=IdentityRef(IdentityKind.PHONE, phone_identity_value(sender, self.address_prefix)),
            kind=kind,
            text=params.get("Body") or None,
            attachments=attachments,
            data=data,
            raw=dict(params),
        )

    def add_opt_changes(self, result: WebhookResult, params: Mapping[str, str], message: InboundMessage) -> None:
        """Record opt-out / opt-in keywords; channels without keywords leave this empty."""

    def outbound_address(self, number: str) -> str:
        """Return a phone number in the form Twilio expects for this channel."""
        if self.address_prefix and not number.startswith(self.address_prefix):
            return f"{self.address_prefix}{number}"
        return number

    def message_fields(self, message: OutboundMessage) -> list[tuple[str, str]]:
        """Return the content fields (Body, MediaUrl...) of a Messages API create."""
        fields: list[tuple[str, str]] = []
        if message.text:
            fields.append(("Body", message.text))
        for attachment in message.attachments:
            if not attachment.url:
                raise SendError("media_url_missing", REASON_MEDIA_URL_MISSING, retryable=False)
            fields.append(("MediaUrl", attachment.url))
        return fields

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult:
        account_sid, auth_token = basic_auth(account)
        from_number = str(account.config.get("from_number") or "")
        service_sid = str(account.config.get("messaging_service_sid") or "")
        fields = [("To", self.outbound_address(message.recipient_address or message.recipient.value))]
        if from_number:
            fields.append(("From", self.outbound_address(from_number)))
        elif service_sid:
            fields.append(("MessagingServiceSid", service_sid))
        else:
            raise SendError("channel_not_configured", REASON_NOT_CONFIGURED, retryable=False)
        fields.extend(self.message_fields(message))
        status_callback = account.config.get("status_callback_url")
        if status_callback:
            fields.append(("StatusCallback", str(status_callback)))
        base = str(account.config.get("api_base_url") or DEFAULT_API_BASE_URL).rstrip("/")
        url = f"{base}/2010-04-01/Accounts/{account_sid}/Messages.json"
        try:
            async with httpx.AsyncClient(timeout=SEND_TIMEOUT) as client:
                response = await client.post(
                    url,
                    content=urlencode(fields).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    auth=(account_sid, auth_token),
                )
        except httpx.HTTPError as exc:
            raise SendError("network_error", REASON_NETWORK, retryable=True) from exc
        if not response.is_success:
            raise send_error_from_response(response)
        try:
            payload = response.json()
            sid = str(payload["sid"])
        except (ValueError, KeyError, TypeError) as exc:
            # Twilio may have queued the message: retrying could send it twice.
            raise SendError("unexpected_response", REASON_UNREADABLE, retryable=False) from exc
        status = _STATUSES.get(str(payload.get("status", "")), DeliveryStatus.SENT)
        return SendResult(provider_message_id=sid, status=status)


def content_variables(variables: Mapping[str, Any] | Sequence[Any] | None) -> str:
    """Encode template variables as the JSON object Twilio's ContentVariables expects."""
    if variables is None:
        return "{}"
    if isinstance(variables, str):
        return variables
    if isinstance(variables, Mapping):
        return json.dumps({str(key): str(value) for key, value in variables.items()})
    # A plain list fills the numbered placeholders {{1}}, {{2}}... in order.
    return json.dumps({str(index): str(value) for index, value in enumerate(variables, 1)})
