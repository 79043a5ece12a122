"""The e-mail trigram index over `lower(value)`, so that it serves searches alone (PostgreSQL).

Over `value` itself, `gin_trgm_ops` also answers `value = x`, and the planner took it for
the exact look-ups of ingest (`kind = 'email' AND value = ANY(...)`, a batch's senders'
other addresses) over the unique B-tree on (kind, value): it costs a few units in its
estimate whatever the table holds, and 40 ms for 40 addresses among a few thousand once
the index has a pending list, where the B-tree takes a fraction of a millisecond. Over an
expression, the index is considered only for a query that names the same expression, as
the search's `lower(value) LIKE '%part%'` does. E-mail identities are stored lower-cased,
so what a search finds is unchanged.

Revision ID: 0024_email_trigrams_on_lower
Revises: 0023_search_indexes
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024_email_trigrams_on_lower"
down_revision: str | Sequence[str] | None = "0023_search_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_UP = [
    "DROP INDEX IF EXISTS ix_identities_email_trgm",
    "CREATE INDEX ix_identities_email_trgm ON identities USING gin (lower(value) gin_trgm_ops) WHERE kind = 'email'",
]
PG_DOWN = [
    "DROP INDEX IF EXISTS ix_identities_email_trgm",
    "CREATE INDEX ix_identities_email_trgm ON identities USING gin (value gin_trgm_ops) WHERE kind = 'email'",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_DOWN:
            op.execute(statement)
