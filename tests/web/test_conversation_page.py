"""The conversation pane: a long conversation opens on its latest page and loads the rest."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from tests.support import Api


def test_a_long_conversation_opens_on_its_latest_page_and_loads_the_rest(
    app_client: TestClient, api: Api, clock: FrozenClock
) -> None:
    # given: a customer who wrote 60 times
    channel = api.api_channel()
    for n in range(60):
        clock.advance(minutes=1)
        api.inbound(channel, "c1", f"message number {n}")
    [conversation] = api.conversations()
    app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
    # when
    page = app_client.get(f"/ui/conversations/{conversation['id']}").text
    before = re.search(r"/earlier\?before=(\d+)", page)
    # then: the latest 50, and a way back to the 10 before them
    assert page.count('class="msg ') == 50
    assert "message number 59" in page and "message number 10<" in page and "message number 9<" not in page
    assert before is not None
    # when
    earlier = app_client.get(f"/ui/conversations/{conversation['id']}/earlier", params={"before": before.group(1)})
    # then: the first 10, and nothing further back
    assert earlier.status_code == 200
    assert earlier.text.count('class="msg ') == 10
    assert "message number 0<" in earlier.text and "message number 9<" in earlier.text
    assert "/earlier?before=" not in earlier.text
