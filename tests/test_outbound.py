"""Outbound requests to URLs from outside never reach Hilo's own host or internal network."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from hilo import outbound
from hilo.app import create_app
from hilo.clock import FrozenClock
from tests.conftest import make_settings, run_worker_once
from tests.fakes.server import serve_asgi
from tests.routing.desk import Desk
from tests.support import Api


@pytest.fixture(autouse=True)
def _policy_restored() -> Iterator[None]:
    """The policy is process-wide: leave it as the other tests' settings set it."""
    yield
    outbound.allow(outbound.parse_networks(make_settings("", Path()).outbound_allow_networks))


@pytest.fixture
def internal() -> Iterator[tuple[str, list[str]]]:
    """A service on loopback holding a secret, and a redirect to it from 127.0.0.1."""
    hits: list[str] = []

    async def secret(request: Request) -> Response:
        hits.append(request.url.path)
        return PlainTextResponse("internal secret", media_type="image/png")

    async def bounce(request: Request) -> Response:
        hits.append(request.url.path)
        port = request.url.port
        return RedirectResponse(f"http://127.0.0.2:{port}/secret", status_code=302)

    routes = [Route("/secret", secret, methods=["GET", "POST"]), Route("/bounce", bounce, methods=["GET", "POST"])]
    with serve_asgi(Starlette(routes=routes)) as base:
        yield base, hits


def strict_client(database_url: str, tmp_path: Path, clock: FrozenClock, allow: str) -> Callable[[], Any]:
    settings = make_settings(database_url, tmp_path / "data", outbound_allow_networks=allow)
    return lambda: TestClient(create_app(settings, clock=clock))


@pytest.mark.parametrize(
    ("allow", "target"),
    [("", "/secret"), ("127.0.0.1/32", "/bounce")],
    ids=["loopback", "redirect-to-loopback"],
)
def test_attachment_url_on_an_internal_address_is_never_fetched(
    database_url: str,
    tmp_path: Path,
    clock: FrozenClock,
    internal: tuple[str, list[str]],
    allow: str,
    target: str,
) -> None:
    # given: Hilo with the default policy (or one allowing only the first hop)
    base, hits = internal
    with strict_client(database_url, tmp_path, clock, allow)() as client:
        api = Api.bootstrap(client)
        channel = api.api_channel()
        attachment = {"url": f"{base}{target}", "content_type": "image/png", "filename": "a.png"}
        payload = {"id": "m-1", "contact": {"external_id": "eve"}, "text": "see", "attachments": [attachment]}
        assert api.webhook(channel, payload).status_code == 200
        # when: the worker fetches the customer's media
        run_worker_once(client)
        # then: the internal service never answered Hilo, and the agent sees why
        [conversation] = api.conversations()
        [stored] = api.timeline(conversation["id"])[-1]["attachments"]
        served = api.get(stored["url"], follow_redirects=False)
    assert "/secret" not in hits
    assert (stored["status"], stored["status_code"]) == ("unavailable", "address_refused")
    assert "HILO_OUTBOUND_ALLOW_NETWORKS" in stored["status_reason"]
    assert served.status_code == 410
    assert b"internal secret" not in served.content


def test_api_channel_reply_to_an_internal_address_fails_with_the_reason(
    database_url: str, tmp_path: Path, clock: FrozenClock, internal: tuple[str, list[str]]
) -> None:
    # given: an API channel whose outbound URL is on loopback, with the default policy
    base, hits = internal
    with strict_client(database_url, tmp_path, clock, "")() as client:
        api = Api.bootstrap(client)
        channel = api.api_channel(outbound_url=f"{base}/secret")
        api.inbound(channel, "eve", "hello")
        [conversation] = api.conversations()
        api.ok(api.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "hi"}), 201)
        # when
        run_worker_once(client)
        # then
        reply = api.timeline(conversation["id"])[-1]
    assert hits == []
    assert (reply["status"], reply["status_code"]) == ("failed", "address_refused")


def test_rule_webhook_to_an_internal_address_is_refused_and_recorded(
    database_url: str, tmp_path: Path, clock: FrozenClock, internal: tuple[str, list[str]]
) -> None:
    # given: a rule posting to loopback, with the default policy
    base, hits = internal
    with strict_client(database_url, tmp_path, clock, "")() as client:
        desk = Desk(Api.bootstrap(client), clock)
        try:
            rule = {"type": "webhook", "url": f"{base}/secret", "secret": "s3cret-value"}
            desk.api.ok(
                desk.api.post(
                    "/api/v1/automation/rules",
                    {"name": "Tell the CRM", "event": "conversation.created", "actions": [rule]},
                ),
                201,
            )
            # when
            conversation = desk.customer_writes()
            desk.webhooks_done()
            # then
            [outcome] = desk.events(conversation, "automation.webhook")
        finally:
            desk.close()
    assert hits == []
    assert outcome["delivered"] is False
    assert outcome["error"] == "address_refused"
    assert outcome["attempts"] == 1
    assert "HILO_OUTBOUND_ALLOW_NETWORKS" in outcome["reason"]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    # given
    outbound.allow(())
    # when / then
    assert not outbound.is_allowed(ipaddress.ip_address(address))


def test_public_and_allowed_networks_are_reached() -> None:
    # given
    outbound.allow(outbound.parse_networks("10.0.0.0/8, fd00::/8"))
    # then
    assert outbound.is_allowed(ipaddress.ip_address("93.184.216.34"))
    assert outbound.is_allowed(ipaddress.ip_address("2606:2800:220:1::1"))
    assert outbound.is_allowed(ipaddress.ip_address("10.9.8.7"))
    assert outbound.is_allowed(ipaddress.ip_address("::ffff:10.9.8.7"))
    assert not outbound.is_allowed(ipaddress.ip_address("192.168.0.1"))


def test_a_name_is_checked_by_the_address_it_resolves_to() -> None:
    # given: the default policy, and a name that resolves to loopback
    outbound.allow(())

    # when / then
    with httpx.Client(transport=outbound.Transport()) as client, pytest.raises(outbound.AddressRefused):
        client.get("http://localhost:9/")
