"""Rule webhooks as background jobs (slow and failing endpoints), and the time-based
scans (idle rules, auto-resolve) over conversations that went quiet at the same instant."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hilo.app import create_app
from hilo.automation import rules, webhooks
from hilo.clock import FrozenClock
from hilo.jobs import JobRunner
from hilo.settings import Settings
from tests.fakes.server import serve_asgi
from tests.routing.desk import Desk


def rule(desk: Desk, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "A rule")
    return desk.api.ok(desk.api.post("/api/v1/automation/rules", fields), 201)  # type: ignore[no-any-return]


@contextmanager
def endpoint(answer: Any) -> Iterator[str]:
    """A local webhook receiver at /hook whose handler is `answer(request)`."""
    with serve_asgi(Starlette(routes=[Route("/hook", answer, methods=["POST"])])) as base:
        yield f"{base}/hook"


def test_a_slow_webhook_does_not_hold_up_routing(desk: Desk) -> None:
    # given: a rule calls an endpoint that does not answer until the test lets it
    arrived, release = threading.Event(), threading.Event()

    async def slow(_request: Request) -> Response:
        arrived.set()
        await asyncio.to_thread(release.wait, 30)
        return JSONResponse({"ok": True})

    ana = desk.agent("Ana")
    team = desk.team("Support", [ana], "least_loaded")
    desk.route_to_team(team)
    desk.connect(ana)
    with endpoint(slow) as url:
        rule(
            desk,
            name="Tell the CRM",
            event="conversation.created",
            position=1,
            actions=[{"type": "webhook", "url": url, "secret": "a-shared-secret"}],
        )
        first = desk.customer_writes()
        jobs = threading.Thread(target=desk.webhooks_done, daemon=True)
        jobs.start()
        assert arrived.wait(10)
        # when: another customer writes while the first webhook hangs
        second = desk.customer_writes()
        # then: the routing decision for the second conversation is already recorded
        assert desk.assignee(second) == ana.agent_id
        assert desk.decisions(second)[-1]["reason"] == "least_loaded"
        assert desk.events(first, "automation.webhook") == []
        # when: the endpoint answers at last
        release.set()
        jobs.join(10)
        desk.webhooks_done()
    # then
    assert desk.events(first, "automation.webhook")[0]["delivered"] is True
    assert desk.events(second, "automation.webhook")[0]["delivered"] is True


def test_a_failing_webhook_is_retried_and_its_failure_recorded(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: short retry delays; one endpoint that always fails, one that fails once
    monkeypatch.setattr(webhooks, "RETRY_DELAYS", (0.01, 0.01))
    calls: dict[str, list[str]] = {"broken": [], "flaky": []}

    async def answer(request: Request) -> Response:
        which = request.query_params["which"]
        calls[which].append(request.headers[webhooks.DELIVERY_HEADER])
        if which == "broken" or len(calls[which]) == 1:
            return JSONResponse({"error": "down"}, status_code=503)
        return JSONResponse({"ok": True})

    with endpoint(answer) as url:
        rule(
            desk,
            name="Tell two systems",
            event="conversation.created",
            actions=[
                {"type": "webhook", "url": f"{url}?which=broken", "secret": "a-shared-secret"},
                {"type": "webhook", "url": f"{url}?which=flaky", "secret": "a-shared-secret"},
            ],
        )
        # when
        conversation = desk.customer_writes()
        desk.webhooks_done()
    # then: three attempts at the broken one, two at the flaky one, each call under one delivery id
    assert len(calls["broken"]) == 3
    assert len(calls["flaky"]) == 2
    assert len(set(calls["broken"])) == 1
    outcomes = {event["url"].rsplit("=", 1)[1]: event for event in desk.events(conversation, "automation.webhook")}
    assert outcomes["broken"]["delivered"] is False
    assert outcomes["broken"]["attempts"] == 3
    assert outcomes["broken"]["status"] == 503
    assert outcomes["flaky"]["delivered"] is True
    assert outcomes["flaky"]["attempts"] == 2


def test_idle_rule_reaches_every_conversation_idle_since_the_same_instant(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a scan batch of two, and three conversations whose last message has the same time
    monkeypatch.setattr(rules, "SCAN_BATCH", 2)
    rule(
        desk,
        name="Nudge",
        event="conversation.idle",
        idle_hours=1,
        actions=[{"type": "add_labels", "labels": ["nudged"]}],
    )
    conversations = [desk.customer_writes() for _ in range(3)]
    # when
    desk.tick(hours=2)
    desk.tick(minutes=1)
    # then: all three, once each
    assert [desk.conversation(c)["labels"] for c in conversations] == [["nudged"]] * 3
    runs = desk.api.ok(desk.api.get("/api/v1/automation/runs"))
    assert sorted(r["conversation_id"] for r in runs) == sorted(conversations)


def test_auto_resolve_reaches_every_conversation_quiet_since_the_same_instant(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a scan batch of two, and three answered conversations whose last message has the same time
    monkeypatch.setattr(rules, "SCAN_BATCH", 2)
    desk.api.ok(desk.api.put("/api/v1/automation/settings", {"auto_resolve_after_hours": 24}))
    conversations = [desk.customer_writes() for _ in range(3)]
    for conversation in conversations:
        desk.api.ok(desk.api.post(f"/api/v1/conversations/{conversation}/messages", {"body": "Done?"}), 201)
    # when
    desk.tick(hours=25)
    # then
    assert [desk.conversation(c)["status"] for c in conversations] == ["resolved"] * 3


def test_a_rule_webhook_queued_before_a_restart_is_delivered_after_it(
    desk: Desk, settings: Settings, clock: FrozenClock
) -> None:
    # given: a rule's webhook queued by a process that stops before calling it
    calls: list[str] = []

    async def answer(request: Request) -> Response:
        calls.append(request.headers[webhooks.DELIVERY_HEADER])
        return JSONResponse({"ok": True})

    with endpoint(answer) as url:
        rule(
            desk,
            name="Tell the CRM",
            event="conversation.created",
            actions=[{"type": "webhook", "url": url, "secret": "a-shared-secret"}],
        )
        conversation = desk.customer_writes()
        desk.client.__exit__(None, None, None)
        assert calls == []
        # when: another process starts on the same database and runs its background jobs
        with TestClient(create_app(settings, clock=clock)) as restarted:
            runner: JobRunner = restarted.app.state.background.jobs  # type: ignore[attr-defined]
            ran = asyncio.run(runner.run_once())
    # then: the webhook was called once, and its outcome recorded on the conversation
    assert ran == 1
    assert len(calls) == 1
    assert desk.events(conversation, "automation.webhook")[0]["delivered"] is True
