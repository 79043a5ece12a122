"""E-mail end to end: real Dovecot and SMTP servers, the mailbox service and the worker in the app."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hilo.clock import FrozenClock
from hilo.events.models import Event
from hilo.mailbox.models import MailboxState
from hilo.settings import Settings
from tests.channels.email_flow import (
    MAILGUN_KEY,
    customer_mail,
    mailgun_post,
    parsed,
    running_app,
)
from tests.channels.email_servers import (
    DovecotServer,
    SmtpServer,
    dovecot_fixture,  # noqa: F401 - the "dovecot" fixture
    dovecot_instance_fixture,  # noqa: F401 - the "dovecot_instance" fixture
    smtp_server_fixture,  # noqa: F401 - the "smtp_server" fixture
)
from tests.conftest import make_settings
from tests.support import Api, eventually

ANA = "Ana Pérez <ana@example.com>"


@pytest.fixture(name="live_settings")
def live_settings_fixture(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "data", run_worker=True)


@pytest.fixture(name="live")
def live_fixture(live_settings: Settings, clock: FrozenClock) -> Iterator[Api]:
    """Hilo with its in-process worker: outbox dispatcher and mailbox service running."""
    with running_app(live_settings, clock) as api:
        yield api


def email_channel(api: Api, dovecot: DovecotServer | None, smtp: SmtpServer, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "address": "support@example.com",
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_tls": "none",
        "mailgun_signing_key": MAILGUN_KEY,
    }
    if dovecot is not None:
        settings.update(
            imap_host=dovecot.host,
            imap_port=dovecot.port,
            imap_tls="none",
            imap_username=dovecot.username,
            imap_password=dovecot.password,
            poll_interval=1,
        )
    settings.update(extra)
    return api.ok(api.post("/api/v1/channels", {"kind": "email", "name": "Soporte", "settings": settings}), 201)


def append(dovecot: DovecotServer, raw: bytes, flags: str | None = None) -> None:
    asyncio.run(dovecot.append(raw, flags))


def conversation_of(api: Api, email: str) -> dict[str, Any] | None:
    for conversation in api.conversations():
        contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
        if any(i["kind"] == "email" and i["value"] == email for i in contact["identities"]):
            return conversation
    return None


def messages_where(api: Api, conversation_id: int, count: int) -> list[dict[str, Any]] | None:
    timeline = api.timeline(conversation_id)
    return timeline if len(timeline) >= count else None


def saved_cursor(api: Api, channel_id: int) -> int | None:
    """The last UID the mailbox service recorded as handled for this channel."""
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as session:
        return session.execute(
            select(MailboxState.last_uid).where(MailboxState.channel_account_id == channel_id)
        ).scalar()


def sent_message(api: Api, conversation_id: int, message_id: int) -> dict[str, Any] | None:
    message = next(m for m in api.timeline(conversation_id) if m["id"] == message_id)
    return message if message["status"] != "queued" else None


def test_mail_in_reply_out_and_the_thread_holds(live: Api, dovecot: DovecotServer, smtp_server: SmtpServer) -> None:
    # given: a support mailbox read by IMAP and sent from by SMTP
    email_channel(live, dovecot, smtp_server)
    html = (
        "<p>Necesito ayuda con el pedido 1234.</p><script>alert(1)</script>"
        '<img src="https://tracker.example.net/p.gif">'
    )
    text = (
        "Necesito ayuda con el pedido 1234.\n\n"
        "El lun, 2 mar 2026 a las 9:00, Tienda <support@example.com> escribió:\n> ¿En qué podemos ayudarle?\n"
    )
    # when: the customer writes, copying a colleague
    append(
        dovecot,
        customer_mail(ANA, "<ana-1@example.com>", "Pedido 1234", text, cc="Luis <luis@example.com>", html=html),
    )
    # then: the mailbox service ingests it into a conversation with the contact's e-mail identity
    conversation = eventually(lambda: conversation_of(live, "ana@example.com"))
    [inbound] = live.timeline(conversation["id"])
    assert inbound["body"] == "Necesito ayuda con el pedido 1234."
    assert "escribió" in inbound["data"]["quoted"]
    assert inbound["data"]["full_text"].startswith("Necesito ayuda") and "escribió" in inbound["data"]["full_text"]
    assert inbound["data"]["cc"] == ["luis@example.com"]
    assert "<script" not in inbound["html"] and "data-blocked-src" in inbound["html"]
    assert inbound["data"]["remote_images_blocked"] == 1
    assert inbound["subject"] == "Pedido 1234"
    eventually(lambda: "\\Seen" in asyncio.run(dovecot.flags())[1])

    # when: the agent replies, keeping the colleague in copy
    reply = live.ok(
        live.post(
            f"/api/v1/conversations/{conversation['id']}/messages",
            {"body": "Lo revisamos hoy.", "cc": ["Luis@Example.com"]},
        ),
        201,
    )
    # then: the worker sends it by SMTP with our Message-ID and the threading headers
    sent = eventually(lambda: sent_message(live, conversation["id"], reply["id"]))
    assert sent["status"] == "sent"
    [delivered] = eventually(lambda: smtp_server.handler.messages)
    mail = parsed(delivered.data)
    assert mail["Message-ID"] == sent["provider_message_id"]
    assert sent["provider_message_id"].startswith("<hilo.") and sent["provider_message_id"].endswith("@example.com>")
    assert mail["In-Reply-To"] == "<ana-1@example.com>"
    assert mail["References"] == "<ana-1@example.com>"
    assert mail["Subject"] == f"Pedido 1234 [#{conversation['id']}]"
    assert mail["Cc"] == "luis@example.com"
    assert delivered.rcpt_tos == ["ana@example.com", "luis@example.com"]

    # when: the customer answers our mail, and the colleague answers all
    ours = sent["provider_message_id"]
    append(
        dovecot,
        customer_mail(
            ANA,
            "<ana-2@example.com>",
            f"Re: Pedido 1234 [#{conversation['id']}]",
            "Gracias, espero noticias.",
            in_reply_to=ours,
            references=f"<ana-1@example.com> {ours}",
        ),
    )
    append(
        dovecot,
        customer_mail(
            "Luis <luis@example.com>",
            "<luis-1@example.com>",
            "Re: Pedido 1234",
            "Yo también lo necesito.",
            in_reply_to=ours,
            references=f"<ana-1@example.com> {ours}",
        ),
    )
    # then: both join the same conversation
    timeline = eventually(lambda: messages_where(live, conversation["id"], 4))
    assert [m["body"] for m in timeline] == [
        "Necesito ayuda con el pedido 1234.",
        "Lo revisamos hoy.",
        "Gracias, espero noticias.",
        "Yo también lo necesito.",
    ]

    # when: the agent answers again
    second = live.ok(
        live.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Ya está en camino."}), 201
    )
    eventually(lambda: sent_message(live, conversation["id"], second["id"]))
    # then: In-Reply-To names the latest customer mail; References the thread, oldest first
    latest = parsed(eventually(lambda: smtp_server.handler.messages[1:])[0].data)
    assert latest["In-Reply-To"] == "<luis-1@example.com>"
    assert latest["References"] == f"<ana-1@example.com> {ours} <ana-2@example.com> <luis-1@example.com>"

    # when: another person writes with our subject token but no References
    append(
        dovecot,
        customer_mail(
            "Pedro <pedro@example.com>",
            "<pedro-1@example.com>",
            f"Re: Pedido 1234 [#{conversation['id']}]",
            "¿Y mi pedido?",
        ),
    )
    # then: a subject token alone never joins another sender's conversation
    theirs = eventually(lambda: conversation_of(live, "pedro@example.com"))
    assert theirs["id"] != conversation["id"]
    assert [m["body"] for m in live.timeline(theirs["id"])] == ["¿Y mi pedido?"]
    assert len(live.timeline(conversation["id"])) == 5


def test_auto_replies_and_bounces_are_stored_never_answered(
    live: Api, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    # given: a conversation the agent answered
    email_channel(live, dovecot, smtp_server)
    append(dovecot, customer_mail(ANA, "<ana-1@example.com>", "Factura", "¿Me envían la factura?"))
    conversation = eventually(lambda: conversation_of(live, "ana@example.com"))
    reply = live.ok(live.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Adjunta va."}), 201)
    ours = eventually(lambda: sent_message(live, conversation["id"], reply["id"]))["provider_message_id"]

    # when: the customer's auto-responder answers, then the customer's server bounces our mail
    append(
        dovecot,
        customer_mail(
            ANA,
            "<auto-1@example.com>",
            "Respuesta automática: Factura",
            "Estoy de vacaciones hasta el lunes.",
            in_reply_to=ours,
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )
    bounce = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.example.net>\r\nDate: Mon, 02 Mar 2026 09:05:00 +0000\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
        "Final-Recipient: rfc822; ana@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <ana@example.com>: User unknown\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: support@example.com\r\nTo: ana@example.com\r\nMessage-ID: {ours}\r\nSubject: Factura\r\n\r\n"
        "--b--\r\n"
    ).encode()
    append(dovecot, bounce)

    # then: both are stored in the conversation and recognised as automatic
    timeline = eventually(lambda: messages_where(live, conversation["id"], 4))
    automatic = [m for m in timeline if m["auto_generated"]]
    assert [m["body"] for m in automatic] == [
        "Estoy de vacaciones hasta el lunes.",
        "Your message could not be delivered.",
    ]
    assert automatic[1]["data"]["bounce"]["status"] == "5.1.1"
    # and: the bounced message is marked failed with the server's reason
    failed = next(m for m in timeline if m["id"] == reply["id"])
    assert failed["status"] == "failed"
    assert failed["status_code"] == "5.1.1"
    assert failed["status_reason"] == "550 5.1.1 <ana@example.com>: User unknown"
    # and: nothing automatic makes the conversation wait for an answer
    assert live.ok(live.get(f"/api/v1/conversations/{conversation['id']}"))["waiting_since"] is None

    # when: the agent writes again
    again = live.ok(
        live.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "¿Tiene otra dirección?"}), 201
    )
    eventually(lambda: sent_message(live, conversation["id"], again["id"]))
    # then: it answers the customer's own mail, never the auto-reply or the bounce
    latest = parsed(eventually(lambda: smtp_server.handler.messages[1:])[0].data)
    assert latest["In-Reply-To"] == "<ana-1@example.com>"
    assert latest["References"] == "<ana-1@example.com>"


def test_unreadable_mail_is_kept_and_does_not_block_the_mailbox(
    live: Api, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    # given
    channel = email_channel(live, dovecot, smtp_server)
    garbage = b"Subject: no sender at all\r\nX-Junk: yes\r\n\r\n\xff\xfe not an e-mail\r\n"
    # when: a message with no sender arrives before a good one
    append(dovecot, garbage)
    append(dovecot, customer_mail(ANA, "<ana-1@example.com>", "Hola", "¿Siguen abiertos?"))
    # then: the good one is ingested
    conversation = eventually(lambda: conversation_of(live, "ana@example.com"))
    assert [m["body"] for m in live.timeline(conversation["id"])] == ["¿Siguen abiertos?"]
    # and: the bad one is marked read, so it is not fetched forever
    eventually(lambda: all("\\Seen" in flags for flags in asyncio.run(dovecot.flags()).values()))
    # and: its bytes are kept, and an event says where
    runtime = live.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as session:
        [event] = session.execute(select(Event).where(Event.kind == "mailbox.mail_rejected")).scalars().all()
    assert event.data["channel_account_id"] == channel["id"]
    assert event.data["code"] == "payload_malformed"
    assert runtime.storage.read(event.data["storage_key"]) == garbage


def test_restart_resumes_from_the_saved_cursor(
    live_settings: Settings, clock: FrozenClock, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    # given: a first run ingested one mail
    with running_app(live_settings, clock) as first:
        channel = email_channel(first, dovecot, smtp_server)
        append(dovecot, customer_mail(ANA, "<ana-1@example.com>", "Hola", "primero"))
        eventually(lambda: conversation_of(first, "ana@example.com"))
        eventually(lambda: saved_cursor(first, channel["id"]) == 1)
    # when: while Hilo is stopped a mail arrives and someone reads it in another mail client
    append(dovecot, customer_mail(ANA, "<ana-2@example.com>", "Hola", "segundo"), flags="(\\Seen)")
    with running_app(live_settings, clock, first) as second:
        # then: the restarted service takes it (a fresh start would skip read mail), once
        conversation = eventually(lambda: conversation_of(second, "ana@example.com"))
        timeline = eventually(lambda: messages_where(second, conversation["id"], 2))
        assert [m["body"] for m in timeline] == ["primero", "segundo"]
        assert len(second.conversations()) == 1


def test_enabling_disabling_and_fixing_a_mailbox_apply_without_restart(
    live: Api, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    # given: a mailbox configured with a wrong password
    channel = email_channel(live, dovecot, smtp_server, imap_password="wrong")
    append(dovecot, customer_mail(ANA, "<ana-1@example.com>", "Hola", "primero"))
    mailboxes = live.client.app.state.mailboxes  # type: ignore[attr-defined]
    eventually(lambda: mailboxes.polling() == {channel["id"]})
    # when: the admin fixes the password
    live.ok(live.patch(f"/api/v1/channels/{channel['id']}", {"settings": {"imap_password": dovecot.password}}))
    # then: the mail comes in, without a restart
    conversation = eventually(lambda: conversation_of(live, "ana@example.com"))

    # when: the admin disables the channel
    live.ok(live.patch(f"/api/v1/channels/{channel['id']}", {"enabled": False}))
    # then: its mailbox is no longer polled
    eventually(lambda: mailboxes.polling() == set())
    # when: mail arrives meanwhile and the admin enables the channel again
    append(dovecot, customer_mail(ANA, "<ana-2@example.com>", "Hola", "segundo"))
    live.ok(live.patch(f"/api/v1/channels/{channel['id']}", {"enabled": True}))
    # then: polling resumes and the mail is ingested
    timeline = eventually(lambda: messages_where(live, conversation["id"], 2))
    assert [m["body"] for m in timeline] == ["primero", "segundo"]


def test_mailgun_webhook_end_to_end(live: Api, smtp_server: SmtpServer) -> None:
    # given: a channel that receives through a Mailgun route and sends by SMTP
    channel = email_channel(live, None, smtp_server)
    # when: Mailgun forwards a customer's mail
    answer = mailgun_post(
        live,
        channel,
        {
            "sender": "ana@example.com",
            "From": ANA,
            "To": "support@example.com",
            "Subject": "Cambio de dirección",
            "Message-Id": "<mg-1@example.com>",
            "body-plain": "Quiero cambiar la dirección de envío.",
        },
    )
    # then
    assert answer.status_code == 200, answer.text
    assert answer.json()["messages"] == 1
    conversation = conversation_of(live, "ana@example.com")
    assert conversation is not None and conversation["subject"] == "Cambio de dirección"
    # when: the agent replies and the customer answers through Mailgun again
    reply = live.ok(
        live.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "¿Cuál es la nueva?"}), 201
    )
    ours = eventually(lambda: sent_message(live, conversation["id"], reply["id"]))["provider_message_id"]
    assert parsed(smtp_server.handler.messages[0].data)["In-Reply-To"] == "<mg-1@example.com>"
    answer = mailgun_post(
        live,
        channel,
        {
            "sender": "ana@example.com",
            "From": ANA,
            "Subject": "Re: Cambio de dirección",
            "Message-Id": "<mg-2@example.com>",
            "In-Reply-To": ours,
            "References": f"<mg-1@example.com> {ours}",
            "body-plain": "Calle Mayor 1, Madrid.",
        },
    )
    # then: the answer joins the conversation
    assert answer.status_code == 200, answer.text
    assert [m["body"] for m in live.timeline(conversation["id"])] == [
        "Quiero cambiar la dirección de envío.",
        "¿Cuál es la nueva?",
        "Calle Mayor 1, Madrid.",
    ]
    # and: it quotes the mail its In-Reply-To names, not another one of its References
    assert live.timeline(conversation["id"])[-1]["reply_to_message_id"] == reply["id"]
    # and: a channel without an IMAP host is not polled
    assert live.client.app.state.mailboxes.polling() == set()  # type: ignore[attr-defined]


def test_cc_is_refused_when_invalid_or_off_email(live: Api, smtp_server: SmtpServer) -> None:
    # given
    channel = email_channel(live, None, smtp_server)
    mailgun_post(
        live,
        channel,
        {"sender": "ana@example.com", "From": ANA, "Message-Id": "<mg-1@example.com>", "body-plain": "Hola"},
    )
    conversation = conversation_of(live, "ana@example.com")
    assert conversation is not None
    # when
    answer = live.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        {"body": "Hola", "cc": ["luis@example.com\r\nBcc: all@example.com"]},
    )
    # then: a header injection never reaches the outbox
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "cc_invalid"
    assert len(live.timeline(conversation["id"])) == 1


def test_smtp_refusal_reaches_the_agent_with_the_servers_words(live: Api, smtp_server: SmtpServer) -> None:
    # given: a conversation that came in through Mailgun
    channel = email_channel(live, None, smtp_server)
    mailgun_post(
        live,
        channel,
        {"sender": "ana@example.com", "From": ANA, "Message-Id": "<mg-1@example.com>", "body-plain": "Hola"},
    )
    conversation = conversation_of(live, "ana@example.com")
    assert conversation is not None
    smtp_server.handler.refuse_next("550 5.1.1 <ana@example.com>: Recipient address rejected: User unknown", at="rcpt")
    # when
    reply = live.ok(live.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Hola Ana"}), 201)
    failed = eventually(lambda: sent_message(live, conversation["id"], reply["id"]))
    # then: the agent sees what to do, and the mail server's own reply
    assert failed["status"] == "failed"
    assert failed["status_code"] == "smtp_550"
    assert failed["status_reason"].startswith("The recipient's mail server says this address does not exist")
    assert failed["data"]["status_detail"] == "550 5.1.1 <ana@example.com>: Recipient address rejected: User unknown"
