"""Mailbox actions: take, keep and give back a mailbox's lease, save its cursor, record rejected mail.

Saving the cursor and renewing a lease record no event, like the outbox dispatcher's job
claims: they are bookkeeping that runs every few seconds, not something an admin needs
in the audit log. Taking a mailbox, giving it back and refusing a message are recorded.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from hilo import jobs
from hilo.channels.email_imap import ImapState
from hilo.mailbox.models import MailboxState
from hilo.runtime import Tx


def _ensure_row(tx: Tx, account_id: int, mailbox: str) -> None:
    """Create the account's state row if it is missing; a concurrent creator wins quietly."""
    dialect = postgresql if tx.session.get_bind().dialect.name == "postgresql" else sqlite
    tx.session.execute(
        dialect.insert(MailboxState)
        .values(channel_account_id=account_id, mailbox=mailbox, last_uid=0, updated_at=tx.now)
        .on_conflict_do_nothing(index_elements=["channel_account_id"])
    )


def _take(tx: Tx, account_id: int, mailbox: str, owner: str, lease: timedelta) -> ImapState | None:
    """Hold the lease until now + `lease` if it is free, expired or ours; return the cursor."""
    _ensure_row(tx, account_id, mailbox)
    row = jobs.hold_lease(
        tx.session,
        MailboxState,
        MailboxState.channel_account_id == account_id,
        owner,
        tx.now,
        tx.now + lease,
        (MailboxState.mailbox, MailboxState.uidvalidity, MailboxState.last_uid),
    )
    if row is None:
        return None
    if row.mailbox != mailbox:
        # The account now points at another server, user or folder: its UIDs are not ours.
        tx.session.execute(
            update(MailboxState)
            .where(MailboxState.channel_account_id == account_id)
            .values(mailbox=mailbox, uidvalidity=None, last_uid=0)
        )
        return ImapState()
    return ImapState(uidvalidity=row.uidvalidity, last_uid=row.last_uid)


def claim_mailbox(tx: Tx, account_id: int, mailbox: str, owner: str, lease: timedelta) -> ImapState | None:
    """Take the mailbox for `owner` unless another worker holds an unexpired lease.

    Returns the saved cursor to resume from, or None when another worker polls it.
    """
    state = _take(tx, account_id, mailbox, owner, lease)
    if state is not None:
        tx.record(
            "mailbox.claimed",
            data={"channel_account_id": account_id, "owner": owner, "last_uid": state.last_uid},
        )
    return state


def renew_mailbox(tx: Tx, account_id: int, mailbox: str, owner: str, lease: timedelta) -> bool:
    """Extend `owner`'s lease; False when it expired and another worker took the mailbox."""
    return _take(tx, account_id, mailbox, owner, lease) is not None


def save_cursor(tx: Tx, account_id: int, owner: str, state: ImapState) -> bool:
    """Store how far `owner` got; ignored (False) once another worker holds the mailbox."""
    result = tx.session.execute(
        update(MailboxState)
        .where(MailboxState.channel_account_id == account_id, MailboxState.lease_owner == owner)
        .values(uidvalidity=state.uidvalidity, last_uid=state.last_uid, updated_at=tx.now)
        .returning(MailboxState.channel_account_id)
    ).first()
    return result is not None


def release_mailbox(tx: Tx, account_id: int, owner: str, state: ImapState | None) -> None:
    """Give the mailbox back (saving the cursor when given) so another worker can take it at once."""
    values: dict[str, object] = {"lease_owner": None, "lease_until": None, "updated_at": tx.now}
    if state is not None:
        values.update(uidvalidity=state.uidvalidity, last_uid=state.last_uid)
    released = tx.session.execute(
        update(MailboxState)
        .where(MailboxState.channel_account_id == account_id, MailboxState.lease_owner == owner)
        .values(**values)
        .returning(MailboxState.channel_account_id)
    ).first()
    if released is not None:
        tx.record("mailbox.released", data={"channel_account_id": account_id, "owner": owner})


def record_rejected_mail(tx: Tx, account_id: int, code: str, reason: str, storage_key: str, size: int) -> None:
    """Record a fetched message that could not be read as e-mail; its bytes are kept in storage."""
    tx.record(
        "mailbox.mail_rejected",
        data={
            "channel_account_id": account_id,
            "code": code,
            "reason": reason,
            "storage_key": storage_key,
            "size": size,
        },
    )
