"""The mailbox service: one worker polls each mailbox, a dead worker's mailbox moves on, cursors resume."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from hilo.channels.actions import create_channel_account
from hilo.channels.email_imap import ImapState
from hilo.clock import FrozenClock
from hilo.ingest.queue import IngestQueue
from hilo.mailbox.actions import claim_mailbox, release_mailbox, save_cursor
from hilo.mailbox.service import LEASE, MailboxService
from hilo.runtime import Runtime
from hilo.settings import Settings
from tests.channels.email_servers import (
    DovecotServer,
    dovecot_fixture,  # noqa: F401 - the "dovecot" fixture
    dovecot_instance_fixture,  # noqa: F401 - the "dovecot_instance" fixture
)


@pytest.fixture(name="runtime")
def runtime_fixture(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = Runtime(settings, clock=clock)
    yield runtime
    runtime.close()


@pytest.fixture(name="ingest")
def ingest_fixture(runtime: Runtime) -> Iterator[IngestQueue]:
    queue = IngestQueue(runtime)
    queue.start()
    yield queue
    queue.stop()


def mailbox_channel(runtime: Runtime, dovecot: DovecotServer) -> int:
    with runtime.transaction() as tx:
        account = create_channel_account(
            tx,
            "email",
            "Soporte",
            {
                "address": dovecot.username,
                "imap_host": dovecot.host,
                "imap_port": dovecot.port,
                "imap_tls": "none",
                "imap_password": dovecot.password,
            },
        )
        return account.id


def test_one_worker_polls_a_mailbox_at_a_time(runtime: Runtime, ingest: IngestQueue, dovecot: DovecotServer) -> None:
    # given: two workers and one mailbox
    account_id = mailbox_channel(runtime, dovecot)

    async def scenario() -> tuple[tuple[set[int], set[int]], tuple[set[int], set[int]]]:
        first = MailboxService(runtime, ingest, owner="worker-a")
        second = MailboxService(runtime, ingest, owner="worker-b")
        # when: both look for mailboxes
        await first.scan()
        await second.scan()
        both = (first.polling(), second.polling())
        # when: the first stops cleanly
        await first.close()
        await second.scan()
        after = (first.polling(), second.polling())
        await second.close()
        return both, after

    both, after = asyncio.run(scenario())

    # then: one polls it at a time, and the other takes over at once
    assert both == ({account_id}, set())
    assert after == (set(), {account_id})


def test_a_stalled_workers_mailbox_moves_when_its_lease_runs_out(
    runtime: Runtime, ingest: IngestQueue, dovecot: DovecotServer, clock: FrozenClock
) -> None:
    # given: the first worker polls the mailbox, then stops renewing (hung, cut off)
    account_id = mailbox_channel(runtime, dovecot)

    async def scenario() -> tuple[set[int], set[int], set[int]]:
        first = MailboxService(runtime, ingest, owner="worker-a")
        second = MailboxService(runtime, ingest, owner="worker-b")
        await first.scan()
        # when: the second looks before and after the lease has run out
        await second.scan()
        before = second.polling()
        clock.advance(seconds=LEASE.total_seconds() + 1)
        await second.scan()
        taken = second.polling()
        # when: the first comes back
        await first.scan()
        given_up = first.polling()
        await first.close()
        await second.close()
        return before, taken, given_up

    before, taken, given_up = asyncio.run(scenario())

    # then
    assert before == set()
    assert taken == {account_id}
    assert given_up == set()


def test_cursor_resumes_for_the_same_mailbox_and_restarts_for_another(runtime: Runtime) -> None:
    # given: a worker that got to UID 42 and stopped
    with runtime.transaction() as tx:
        account_id = create_channel_account(
            tx, "email", "Soporte", {"address": "soporte@example.com", "imap_host": "imap.example.com"}
        ).id
    mailbox = "soporte@example.com@imap.example.com:993/INBOX"
    with runtime.transaction() as tx:
        fresh = claim_mailbox(tx, account_id, mailbox, "worker-a", LEASE)
        saved = save_cursor(tx, account_id, "worker-a", ImapState(uidvalidity=7, last_uid=42))
        release_mailbox(tx, account_id, "worker-a", None)
    # when: another worker takes the same mailbox; a third one writes without the lease
    with runtime.transaction() as tx:
        resumed = claim_mailbox(tx, account_id, mailbox, "worker-b", LEASE)
        intruder = save_cursor(tx, account_id, "worker-c", ImapState(uidvalidity=7, last_uid=1))
        blocked = claim_mailbox(tx, account_id, mailbox, "worker-c", LEASE)
        release_mailbox(tx, account_id, "worker-b", None)
    # when: the account is pointed at another server
    with runtime.transaction() as tx:
        moved = claim_mailbox(
            tx, account_id, mailbox.replace("imap.example.com", "mail.example.org"), "worker-b", LEASE
        )

    # then
    assert fresh == ImapState() and saved is True
    assert resumed == ImapState(uidvalidity=7, last_uid=42)
    assert intruder is False and blocked is None
    assert moved == ImapState()
