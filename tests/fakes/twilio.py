"""A fake Twilio Messages API: real paths, Basic auth, fixture bodies, signed status callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import serve_asgi

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures"
API_VERSION = "2010-04-01"


def twilio_signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """Sign a webhook the way Twilio does (written apart from hilo's validator on purpose)."""
    names = sorted({name for name, _ in params})
    data = url + "".join(name + value for name in names for value in sorted({v for n, v in params if n == name}))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _error_body(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode(), keep_blank_values=True)


@dataclass
class _ScriptedError:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass
class SentMessage:
    sid: str
    to: str
    from_: str
    status_callback: str | None


@dataclass
class FakeTwilio:
    """One Twilio account. Use `running()` to serve it and get its base URL."""

    account_sid: str = "AC" + "a" * 32
    auth_token: str = "test_auth_token"  # noqa: S105 - a test value
    requests: list[RecordedRequest] = field(default_factory=list)
    messages: dict[str, SentMessage] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    friendly_name: str = "Hilo test account"
    # "active", "suspended" or "closed", as the Accounts resource reports it.
    status: str = "active"
    _errors: list[_ScriptedError] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json",
                    self._create_message,
                    methods=["POST"],
                ),
                Route(f"/{API_VERSION}/Accounts/{{account_sid}}.json", self._fetch_account, methods=["GET"]),
            ]
        )

    @contextmanager
    def running(self) -> Iterator[str]:
        with serve_asgi(self.app) as base_url:
            yield base_url

    def fail_next(self, count: int, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """Answer the next `count` creates with this error instead of sending."""
        encoded = json.dumps(body).encode()
        for _ in range(count):
            self._errors.append(_ScriptedError(status, encoded, headers or {}))

    def fail_next_with_code(self, count: int, status: int, code: int, message: str) -> None:
        self.fail_next(count, status, _error_body(code, message, status))

    def rate_limit_next(self, count: int, retry_after: int) -> None:
        self.fail_next(
            count,
            429,
            _error_body(20429, "Too Many Requests", 429),
            {"Retry-After": str(retry_after)},
        )

    def opt_out(self, number: str) -> None:
        """Make later sends to `number` fail with 21610, as after the customer replied STOP."""
        self.opted_out.add(number)

    async def _create_message(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(RecordedRequest(request.method, request.url.path, dict(request.headers), body))
        if not self._authorised(request):
            return JSONResponse(_error_body(20003, "Authenticate", 401), status_code=401)
        if self._errors:
            error = self._errors.pop(0)
            return Response(error.body, error.status, headers=error.headers, media_type="application/json")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        if not form.get("To"):
            return self._error(21604, "A 'To' phone number is required.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return self._error(21603, "A 'From' phone number is required.")
        if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
            return self._error(21602, "Message body is required.")
        if form["To"].removeprefix("whatsapp:") in self.opted_out:
            return Response(
                (FIXTURES / "twilio_sms_send_error_21610_constructed.json").read_bytes(),
                400,
                media_type="application/json",
            )
        return JSONResponse(self._created(form), status_code=201)

    async def _fetch_account(self, request: Request) -> Response:
        """GET /Accounts/{sid}.json: the account resource, as Twilio answers its owner."""
        self.requests.append(RecordedRequest(request.method, request.url.path, dict(request.headers), b""))
        if not self._authorised(request):
            return JSONResponse(_error_body(20003, "Authenticate", 401), status_code=401)
        return JSONResponse(
            {
                "sid": self.account_sid,
                "friendly_name": self.friendly_name,
                "status": self.status,
                "type": "Full",
                "owner_account_sid": self.account_sid,
                "date_created": "Thu, 01 Feb 2024 10:00:00 +0000",
                "uri": f"/{API_VERSION}/Accounts/{self.account_sid}.json",
            }
        )

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        given = request.headers.get("authorization", "")
        return request.path_params["account_sid"] == self.account_sid and hmac.compare_digest(
            given, f"Basic {expected}"
        )

    def _error(self, code: int, message: str) -> Response:
        return JSONResponse(_error_body(code, message, 400), status_code=400)

    def _created(self, form: dict[str, str]) -> dict[str, Any]:
        resource = json.loads((FIXTURES / "twilio_sms_send_response_201.json").read_text())
        sid = "SM" + secrets.token_hex(16)
        from_ = form.get("From", "")
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        resource.update(
            {
                "account_sid": self.account_sid,
                "sid": sid,
                "to": form["To"],
                "from": from_ or None,
                "body": form.get("Body", ""),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": str(sum(1 for key in form if key == "MediaUrl")),
                # A real create answers "queued" (the fixture says "sent").
                "status": "queued",
                "date_sent": None,
                "uri": f"{uri}.json",
                "subresource_uris": {"media": f"{uri}/Media.json"},
            }
        )
        self.messages[sid] = SentMessage(sid, form["To"], from_, form.get("StatusCallback"))
        return resource

    def post_signed(
        self, url: str, params: Sequence[tuple[str, str]], *, auth_token: str | None = None
    ) -> httpx.Response:
        """POST form `params` to `url` signed with X-Twilio-Signature, as Twilio's webhooks are."""
        signature = twilio_signature(auth_token or self.auth_token, url, params)
        return httpx.post(
            url,
            content=urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
                "User-Agent": "TwilioProxy/1.1",
            },
        )

    def send_status_callback(
        self, sid: str, status: str, error_code: int | None = None, url: str | None = None
    ) -> httpx.Response:
        """Report a status for a sent message to its StatusCallback (or to `url`)."""
        message = self.messages[sid]
        target = url or message.status_callback
        if not target:
            raise ValueError(f"message {sid} has no StatusCallback")
        params = [
            ("SmsSid", sid),
            ("SmsStatus", status),
            ("MessageStatus", status),
            ("To", message.to),
            ("MessageSid", sid),
            ("AccountSid", self.account_sid),
            ("From", message.from_),
            ("ApiVersion", API_VERSION),
        ]
        if error_code is not None:
            params.insert(0, ("ErrorCode", str(error_code)))
        return self.post_signed(target, params)
