"""`hilo serve` trusts X-Forwarded-For only from the proxies in FORWARDED_ALLOW_IPS."""

from __future__ import annotations

import asyncio
from typing import Any

from hilo.app import ProxyHeaders


def client_seen(trusted: str, peer: str, forwarded_for: str | None) -> Any:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["client"])

    headers = [(b"x-forwarded-for", forwarded_for.encode())] if forwarded_for else []
    scope = {"type": "http", "client": (peer, 5000), "headers": headers}
    asyncio.run(ProxyHeaders(app, trusted)(scope, None, None))
    return seen[0]


def test_a_trusted_proxy_names_the_client_every_time() -> None:
    # when: the same proxy forwards two clients
    first = client_seen("127.0.0.1", "127.0.0.1", "203.0.113.7")
    again = client_seen("127.0.0.1", "127.0.0.1", "198.51.100.2")

    # then
    assert (first, again) == (("203.0.113.7", 0), ("198.51.100.2", 0))


def test_anyone_else_cannot_pretend_to_be_another_client() -> None:
    # when: a client that is no trusted proxy sends the header itself
    seen = client_seen("127.0.0.1,10.0.0.0/8", "192.0.2.10", "203.0.113.7")

    # then
    assert seen == ("192.0.2.10", 5000)


def test_a_trusted_network_and_the_remembered_answer_agree() -> None:
    middleware = ProxyHeaders(lambda *_: None, "10.0.0.0/8")

    # when: the same addresses are asked about twice
    answers = [peer in middleware.trusted_hosts for peer in ("10.1.2.3", "192.0.2.10", "10.1.2.3", "192.0.2.10")]

    # then
    assert answers == [True, False, True, False]
