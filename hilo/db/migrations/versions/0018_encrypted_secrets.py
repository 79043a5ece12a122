"""Channel secrets and rule steps (a webhook step holds its signing secret) encrypted at rest.

Each value becomes a JSON string holding a Fernet token (hilo.db.encryption.EncryptedJson),
so the columns keep their type and no schema changes. The keys are resolved as the
application resolves them (HILO_SECRET_KEYS, else the key derived from the app secret key),
and only when there is a row to convert. Downgrade decrypts them again.

Revision ID: 0018_encrypted_secrets
Revises: 0017_agent_sessions
"""

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hilo.db.encryption import Keyring, resolve_keys

revision: str = "0018_encrypted_secrets"
down_revision: str | Sequence[str] | None = "0017_agent_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("channel_accounts", "secrets"), ("automation_rules", "actions"))
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _keyring() -> Keyring:
    from hilo.settings import load_settings

    settings = load_settings()
    return Keyring(resolve_keys(settings.secret_keys, settings.secret_key))


def _convert(wanted: Callable[[Any], bool], change: Callable[[Keyring, Any], Any]) -> None:
    bind = op.get_bind()
    keyring: Keyring | None = None
    for table_name, column_name in COLUMNS:
        table = sa.table(table_name, sa.column("id", sa.BigInteger()), sa.column(column_name, JSON))
        column = table.c[column_name]
        rows = bind.execute(sa.select(table.c.id, column).where(column.is_not(None))).all()
        for row_id, value in rows:
            if not wanted(value):
                continue
            keyring = keyring or _keyring()
            bind.execute(sa.update(table).where(table.c.id == row_id).values({column_name: change(keyring, value)}))


def upgrade() -> None:
    _convert(lambda value: not isinstance(value, str), lambda keyring, value: keyring.encrypt(orjson.dumps(value)))


def downgrade() -> None:
    _convert(lambda value: isinstance(value, str), lambda keyring, value: orjson.loads(keyring.decrypt(value)))
