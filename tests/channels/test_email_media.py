"""E-mail attachments within limits: the Mailgun webhook takes mail larger than other
webhooks, each channel's media limits apply to the files a mail carries (by Mailgun and by
IMAP), and a refused file never costs the mail itself."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from hilo.channels.base import ChannelAccountView
from hilo.channels.email import ADAPTER, mailgun_signature
from hilo.clock import FrozenClock
from tests.channels.email_flow import MAILGUN_KEY, customer_mail, parsed, running_app
from tests.channels.email_servers import (
    DovecotServer,
    dovecot_fixture,  # noqa: F401 - the "dovecot" fixture
    dovecot_instance_fixture,  # noqa: F401 - the "dovecot_instance" fixture
)
from tests.conftest import make_settings
from tests.support import Api, eventually

PDF = b"%PDF-1.4\n" + b"0" * (150 * 1024)  # more than the tests' HILO_MAX_BODY_BYTES (64 KiB)
PNG = b"\x89PNG\r\n\x1a\n" + b"hilo-logo" * 8


def mail_channel(api: Api, **settings: Any) -> dict[str, Any]:
    values = {"address": "support@example.com", "mailgun_signing_key": MAILGUN_KEY, **settings}
    return dict(api.ok(api.post("/api/v1/channels", {"kind": "email", "name": "Soporte", "settings": values}), 201))


def mailgun_with_files(api: Api, channel: dict[str, Any], files: list[tuple[str, bytes, str]]) -> Any:
    """POST a Mailgun forward() with attachments, as Mailgun does: multipart, signed."""
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    form = {
        "timestamp": timestamp,
        "token": token,
        "signature": mailgun_signature(MAILGUN_KEY, timestamp, token),
        "sender": "ana@example.com",
        "from": "Ana <ana@example.com>",
        "recipient": "support@example.com",
        "subject": "Factura",
        "body-plain": "Adjunto la factura.",
        "message-headers": json.dumps([["From", "Ana <ana@example.com>"], ["Message-Id", "<factura@example.com>"]]),
        "attachment-count": str(len(files)),
    }
    uploads = {f"attachment-{n}": file for n, file in enumerate(files, start=1)}
    return api.client.post(f"/webhooks/email/{channel['id']}", data=form, files=uploads)


def only_message(api: Api) -> dict[str, Any]:
    [conversation] = api.conversations()
    [message] = api.timeline(conversation["id"])
    return dict(message)


def test_mailgun_mail_larger_than_other_webhooks_is_taken_with_its_attachment(api: Api) -> None:
    # given: a mail whose attachment alone is over HILO_MAX_BODY_BYTES
    channel = mail_channel(api)
    # when
    response = mailgun_with_files(api, channel, [("factura.pdf", PDF, "application/pdf")])
    # then: HILO_MAX_EMAIL_BODY_BYTES applies, and the file is stored and served
    assert response.status_code == 200, response.text
    message = only_message(api)
    assert message["body"] == "Adjunto la factura."
    [attachment] = message["attachments"]
    assert (attachment["filename"], attachment["size"], attachment["status"]) == ("factura.pdf", len(PDF), "stored")
    assert api.get(attachment["url"]).content == PDF


def test_mailgun_attachment_over_the_channel_limit_is_refused_but_the_mail_is_stored(api: Api) -> None:
    # given: the admin allows at most 64 KiB per file on this mailbox
    channel = mail_channel(api, max_media_bytes=64 * 1024)
    # when: a mail comes with a large PDF and a small logo
    response = mailgun_with_files(
        api, channel, [("factura.pdf", PDF, "application/pdf"), ("logo.png", PNG, "image/png")]
    )
    # then: the mail and the logo are stored
    assert response.status_code == 200, response.text
    message = only_message(api)
    assert message["body"] == "Adjunto la factura."
    big, logo = message["attachments"]
    assert api.get(logo["url"]).content == PNG
    # and: the PDF is listed with why it is missing, and cannot be downloaded
    assert (big["filename"], big["size"]) == ("factura.pdf", len(PDF))
    assert (big["status"], big["status_code"]) == ("unavailable", "media_too_large")
    assert big["status_reason"].startswith("The customer's file is larger than this channel accepts")
    assert message["data"]["media_refused"] == [
        {"index": 0, "filename": "factura.pdf", "code": "media_too_large", "reason": big["status_reason"]}
    ]
    served = api.get(big["url"], follow_redirects=False)
    assert (served.status_code, served.json()["error"]["code"]) == (410, "media_too_large")
    assert served.json()["error"]["message"]


def _mail_with(*files: tuple[str, bytes, str]) -> bytes:
    mail = parsed(customer_mail("Ana <ana@example.com>", "<adjuntos@example.com>", "Adjuntos", "Van los archivos."))
    assert isinstance(mail, EmailMessage)
    for filename, data, content_type in files:
        maintype, _, subtype = content_type.partition("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()


def test_imap_attachment_types_are_judged_as_the_channel_allows() -> None:
    # given: a mailbox with the default types, and a mail whose client sent every file as
    # octet-stream, with a program among them
    account = ChannelAccountView(3, "email", "Soporte", {"address": "support@example.com"}, {})
    raw = _mail_with(
        ("factura.pdf", b"%PDF-1.4 tiny", "application/octet-stream"),
        ("setup.exe", b"MZ\x90\x00", "application/octet-stream"),
        ("reenviado.eml", b"From: x@example.com\r\n\r\nhola\r\n", "message/rfc822"),
    )
    # when
    [message] = ADAPTER.parse_raw(account, raw).messages
    # then: the PDF (known by its name) and the forwarded mail are kept; the program is not
    pdf, program, forwarded = message.attachments
    assert pdf.data == b"%PDF-1.4 tiny" and forwarded.data
    assert (program.data, program.filename, program.size) == (None, "setup.exe", 4)
    assert [(r["index"], r["code"]) for r in message.data["media_refused"]] == [(1, "media_type_not_allowed")]
    assert message.text == "Van los archivos."


@pytest.fixture(name="live")
def live_fixture(database_url: str, tmp_path: Path, clock: FrozenClock) -> Iterator[Api]:
    """Hilo with its in-process worker, so the mailbox service reads IMAP."""
    with running_app(make_settings(database_url, tmp_path / "data", run_worker=True), clock) as api:
        yield api


def test_imap_attachment_over_the_limits_is_refused_but_the_mail_is_stored(live: Api, dovecot: DovecotServer) -> None:
    # given: a mailbox read by IMAP that takes only images and PDFs up to 64 KiB
    mail_channel(
        live,
        imap_host=dovecot.host,
        imap_port=dovecot.port,
        imap_tls="none",
        imap_username=dovecot.username,
        imap_password=dovecot.password,
        poll_interval=1,
        max_media_bytes=64 * 1024,
        media_types=["image/*", "application/pdf"],
    )
    raw = _mail_with(
        ("factura.pdf", PDF, "application/pdf"),
        ("hoja.csv", b"a,b\n1,2\n", "text/csv"),
        ("logo.png", PNG, "image/png"),
    )
    # when
    asyncio.run(dovecot.append(raw))
    # then: the mail is stored with every file listed; only the logo has bytes
    conversation = eventually(lambda: next(iter(live.conversations()), None))
    [message] = live.timeline(conversation["id"])
    assert message["body"] == "Van los archivos."
    pdf, sheet, logo = message["attachments"]
    assert [(a["status"], a["status_code"]) for a in (pdf, sheet, logo)] == [
        ("unavailable", "media_too_large"),
        ("unavailable", "media_type_not_allowed"),
        ("stored", None),
    ]
    assert live.get(logo["url"]).content == PNG
    assert live.get(sheet["url"], follow_redirects=False).status_code == 410
    # and: the mail is marked read: it was handled, not left to be fetched again
    eventually(lambda: all("\\Seen" in flags for flags in asyncio.run(dovecot.flags()).values()))
