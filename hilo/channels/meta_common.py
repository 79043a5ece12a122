"""Meta platform pieces shared by the WhatsApp, Messenger and Instagram adapters.

All three products use the same Webhooks product (GET `hub.challenge` handshake, POST
bodies signed with `X-Hub-Signature-256` using the app secret) and the same Graph API
error envelope, and Messenger and Instagram share the `entry[].messaging[]` event shape.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from hilo import constant_time
from hilo.channels import json_body
from hilo.channels.base import (
    ChannelAccountView,
    ConnectionCheck,
    Refusal,
    SendError,
    SettingField,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from hilo.channels.setup import CheckFailed, json_object, probe, provider_error
from hilo.i18n import N_

logger = logging.getLogger(__name__)

GRAPH_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
SIGNATURE_HEADER = "x-hub-signature-256"
# Meta answers in well under a second; a slow connect means the network is down.
HTTP_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
HUMAN_AGENT_TAG = "HUMAN_AGENT"

MSG_SIGNATURE_MISSING = N_(
    "The webhook has no X-Hub-Signature-256 header, so it cannot be trusted. "
    "Check that the request really comes from Meta."
)
MSG_SIGNATURE_INVALID = N_(
    "The webhook signature does not match. Check that the app secret in the channel "
    "settings is the secret of the Meta app that sends the webhooks."
)
MSG_PAYLOAD_MALFORMED = N_("The webhook body is not a Meta webhook this channel can read.")
MSG_VERIFY_TOKEN_INVALID = N_(
    "The verify token does not match the one in the channel settings. Type the same "
    "verify token in the Meta app's webhook settings and in Hilo."
)
MSG_APP_SECRET_MISSING = N_("The channel has no app secret yet. Paste the Meta app secret into the channel settings.")
MSG_CHANNEL_NOT_CONFIGURED = N_(
    "The channel is missing settings (access token or account id). Ask an administrator "
    "to complete the channel settings."
)
MSG_RATE_LIMITED = N_("Meta is limiting how fast this channel can send.")
MSG_PROVIDER_UNAVAILABLE = N_("Meta is not responding right now.")
MSG_WHATSAPP_WINDOW_CLOSED = N_(
    "More than 24 hours have passed since the customer last wrote on WhatsApp, so only "
    "an approved message template can reach them. Choose a template and send again."
)
MSG_MESSAGING_WINDOW_CLOSED = N_(
    "Meta refused the reply because too much time has passed since the customer last "
    "wrote. Wait for the customer to write again or reach them on another channel."
)
MSG_AUTH_FAILED = N_(
    "Meta rejected the channel's access token. Ask an administrator to paste a valid token into the channel settings."
)
MSG_PERMISSION_DENIED = N_(
    "The Meta app lacks a permission needed to send this message. Ask an administrator to check the app's permissions."
)
MSG_RECIPIENT_UNAVAILABLE = N_(
    "The customer cannot be reached on this channel: they may have blocked the business, "
    "deleted their account or not use this service. Try another channel."
)
MSG_TEMPLATE_INVALID = N_(
    "WhatsApp rejected the message template: it may not exist, not be approved in this "
    "language, or have the wrong parameters. Check the template and try again."
)
MSG_MEDIA_FAILED = N_(
    "Meta could not fetch or accept the attachment. Check the file (type and size) and send it again."
)
MSG_ACCOUNT_RESTRICTED = N_(
    "Meta has restricted this business account from sending. An administrator must "
    "check the account in Meta Business Suite."
)
MSG_INVALID_REQUEST = N_(
    "Meta rejected the message as invalid. Check its content; if it happens again, report it to an administrator."
)
MSG_MARKETING_NOT_DELIVERED = N_(
    "WhatsApp did not deliver this message because of the customer's marketing "
    "preferences or per-customer limits. Do not resend it right away."
)
MSG_PROVIDER_ERROR = N_(
    "Meta refused the message for an unexpected reason. Try again later or ask an administrator to check the channel."
)
MSG_RECIPIENT_OPTED_OUT = N_(
    "The customer has opted out of messages on this channel. Reach them on another "
    "channel, or wait until they write again."
)

# Graph API error codes, from Meta's WhatsApp, Messenger and Instagram error-code pages
# (see shared/fixtures/{whatsapp,messenger,instagram}.md). Keyed on `error.code`, as Meta
# asks, with the subcode only where one code covers different cases.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80007, 130429, 131048, 131056, 133016})
TRANSIENT_CODES = frozenset({1, 2, 131000, 131016, 133004})
AUTH_CODES = frozenset({0, 102, 190, 463, 467})
PERMISSION_CODES = frozenset({3, 10, 200, 230, 294})
WHATSAPP_WINDOW_CODES = frozenset({131047})
# Code 10 with these subcodes is Messenger's / Instagram's "outside of allowed window".
MESSAGING_WINDOW_SUBCODES = frozenset({2018278, 2534022})
# Code 100 with these subcodes: no such user (wrong PSID/IGSID or page token).
UNKNOWN_USER_SUBCODES = frozenset({2018001, 2534014})
RECIPIENT_UNAVAILABLE_CODES = frozenset({551, 130472, 131021, 131026})
TEMPLATE_CODES = frozenset({132000, 132001, 132005, 132007, 132012, 132015, 132016, 132068})
MEDIA_CODES = frozenset({131014, 131052, 131053})
RESTRICTED_CODES = frozenset({368, 131031, 131042})
MARKETING_CODES = frozenset({131049, 131050})
INVALID_CODES = frozenset({100, 131008, 131009, 131051})


def verify_signature(app_secret: str | None, request: WebhookRequest) -> None:
    """Check `X-Hub-Signature-256` over the raw body; raise `WebhookError` if it fails."""
    if not app_secret:
        raise WebhookError("channel_not_configured", MSG_APP_SECRET_MISSING, 503)
    header = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not header:
        raise WebhookError("signature_missing", MSG_SIGNATURE_MISSING, 401)
    algorithm, _, received = header.partition("=")
    expected = hmac.new(app_secret.encode(), request.body, hashlib.sha256).hexdigest()
    if algorithm.lower() != "sha256" or not constant_time.equal(expected, received.strip().lower()):
        raise WebhookError("signature_invalid", MSG_SIGNATURE_INVALID, 401)


def answer_handshake(account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
    """Answer Meta's GET subscription check by echoing `hub.challenge` as plain text."""
    mode = request.query.get("hub.mode")
    challenge = request.query.get("hub.challenge")
    token = request.query.get("hub.verify_token", "")
    if mode != "subscribe" or not challenge:
        raise WebhookError("payload_malformed", MSG_PAYLOAD_MALFORMED, 400)
    expected = account.secrets.get("verify_token", "")
    if not expected or not constant_time.equal(expected, token):
        raise WebhookError("verify_token_invalid", MSG_VERIFY_TOKEN_INVALID, 403)
    return WebhookResult(reply_body=challenge.encode(), reply_content_type="text/plain")


