"""The e-mail channel against real servers on loopback: Dovecot IMAP and aiosmtpd SMTP."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

import aioimaplib
import pytest

from hilo.channels.base import (
    IdentityKind,
    IdentityRef,
    OutboundAttachment,
    OutboundMessage,
    SendError,
)
from hilo.channels.email import ADAPTER, EmailAdapter, SmtpSendError
from hilo.channels.email_imap import ImapPoller, ImapState
from tests.channels.email_servers import (
    DovecotServer,
    SmtpServer,
    TlsFiles,
    dovecot_fixture,  # noqa: F401 - the "dovecot" fixture
    dovecot_instance_fixture,  # noqa: F401 - the "dovecot_instance" fixture
    dovecot_tls_fixture,  # noqa: F401 - the "dovecot_tls" fixture
    dovecot_tls_instance_fixture,  # noqa: F401 - the "dovecot_tls_instance" fixture
    smtp_server_fixture,  # noqa: F401 - the "smtp_server" fixture
    smtp_tls_server_fixture,  # noqa: F401 - the "smtp_tls_server" fixture
    tls_files_fixture,  # noqa: F401 - the "tls_files" fixture
)
from tests.fakes.server import free_port


def mail(message_id: str, subject: str = "Hola") -> bytes:
    return (
        f"From: Ana <ana@example.com>\r\nTo: agent@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nDate: Mon, 03 Mar 2025 10:00:00 +0000\r\n\r\n"
        "Necesito ayuda con mi pedido.\r\n"
    ).encode()


def message_id_of(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=policy.default)["Message-ID"])


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_poller_delivers_each_new_message_once_and_marks_it_seen(dovecot: DovecotServer) -> None:
    async def scenario() -> tuple[list[bytes], dict[int, set[str]]]:
        # given
        await dovecot.append(mail("<one@example.com>"))
        await dovecot.append(mail("<two@example.com>"))
        received: list[bytes] = []
        both = asyncio.Event()

        async def on_message(raw: bytes) -> None:
            received.append(raw)
            if len(received) == 2:
                both.set()

        poller = ImapPoller(dovecot.account(), on_message)
        # when
        task = asyncio.create_task(poller.run())
        await asyncio.wait_for(both.wait(), 10)
        await asyncio.sleep(0.5)  # room for a wrong second delivery
        await _stop(task)
        return received, await dovecot.flags()

    received, flags = asyncio.run(scenario())

    # then
    assert sorted(message_id_of(raw) for raw in received) == [
        "<one@example.com>",
        "<two@example.com>",
    ]
    assert len(flags) == 2
    assert all("\\Seen" in value for value in flags.values())


def test_message_whose_handler_fails_stays_unseen_and_comes_again(
    dovecot: DovecotServer,
) -> None:
    async def scenario() -> tuple[int, dict[int, set[str]], int, dict[int, set[str]], list[str]]:
        # given
        await dovecot.append(mail("<flaky@example.com>"))
        await dovecot.append(mail("<fine@example.com>"))
        calls: list[str] = []

        async def on_message(raw: bytes) -> None:
            message_id = message_id_of(raw)
            calls.append(message_id)
            if message_id == "<flaky@example.com>" and calls.count(message_id) == 1:
                raise RuntimeError("database is down")

        poller = ImapPoller(dovecot.account(), on_message)
        # when
        first = await poller.poll_once()
        flags_after_first = await dovecot.flags()
        second = await poller.poll_once()
        return first, flags_after_first, second, await dovecot.flags(), calls

    first, flags_after_first, second, flags_after_second, calls = asyncio.run(scenario())

    # then
    assert first == 1
    assert "\\Seen" not in flags_after_first[1]
    assert "\\Seen" in flags_after_first[2]
    assert second == 1
    assert calls == ["<flaky@example.com>", "<fine@example.com>", "<flaky@example.com>"]
    assert all("\\Seen" in value for value in flags_after_second.values())


def test_first_poll_skips_read_mail_later_polls_take_mail_read_elsewhere(
    dovecot: DovecotServer,
) -> None:
    async def scenario() -> tuple[list[str], list[str], ImapState]:
        # given: an old, already read message in the mailbox
        await dovecot.append(mail("<old@example.com>"), flags="\\Seen")
        received: list[str] = []

        async def on_message(raw: bytes) -> None:
            received.append(message_id_of(raw))

        poller = ImapPoller(dovecot.account(), on_message)
        await poller.poll_once()
        first_round = list(received)
        # when: new mail arrives and an agent reads it in their own client before we poll
        await dovecot.append(mail("<read-elsewhere@example.com>"))
        await dovecot.mark_seen(2)
        await poller.poll_once()
        return first_round, received, poller.state

    first_round, received, state = asyncio.run(scenario())

    # then
    assert first_round == []
    assert received == ["<read-elsewhere@example.com>"]
    assert state.last_uid == 2
    assert state.uidvalidity is not None


def test_idle_wakes_the_poller_on_new_mail(dovecot: DovecotServer) -> None:
    async def scenario() -> float:
        # given: a poller that would otherwise sleep ten minutes between polls
        await dovecot.append(mail("<first@example.com>"))
        arrived: asyncio.Queue[str] = asyncio.Queue()

        async def on_message(raw: bytes) -> None:
            await arrived.put(message_id_of(raw))

        poller = ImapPoller(dovecot.account(poll_interval=600), on_message)
        task = asyncio.create_task(poller.run())
        assert await asyncio.wait_for(arrived.get(), 10) == "<first@example.com>"
        await asyncio.sleep(0.5)  # the poller is now idling
        # when
        started = time.monotonic()
        await dovecot.append(mail("<second@example.com>"))
        assert await asyncio.wait_for(arrived.get(), 10) == "<second@example.com>"
        elapsed = time.monotonic() - started
        await _stop(task)
        return elapsed

    elapsed = asyncio.run(scenario())

    # then
    assert elapsed < 5


def test_poller_reconnects_after_the_server_drops_it(dovecot: DovecotServer) -> None:
    async def scenario() -> list[str]:
        # given: an idling poller
        arrived: asyncio.Queue[str] = asyncio.Queue()

        async def on_message(raw: bytes) -> None:
            await arrived.put(message_id_of(raw))

        poller = ImapPoller(dovecot.account(poll_interval=0.2), on_message)
        task = asyncio.create_task(poller.run())
        await dovecot.append(mail("<before@example.com>"))
        received = [await asyncio.wait_for(arrived.get(), 10)]
        await asyncio.sleep(0.3)
        # when: the server drops the connection, then new mail arrives
        await asyncio.to_thread(dovecot.kick)
        await dovecot.append(mail("<after@example.com>"))
        received.append(await asyncio.wait_for(arrived.get(), 10))
        await _stop(task)
        return received

    # then
    assert asyncio.run(scenario()) == ["<before@example.com>", "<after@example.com>"]


def test_a_stop_that_arrives_with_an_answer_still_stops_the_poller(
    dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: SELECT answers as the poller is told to stop, and the cancellation is lost
    # on the way (Python 3.11's asyncio.wait_for, used by aioimaplib, does that)
    select = aioimaplib.IMAP4.select
    selects = 0

    async def select_as_the_stop_arrives(client: aioimaplib.IMAP4, *args: object) -> aioimaplib.Response:
        nonlocal selects
        selects += 1
        response = await select(client, *args)
        if selects == 2:  # the SELECT before IDLE
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0)
        return response

    monkeypatch.setattr(aioimaplib.IMAP4, "select", select_as_the_stop_arrives)

    async def scenario() -> tuple[int, bool]:
        async def on_message(raw: bytes) -> None:
            pass

        poller = ImapPoller(dovecot.account(poll_interval=600), on_message)
        task = asyncio.create_task(poller.run())
        # when
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            await _stop(task)
        return selects, task in done and task.cancelled()

    # then: the poller stops rather than idling for half an hour
    assert asyncio.run(scenario()) == (2, True)


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_poller_speaks_starttls_and_implicit_tls(dovecot_tls: DovecotServer, tls_files: TlsFiles, mode: str) -> None:
    async def scenario() -> list[str]:
        # given
        await dovecot_tls.append(mail("<secure@example.com>"))
        port = dovecot_tls.port if mode == "starttls" else dovecot_tls.tls_port
        received: list[str] = []

        async def on_message(raw: bytes) -> None:
            received.append(message_id_of(raw))

        poller = ImapPoller(
            dovecot_tls.account(imap_tls=mode, imap_port=port),
            on_message,
            tls_context=tls_files.client_context(),
        )
        # when
        await poller.poll_once()
        return received

    # then
    assert asyncio.run(scenario()) == ["<secure@example.com>"]


def test_poller_refuses_an_untrusted_certificate(dovecot_tls: DovecotServer) -> None:
    # given: the system trust store, which does not know the test certificate
    async def on_message(raw: bytes) -> None:
        raise AssertionError("nothing may be read over an unverified connection")

    poller = ImapPoller(dovecot_tls.account(imap_tls="ssl", imap_port=dovecot_tls.tls_port), on_message)

    # when / then
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(poller.poll_once())


def outbound(**overrides: object) -> OutboundMessage:
    values: dict[str, object] = {
        "message_id": 42,
        "conversation_id": 7,
        "recipient": IdentityRef(IdentityKind.EMAIL, "ana@example.com"),
        "text": "Hola Ana, ya lo revisamos.",
        "idempotency_key": "message-42",
        "subject": "Re: Mi pedido",
        "in_reply_to": "<customer-2@mail.example.com>",
        "references": ("<customer-1@mail.example.com>", "<hilo.40.aa@hilo.example>"),
        "cc": ("boss@example.com",),
        "attachments": (OutboundAttachment("factura.pdf", "application/pdf", b"%PDF-1.4 test"),),
    }
    values.update(overrides)
    return OutboundMessage(**values)  # type: ignore[arg-type]


def test_send_delivers_message_with_threading_headers(smtp_server: SmtpServer) -> None:
    # given
    account = smtp_server.account()

    # when
    result = asyncio.run(ADAPTER.send(account, outbound()))

    # then
    [received] = smtp_server.handler.messages
    parsed = message_from_bytes(received.data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert received.mail_from == "support@hilo.example"
    assert sorted(received.rcpt_tos) == ["ana@example.com", "boss@example.com"]
    assert parsed["Message-ID"] == result.provider_message_id
    assert re.fullmatch(r"<hilo\.42\.[0-9a-f]{16}@hilo\.example>", result.provider_message_id)
    assert parsed["In-Reply-To"] == "<customer-2@mail.example.com>"
    assert parsed["References"] == (
        "<customer-1@mail.example.com> <hilo.40.aa@hilo.example> <customer-2@mail.example.com>"
    )
    assert parsed["Subject"] == "Re: Mi pedido [#7]"
    assert parsed["Cc"] == "boss@example.com"
    assert parsed["From"] == "Support <support@hilo.example>"
    assert parsed["Auto-Submitted"] == "no"
    body = parsed.get_body(("plain",))
    assert body is not None and "ya lo revisamos" in body.get_content()
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "factura.pdf"
    assert attachment.get_content() == b"%PDF-1.4 test"


def test_send_refused_with_5xx_is_not_retried(smtp_server: SmtpServer) -> None:
    # given
    smtp_server.handler.refuse_next("550 5.1.1 <ana@example.com>: Recipient address rejected: User unknown", at="rcpt")

    # when
    with pytest.raises(SmtpSendError) as caught:
        asyncio.run(ADAPTER.send(smtp_server.account(), outbound(cc=())))

    # then
    assert caught.value.retryable is False
    assert caught.value.code == "smtp_550"
    assert caught.value.reason == (
        "The recipient's mail server says this address does not exist; check the contact's e-mail address."
    )
    assert "User unknown" in caught.value.server_reply
    assert smtp_server.handler.messages == []


def test_send_deferred_with_4xx_is_retried(smtp_server: SmtpServer) -> None:
    # given
    smtp_server.handler.refuse_next("451 4.3.0 Mail server temporarily rejected message")

    # when
    with pytest.raises(SendError) as caught:
        asyncio.run(ADAPTER.send(smtp_server.account(), outbound()))

    # then
    assert caught.value.retryable is True
    assert caught.value.code == "smtp_451"


def test_send_to_unreachable_server_is_retried(smtp_server: SmtpServer) -> None:
    # given: a port nobody listens on
    account = smtp_server.account(smtp_port=free_port())

    # when
    with pytest.raises(SendError) as caught:
        asyncio.run(ADAPTER.send(account, outbound()))

    # then
    assert caught.value.retryable is True
    assert caught.value.code == "smtp_unreachable"


def test_send_over_starttls_and_implicit_tls(smtp_tls_server: SmtpServer, tls_files: TlsFiles) -> None:
    # given
    adapter = EmailAdapter(tls_context=tls_files.client_context())

    # when
    result = asyncio.run(adapter.send(smtp_tls_server.account(), outbound()))

    # then
    [received] = smtp_tls_server.handler.messages
    assert message_id_of(received.data) == result.provider_message_id
