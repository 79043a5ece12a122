"""Test helpers that talk to Hilo the way a client does: over HTTP."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import orjson
from fastapi.testclient import TestClient

from hilo.agents.actions import create_agent, create_token
from hilo.channels import signing

_ids = itertools.count(1)
T = TypeVar("T")


# uvicorn closes a kept-alive connection after 5 s idle; a client that reuses one as it closes
# gets "connection reset" for a request the server never read. Give idle ones up sooner.
KEEPALIVE_SECONDS = 2.0


def live_client(base_url: str, **options: Any) -> httpx.Client:
    """An HTTP client for a real server a test started (module fixtures keep it across tests)."""
    limits = httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS)
    return httpx.Client(base_url=base_url, timeout=20, limits=limits, **options)


def eventually(check: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Return `check()` once it is truthy: the app's own worker does the work in the background."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(0.05)


class Api:
    """A signed-in API client (Bearer token) plus webhook helpers."""

    def __init__(self, client: TestClient, token: str, agent_id: int) -> None:
        self.client = client
        self.token = token
        self.agent_id = agent_id
        self.headers = {"Authorization": f"Bearer {token}"}

    @classmethod
    def bootstrap(cls, client: TestClient, email: str = "admin@example.com", role: str = "admin") -> Api:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        with runtime.transaction() as tx:
            agent = create_agent(
                tx, email=email, name=email.split("@")[0].title(), password="correct horse battery", role=role
            )
            _row, token = create_token(tx, agent, "tests")
        return cls(client, token, agent.id)

    def as_new_agent(self, email: str, role: str = "agent") -> Api:
        return Api.bootstrap(self.client, email, role)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=self.headers, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.patch(path, json=json, headers=self.headers, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.put(path, json=json, headers=self.headers, **kw)

    def ok(self, response: Any, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def api_channel(self, name: str = "Shop", outbound_url: str = "http://127.0.0.1:9/hook") -> dict[str, Any]:
        return self.ok(
            self.post("/api/v1/channels", {"kind": "api", "name": name, "settings": {"outbound_url": outbound_url}}),
            201,
        )

    def webhook(
        self, channel: dict[str, Any], payload: Any, *, secret: str | None = None, timestamp: int | None = None
    ) -> Any:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        signature = signing.sign(secret or channel["secret"], body, timestamp)
        return self.client.post(
            f"/webhooks/api/{channel['id']}",
            content=body,
            headers={"content-type": "application/json", "x-hilo-signature": signature},
        )

    def inbound(
        self, channel: dict[str, Any], external_id: str, text: str, *, msg_id: str | None = None, **contact: Any
    ) -> Any:
        payload = {"id": msg_id or f"m-{next(_ids)}", "contact": {"external_id": external_id, **contact}, "text": text}
        response = self.webhook(channel, payload)
        assert response.status_code == 200, response.text
        return response.json()

    def conversations(self, **params: Any) -> list[dict[str, Any]]:
        return self.ok(self.get("/api/v1/conversations", params=params))["items"]

    def timeline(self, conversation_id: int) -> list[dict[str, Any]]:
        return self.ok(self.get(f"/api/v1/conversations/{conversation_id}/messages"))["items"]