def read_signed_entries(
    account: ChannelAccountView, request: WebhookRequest, expected_object: str
) -> list[dict[str, Any]]:
    """Verify the signature, decode a webhook whose `object` is `expected_object` and
    return its `entry` list."""
    verify_signature(account.secrets.get("app_secret"), request)
    payload = json_body.decode(request.body, MSG_PAYLOAD_MALFORMED, exact=True)
    if not isinstance(payload, dict) or payload.get("object") != expected_object:
        raise WebhookError("payload_malformed", MSG_PAYLOAD_MALFORMED, 400)
    entries = payload.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise WebhookError("payload_malformed", MSG_PAYLOAD_MALFORMED, 400)
    return entries


def meta_time(value: Any) -> datetime | None:
    """Read a Meta timestamp: Unix seconds (WhatsApp, as a string) or milliseconds
    (Messenger, Instagram); the dashboard's test button sends seconds as a string."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    # Milliseconds since 1970 pass 10^11 in 1973; seconds will not for thousands of years.
    if number > 1e11:
        number /= 1000
    return datetime.fromtimestamp(number, tz=UTC)


def as_list(value: Any) -> list[dict[str, Any]]:
    """Return the dict items of a JSON list, or [] for anything else."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def config_flag(value: Any) -> bool:
    """Read a yes/no setting that the admin form may have stored as a string."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def api_root(account: ChannelAccountView, default_base_url: str = GRAPH_BASE_URL) -> str:
    """Return "<base url>/<api version>" for the account."""
    base = str(account.config.get("api_base_url") or default_base_url).rstrip("/")
    version = str(account.config.get("api_version") or DEFAULT_API_VERSION).strip("/")
    return f"{base}/{version}"


def require_setting(mapping: Mapping[str, Any], key: str) -> str:
    """Return a required config or secret value, or raise a non-retryable `SendError`."""
    value = mapping.get(key)
    if not value:
        raise SendError("channel_not_configured", MSG_CHANNEL_NOT_CONFIGURED, retryable=False)
    return str(value)


def within(last_inbound_at: datetime | None, now: datetime, window: timedelta) -> bool:
    """Whether the customer's last message is recent enough for `window`."""
    return last_inbound_at is not None and now - last_inbound_at <= window


