"""Hilo's own e-mails in tests: the aiosmtpd server they go to and the job runner that sends them."""

from __future__ import annotations

import asyncio
import email
import re
from email.message import EmailMessage
from email.policy import default

from fastapi.testclient import TestClient

from tests.channels.email_servers import SmtpServer

LINK = re.compile(r"http://testserver/(?:reset-password|accept-invitation)\?token=([\w-]+)")


def run_jobs(client: TestClient) -> int:
    """Run one pass of the app's job runner (the background is off in tests)."""
    return asyncio.run(client.app.state.background.jobs.run_once())  # type: ignore[attr-defined]


def mails(server: SmtpServer) -> list[EmailMessage]:
    return [email.message_from_bytes(m.data, policy=default) for m in server.handler.messages]  # type: ignore[misc]


def token_in(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(1)
