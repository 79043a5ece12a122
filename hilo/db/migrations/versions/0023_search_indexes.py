"""Search by part of an e-mail address and by a phone number without its country code (PostgreSQL).

A trigram GIN index serves `value LIKE '%fragment%'` over e-mail identities ("liam.33",
"example.net"); a B-tree over the reversed value serves "ends with these digits" over
phone identities, so "600 000 033" or "0034 600 000 033" finds "+34600000033" whatever the
installation's default region. SQLite scans the identities instead and needs nothing.

Revision ID: 0023_search_indexes
Revises: 0022_channel_health
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023_search_indexes"
down_revision: str | Sequence[str] | None = "0022_channel_health"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# pg_trgm is a trusted extension (PostgreSQL 13 and later): the database owner may create it.
PG_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_identities_email_trgm ON identities USING gin (value gin_trgm_ops) WHERE kind = 'email'",
    "CREATE INDEX ix_identities_phone_suffix ON identities (reverse(value) text_pattern_ops) WHERE kind = 'phone'",
]
# The extension stays: other objects of the database may have come to use it.
PG_DOWN = [
    "DROP INDEX IF EXISTS ix_identities_phone_suffix",
    "DROP INDEX IF EXISTS ix_identities_email_trgm",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_DOWN:
            op.execute(statement)