def opted_out_refusal() -> Refusal:
    return Refusal("recipient_opted_out", MSG_RECIPIENT_OPTED_OUT)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Read a Retry-After header given in seconds or as an HTTP date."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify_error_code(code: int | None, subcode: int | None = None) -> tuple[str, str]:
    """Map a Graph API / WhatsApp error code to (stable error code, catalog msgid).

    Used for synchronous send errors and for WhatsApp's asynchronous failed statuses,
    which carry the same codes."""
    if code in WHATSAPP_WINDOW_CODES:
        return "whatsapp_window_closed", MSG_WHATSAPP_WINDOW_CLOSED
    if code == 10 and subcode in MESSAGING_WINDOW_SUBCODES:
        return "messaging_window_closed", MSG_MESSAGING_WINDOW_CLOSED
    if code == 100 and subcode in UNKNOWN_USER_SUBCODES:
        return "recipient_unavailable", MSG_RECIPIENT_UNAVAILABLE
    table: tuple[tuple[frozenset[int], str, str], ...] = (
        (RATE_LIMIT_CODES, "rate_limited", MSG_RATE_LIMITED),
        (TRANSIENT_CODES, "provider_unavailable", MSG_PROVIDER_UNAVAILABLE),
        (AUTH_CODES, "auth_failed", MSG_AUTH_FAILED),
        (PERMISSION_CODES, "permission_denied", MSG_PERMISSION_DENIED),
        (RECIPIENT_UNAVAILABLE_CODES, "recipient_unavailable", MSG_RECIPIENT_UNAVAILABLE),
        (TEMPLATE_CODES, "template_invalid", MSG_TEMPLATE_INVALID),
        (MEDIA_CODES, "media_failed", MSG_MEDIA_FAILED),
        (RESTRICTED_CODES, "account_restricted", MSG_ACCOUNT_RESTRICTED),
        (MARKETING_CODES, "marketing_not_delivered", MSG_MARKETING_NOT_DELIVERED),
        (INVALID_CODES, "invalid_request", MSG_INVALID_REQUEST),
    )
    for codes, stable_code, msgid in table:
        if code in codes:
            return stable_code, msgid
    return "provider_error", MSG_PROVIDER_ERROR


def graph_send_error(status: int, body: Any, retry_after: float | None = None, *, context: str = "send") -> SendError:
    """Turn a Graph API error response (HTTP status + decoded body) into a `SendError`."""
    error = as_dict(as_dict(body).get("error"))
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    logger.warning(
        "Meta %s failed: HTTP %s code=%s subcode=%s message=%r fbtrace_id=%s",
        context,
        status,
        code,
        subcode,
        error.get("message"),
        error.get("fbtrace_id"),
    )
    if code is None:
        if status == 429:
            return SendError("rate_limited", MSG_RATE_LIMITED, retryable=True, retry_after=retry_after)
        if status >= 500:
            return SendError(
                "provider_unavailable",
                MSG_PROVIDER_UNAVAILABLE,
                retryable=True,
                retry_after=retry_after,
            )
        if status in (401, 403):
            return SendError("auth_failed", MSG_AUTH_FAILED, retryable=False)
        return SendError("provider_error", MSG_PROVIDER_ERROR, retryable=False)
    stable_code, msgid = classify_error_code(code, subcode)
    retryable = stable_code in {"rate_limited", "provider_unavailable"}
    if stable_code == "provider_error" and (status >= 500 or error.get("is_transient") is True):
        stable_code, msgid, retryable = "provider_unavailable", MSG_PROVIDER_UNAVAILABLE, True
    return SendError(
        stable_code,
        msgid,
        retryable=retryable,
        retry_after=retry_after if retryable else None,
        # 551: "This person isn't available right now" -- the customer blocked the page.
        opted_out=code == 551,
        needs_template=stable_code == "whatsapp_window_closed",
    )


