"""End-to-end helpers for the provider channels: channel accounts pointed at the fake
providers, webhooks signed the way each provider signs them, and a small media server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.meta import DEFAULT_ACCESS_TOKEN, FakeGraphAPI
from tests.fakes.server import serve_asgi
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio, twilio_signature
from tests.support import Api

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures"
BASE_URL = "http://testserver"  # the tests' HILO_BASE_URL (tests/conftest.py)
META_APP_SECRET = "e2e-meta-app-secret"
VERIFY_TOKEN = "e2e-verify-token"
TELEGRAM_SECRET = "e2e-telegram-secret"
# The numbers and pages the captured fixtures were addressed to.
WHATSAPP_NUMBER_ID = "106540352242922"
WHATSAPP_WABA_ID = "102290129340398"
PAGE_ID = "1234567890"
SMS_NUMBER = "+12028831111"


FIXTURES_ABSENT = (
    f"the shared provider fixtures are absent: expected them at {FIXTURES} "
    "(the shared/ folder next to the repository, which CI always has)"
)


def skip_module_without_fixtures() -> None:
    """Skip the calling test module, with the reason, in a checkout without ../shared/fixtures."""
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT, allow_module_level=True)


def fixture(name: str) -> bytes:
    """A captured payload; skips the test when the whole fixtures folder is absent (a
    missing file inside a present folder still fails)."""
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture(name))


# -- channel accounts ---------------------------------------------------------------------


def create_channel(api: Api, kind: str, settings: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    return api.ok(api.post("/api/v1/channels", {"kind": kind, "name": name or kind, "settings": settings}), 201)


def whatsapp_channel(
    api: Api, graph: FakeGraphAPI, number_id: str = WHATSAPP_NUMBER_ID, **extra: Any
) -> dict[str, Any]:
    settings = {
        "phone_number_id": number_id,
        "waba_id": WHATSAPP_WABA_ID,
        "api_base_url": graph.base_url,
        "access_token": DEFAULT_ACCESS_TOKEN,
        "app_secret": META_APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        **extra,
    }
    return create_channel(api, "whatsapp", settings)


def messenger_channel(api: Api, graph: FakeGraphAPI, **extra: Any) -> dict[str, Any]:
    settings = {
        "page_id": PAGE_ID,
        "api_base_url": graph.base_url,
        "page_access_token": DEFAULT_ACCESS_TOKEN,
        "app_secret": META_APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        **extra,
    }
    return create_channel(api, "messenger", settings)


def instagram_channel(api: Api, graph: FakeGraphAPI, **extra: Any) -> dict[str, Any]:
    settings = {
        "instagram_account_id": PAGE_ID,
        "api_base_url": graph.base_url,
        "access_token": DEFAULT_ACCESS_TOKEN,
        "app_secret": META_APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        **extra,
    }
    return create_channel(api, "instagram", settings)


def twilio_channel(api: Api, twilio: FakeTwilio, base_url: str, kind: str = "sms", **extra: Any) -> dict[str, Any]:
    channel = create_channel(
        api,
        kind,
        {
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "from_number": SMS_NUMBER,
            "api_base_url": base_url,
            **extra,
        },
    )
    # Status callbacks come back to the channel's own webhook URL.
    return api.ok(
        api.patch(f"/api/v1/channels/{channel['id']}", {"settings": {"status_callback_url": webhook_url(channel)}})
    )


def telegram_channel(api: Api, telegram: FakeTelegram, base_url: str) -> dict[str, Any]:
    settings = {"api_base_url": base_url, "bot_token": telegram.token, "secret_token": TELEGRAM_SECRET}
    return create_channel(api, "telegram", settings)


def webhook_url(channel: dict[str, Any]) -> str:
    return f"{BASE_URL}/webhooks/{channel['kind']}/{channel['id']}"


# -- signed webhooks ----------------------------------------------------------------------


def meta_signature(body: bytes, secret: str = META_APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_meta(api: Api, channel: dict[str, Any], body: bytes | dict[str, Any], signature: str | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return api.client.post(
        f"/webhooks/{channel['kind']}/{channel['id']}",
        content=raw,
        headers={"content-type": "application/json", "x-hub-signature-256": signature or meta_signature(raw)},
    )


def post_twilio(
    api: Api,
    channel: dict[str, Any],
    body: bytes | list[tuple[str, str]],
    auth_token: str,
    signature: str | None = None,
) -> Any:
    raw = body if isinstance(body, bytes) else urlencode(body).encode()
    pairs = parse_qsl(raw.decode(errors="replace"), keep_blank_values=True)
    return api.client.post(
        f"/webhooks/{channel['kind']}/{channel['id']}",
        content=raw,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature or twilio_signature(auth_token, webhook_url(channel), pairs),
        },
    )


def post_telegram(
    api: Api, channel: dict[str, Any], body: bytes | dict[str, Any], secret: str = TELEGRAM_SECRET
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return api.client.post(
        f"/webhooks/telegram/{channel['id']}",
        content=raw,
        headers={"content-type": "application/json", "x-telegram-bot-api-secret-token": secret},
    )


def whatsapp_statuses(message_id: str, status: str, number_id: str = WHATSAPP_NUMBER_ID) -> dict[str, Any]:
    """The captured status webhook of `status`, naming our sent message and number."""
    payload = fixture_json(f"whatsapp_status_{status}.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = number_id
    value["statuses"][0]["id"] = message_id
    return dict(payload)


def twilio_status(message_sid: str, status: str) -> list[tuple[str, str]]:
    """The captured status callback with our message's sid and the given status."""
    pairs = parse_qsl(fixture("twilio_sms_status_delivered_courier.form").decode(), keep_blank_values=True)
    replaced = {"MessageSid": message_sid, "MessageStatus": status}
    return [(name, replaced.get(name, value)) for name, value in pairs]


# -- fake servers -------------------------------------------------------------------------


def reset_twilio(twilio: FakeTwilio) -> None:
    twilio.requests.clear()
    twilio.messages.clear()
    twilio.opted_out.clear()
    twilio._errors.clear()
    twilio.status = "active"


def reset_telegram(telegram: FakeTelegram) -> None:
    telegram.calls.clear()
    telegram.blocked.clear()
    telegram.files.clear()
    telegram._errors.clear()
    telegram._message_ids.clear()


@dataclass
class MediaServer:
    """Serves files at /files/<name>, optionally behind Basic auth (Twilio media URLs)."""

    base_url: str = ""
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    credentials: tuple[str, str] | None = None
    failures: list[int] = field(default_factory=list)
    seen_auth: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.files.clear()
            self.failures.clear()
            self.seen_auth.clear()
            self.credentials = None

    async def serve(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        with self.lock:
            self.seen_auth.append(header)
            failure = self.failures.pop(0) if self.failures else None
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            if not hmac.compare_digest(header, expected):
                return Response(status_code=401)
        if failure is not None:
            return Response(status_code=failure)
        stored = self.files.get(request.path_params["name"])
        if stored is None:
            return Response(status_code=404)
        return Response(stored[0], media_type=stored[1])


@contextmanager
def media_server() -> Iterator[MediaServer]:
    state = MediaServer()
    app = Starlette(routes=[Route("/files/{name}", state.serve, methods=["GET"])])
    with serve_asgi(app) as base_url:
        state.base_url = base_url
        yield state
