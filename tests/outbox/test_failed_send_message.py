"""What the agent reads on a reply the outbox could not send: while it retries, and once it gives up."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from tests.fakes.receiver import Receiver, receiver
from tests.support import Api


@pytest.fixture
def source() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


def _note(page: str, message_id: int) -> str:
    """The delivery note under one message of the conversation page, as plain text."""
    article = page.split(f'id="m-{message_id}"', 1)[1].split("</article>", 1)[0]
    found = re.search(r'class="(?:failed-note|retry-note)[^"]*">\s*(?:<span[^>]*>)?([^<]*)<', article)
    return found.group(1).strip() if found else ""


def _reply_to_a_busy_receiver(api: Api, source: Receiver, worker: Callable[[], int], clock: FrozenClock) -> tuple:
    channel = api.api_channel(outbound_url=source.url)
    source.secret = channel["secret"]
    api.inbound(channel, "cust", "Hola")
    [conversation] = api.conversations()
    # Three attempts allowed (tests' settings), every one answered 503.
    source.script.extend([(503, {})] * 3)
    message = api.ok(api.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Hi"}), 201)
    return conversation["id"], message["id"]


def test_a_send_that_runs_out_of_attempts_says_it_failed_and_why(
    app_client: TestClient, api: Api, source: Receiver, worker: Callable[[], int], clock: FrozenClock
) -> None:
    # given: a reply whose first attempt the receiver answered 503
    conversation_id, message_id = _reply_to_a_busy_receiver(api, source, worker, clock)
    app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
    worker()
    # then: while attempts remain, the agent reads why it has not gone and that Hilo tries again
    waiting = app_client.get(f"/ui/conversations/{conversation_id}").text
    assert _note(waiting, message_id) == "Not sent yet: The receiving server is busy. Hilo will try again."
    # when: the last two attempts fail too
    for _ in range(2):
        clock.advance(seconds=120)
        worker()
    # then: the final note says it failed, after how many attempts and why; no promise of another try
    failed = api.timeline(conversation_id)[-1]
    assert failed["status"] == "failed" and failed["status_code"] == "http_503"
    assert failed["status_reason"] == "The receiving server is busy."
    page = app_client.get(f"/ui/conversations/{conversation_id}").text
    note = _note(page, message_id)
    assert note == "Not delivered: Hilo stopped trying after 3 attempts. The receiving server is busy."
    assert "try again" not in note
    assert worker() == 0


def test_the_final_message_is_in_the_agents_language(
    app_client: TestClient, api: Api, source: Receiver, worker: Callable[[], int], clock: FrozenClock
) -> None:
    # given: a Spanish-speaking admin and a reply the receiver never takes
    api.ok(api.patch("/api/v1/auth/me", {"locale": "es"}))
    conversation_id, message_id = _reply_to_a_busy_receiver(api, source, worker, clock)
    # when
    for _ in range(3):
        worker()
        clock.advance(seconds=120)
    app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
    page = app_client.get(f"/ui/conversations/{conversation_id}").text
    # then
    assert _note(page, message_id) == (
        "No entregado: Hilo dejó de intentarlo tras 3 intentos. El servidor receptor está ocupado."
    )


def test_a_permanent_refusal_fails_at_once_without_counting_attempts(
    app_client: TestClient, api: Api, source: Receiver, worker: Callable[[], int]
) -> None:
    # given: the receiver refuses the reply (400): no attempt could pass
    channel = api.api_channel(outbound_url=source.url)
    source.secret = channel["secret"]
    api.inbound(channel, "cust", "Hola")
    [conversation] = api.conversations()
    source.script.append((400, {}))
    message = api.ok(api.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Hi"}), 201)
    # when
    worker()
    app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
    page = app_client.get(f"/ui/conversations/{conversation['id']}").text
    # then
    assert _note(page, message["id"]) == "Not delivered: The receiving server refused the message."