async def graph_call(
    method: str,
    url: str,
    token: str,
    *,
    json_body: Mapping[str, Any] | None = None,
    data: Mapping[str, str] | None = None,
    files: Mapping[str, tuple[str, bytes, str]] | None = None,
    params: Mapping[str, str] | None = None,
    context: str = "send",
) -> dict[str, Any]:
    """Call the Graph API with a bearer token; return the JSON body or raise `SendError`."""
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            response = await client.request(
                method,
                url,
                headers={"Authorization": f"Bearer {token}"},
                json=json_body,
                data=data,
                files=files,
                params=params,
            )
    except httpx.TimeoutException as exc:
        logger.warning("Meta %s timed out: %s", context, exc)
        raise SendError("provider_unavailable", MSG_PROVIDER_UNAVAILABLE, retryable=True) from exc
    except httpx.TransportError as exc:
        logger.warning("Meta %s could not connect: %s", context, exc)
        raise SendError("provider_unavailable", MSG_PROVIDER_UNAVAILABLE, retryable=True) from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict):
        return body
    if response.is_success:
        # Accepted but unreadable: retrying could send the message twice.
        logger.warning("Meta %s answered %s without JSON", context, response.status_code)
        raise SendError("provider_response_invalid", MSG_PROVIDER_ERROR, retryable=False)
    raise graph_send_error(
        response.status_code,
        body,
        retry_after_seconds(response.headers),
        context=context,
    )


# The connection test's answers (their strings live in chansetup.po, beside the test's other strings).
CHECK_TOKEN_INVALID = N_(
    "Meta rejected the access token: it is wrong, expired or revoked. Paste a valid token "
    "(a system user's token does not expire)."
)
CHECK_PERMISSION_DENIED = N_(
    "The access token lacks a permission this channel needs. Give the app's system user access "
    "to the account and generate the token again."
)
CHECK_ID_NOT_FOUND = N_(
    "Meta has no account with the id {id}, or the access token cannot see it. Check the id in the channel settings."
)


async def graph_check(
    account: ChannelAccountView,
    url: str,
    *,
    token_setting: str,
    id_setting: str,
    params: Mapping[str, str],
) -> dict[str, Any]:
    """GET a Graph node for a connection test; its fields, or `CheckFailed` saying what is wrong."""
    token = account.secrets.get(token_setting, "")
    response = await probe("GET", url, provider="Meta", headers={"Authorization": f"Bearer {token}"}, params=params)
    body = json_object(response, provider="Meta")
    if response.is_success:
        return body
    error = as_dict(body.get("error"))
    code = _int(error.get("code"))
    logger.info("Meta connection test: HTTP %s code=%s message=%r", response.status_code, code, error.get("message"))
    if code in AUTH_CODES or (code is None and response.status_code == 401):
        raise CheckFailed(ConnectionCheck(False, "token_invalid", CHECK_TOKEN_INVALID, setting=token_setting))
    if code in PERMISSION_CODES:
        raise CheckFailed(ConnectionCheck(False, "permission_denied", CHECK_PERMISSION_DENIED, setting=token_setting))
    if code == 100 or response.status_code == 404:
        values = {"id": str(account.config.get(id_setting) or "")}
        raise CheckFailed(ConnectionCheck(False, "account_not_found", CHECK_ID_NOT_FOUND, values, id_setting))
    raise CheckFailed(provider_error("Meta", response.status_code))


# Settings every Meta channel has, as the admin's form shows them.
API_BASE_URL_FIELD = SettingField(
    "api_base_url",
    N_("API base URL"),
    N_("Leave empty to use Meta's Graph API. Set it only to reach Meta through a proxy or a test server."),
    placeholder=GRAPH_BASE_URL,
)
API_VERSION_FIELD = SettingField(
    "api_version",
    N_("Graph API version"),
    N_("Leave empty for the version Hilo is tested with."),
    placeholder=DEFAULT_API_VERSION,
)
APP_SECRET_FIELD = SettingField(
    "app_secret",
    N_("App secret"),
    N_("Meta app dashboard, App settings > Basic. Hilo checks every webhook's signature with it."),
    required=True,
)
HUMAN_AGENT_TAG_FIELD = SettingField(
    "human_agent_tag",
    N_("Human agent tag"),
    N_('Type "yes" if Meta approved your app for the Human Agent feature: replies up to 7 days later.'),
)
VERIFY_TOKEN_FIELD = SettingField(
    "verify_token",
    N_("Verify token"),
    N_("Any long random text you choose. Type the same text in the app's webhook settings next to the callback URL."),
    required=True,
)
