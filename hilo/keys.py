"""Secrets at rest: re-encrypt every stored secret with the first key (key rotation, for `hilo secrets rotate`)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

from hilo.automation.models import AutomationRule
from hilo.channels.models import ChannelAccount
from hilo.db.encryption import SecretsUnreadable
from hilo.errors import secrets_unreadable
from hilo.runtime import Tx

log = logging.getLogger(__name__)


def rotate_secrets(tx: Tx) -> dict[str, int]:
    """Re-encrypt every channel account's secrets and every rule's steps with the first key.

    Run once all processes use the new key list (new key first, old keys after); the old
    keys can then be removed. Nothing is re-encrypted unless every value could be read.
    """
    counts = {}
    try:
        for model, column in ((ChannelAccount, "secrets"), (AutomationRule, "actions")):
            rows = tx.session.execute(select(model).order_by(model.id)).scalars().all()
            for row in rows:
                # Unchanged values are not written back unless flagged: the write encrypts anew.
                flag_modified(row, column)
            counts[model.__tablename__] = len(rows)
        tx.session.flush()
    except SecretsUnreadable as exc:
        raise secrets_unreadable() from exc
    log.info("secrets re-encrypted with the first key: %s", counts)
    return counts
