"""Files anyone sent are served as downloads or passive media, never as a page or a script of Hilo's origin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.fakes.receiver import Receiver, receiver
from tests.support import Api
from tests.widget.widget_support import open_widget, token_of, widget_channel

FILES = [
    ("page.html", b"<html><script>alert(document.domain)</script></html>", "text/html"),
    ("a.js", b"fetch('/api/v1/automation/rules/1', {method: 'DELETE'})", "text/javascript"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"),
    (
        "feed.xhtml",
        b'<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>',
        "application/xhtml+xml",
    ),
    ("odd.bin", b"<script>alert(1)</script>", "text/html; charset=utf-8"),
    ("notes.txt", b"plain words", "text/plain"),
    ("label.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"),
    ("invoice.pdf", b"%PDF-1.4 test", "application/pdf"),
]
# What each file is served as: media type, disposition.
EXPECTED = {
    "page.html": ("application/octet-stream", "attachment"),
    "a.js": ("application/octet-stream", "attachment"),
    "logo.svg": ("application/octet-stream", "attachment"),
    "feed.xhtml": ("application/octet-stream", "attachment"),
    "odd.bin": ("application/octet-stream", "attachment"),
    "notes.txt": ("text/plain; charset=utf-8", "attachment"),
    "label.png": ("image/png", "inline"),
    "invoice.pdf": ("application/pdf", "inline"),
}


@pytest.fixture
def source() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


def reply_with_files(api: Api, conversation_id: int) -> list[dict[str, Any]]:
    sent = api.client.post(
        f"/api/v1/conversations/{conversation_id}/messages/files",
        data={"body": "Here you are"},
        files=[("files", file) for file in FILES],
        headers=api.headers,
    )
    assert sent.status_code == 201, sent.text
    return sent.json()["attachments"]  # type: ignore[no-any-return]


def served(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 200, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    if response.headers["content-type"] != "application/pdf":
        assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    return response.headers["content-type"], response.headers["content-disposition"].split(";")[0]


def test_agents_download_reply_files_as_bytes_unless_they_are_passive_media(
    api: Api, source: Receiver, worker: Callable[[], int]
) -> None:
    # given: an agent replied with a page, a script, an SVG and harmless files
    channel = api.api_channel(outbound_url=source.url)
    source.secret = channel["secret"]
    api.inbound(channel, "cust", "Send me the files")
    [conversation] = api.conversations()
    attachments = reply_with_files(api, conversation["id"])
    # when: an agent opens each one
    answers = {a["filename"]: api.get(f"/api/v1/attachments/{a['id']}") for a in attachments}
    # then
    assert {name: served(answer) for name, answer in answers.items()} == EXPECTED
    assert answers["a.js"].headers["cross-origin-resource-policy"] == "same-origin"
    assert answers["page.html"].content == FILES[0][1]
    # when: the provider fetches them by their public links
    assert worker() == 1
    [delivery] = source.received
    links = {link["filename"]: api.client.get(link["url"]) for link in delivery["body"]["attachments"]}
    # then: the same rule
    assert {name: served(answer) for name, answer in links.items()} == EXPECTED


def test_a_widget_visitor_gets_an_agents_files_by_the_same_rule(api: Api, app_client: TestClient) -> None:
    # given: a visitor chatting, and an agent who replies with files
    channel = widget_channel(api)
    with open_widget(app_client, token_of(channel)) as widget:
        widget.next_of("welcome")
        widget.say("Send me the files")
        [conversation] = api.conversations()
        reply_with_files(api, conversation["id"])
        [reply] = [m for m in widget.messages() if m["files"]]
    # when: the visitor opens each one
    answers = {f["name"]: app_client.get(f["url"]) for f in reply["files"]}
    # then
    assert {name: served(answer) for name, answer in answers.items()} == EXPECTED
