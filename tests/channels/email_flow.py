"""Helpers for end-to-end e-mail tests: customer mail, signed Mailgun posts, a live app."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient

from hilo.app import create_app
from hilo.channels.email import mailgun_signature
from hilo.clock import FrozenClock
from hilo.settings import Settings
from tests.support import Api

MAILGUN_KEY = "key-mailgun-signing-test"


def customer_mail(
    sender: str,
    message_id: str,
    subject: str,
    text: str,
    *,
    to: str = "support@example.com",
    cc: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A mail as a customer's client would send it."""
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = sender
    mail["To"] = to
    if cc:
        mail["Cc"] = cc
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    mail["Date"] = "Mon, 02 Mar 2026 09:00:00 +0000"
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = references
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(text)
    if html:
        mail.add_alternative(html, subtype="html")
    return mail.as_bytes()


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def mailgun_post(api: Api, channel: dict[str, Any], fields: dict[str, str], key: str = MAILGUN_KEY) -> Any:
    """POST a Mailgun Routes forward() delivery, signed as Mailgun signs it."""
    timestamp = str(int(time.time()))  # Mailgun signs with its clock; Hilo checks against the wall clock
    token = secrets.token_hex(25)
    headers = [[name, fields[name]] for name in ("From", "To", "Subject", "Message-Id") if name in fields]
    headers += [[name, fields[name]] for name in ("In-Reply-To", "References", "Cc") if name in fields]
    form = {
        "timestamp": timestamp,
        "token": token,
        "signature": mailgun_signature(key, timestamp, token),
        "sender": fields["sender"],
        "from": fields["From"],
        "recipient": fields.get("To", "support@example.com"),
        "subject": fields.get("Subject", ""),
        "body-plain": fields["body-plain"],
        "message-headers": json.dumps(headers),
    }
    return api.client.post(f"/webhooks/email/{channel['id']}", data=form)


@contextmanager
def running_app(settings: Settings, clock: FrozenClock, api: Api | None = None) -> Iterator[Api]:
    """Hilo with its lifespan (the worker and the mailbox service run in the background)."""
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        yield Api(client, api.token, api.agent_id) if api else Api.bootstrap(client)
