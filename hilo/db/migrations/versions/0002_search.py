"""Full-text search indexes: PostgreSQL GIN over tsvector, SQLite FTS5 tables.

Revision ID: 0002_search
Revises: 0001_core
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_search"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The 'simple' configuration (no stemming) matches Spanish and English text alike; the
# query side uses the same expression so the planner picks these indexes.
PG_UP = [
    "CREATE INDEX ix_messages_body_fts ON messages USING gin (to_tsvector('simple'::regconfig, coalesce(body, '')))",
    "CREATE INDEX ix_contacts_name_fts ON contacts USING gin (to_tsvector('simple'::regconfig, coalesce(name, '')))",
    "CREATE INDEX ix_identities_value_prefix ON identities (value varchar_pattern_ops)",
]
PG_DOWN = [
    "DROP INDEX IF EXISTS ix_identities_value_prefix",
    "DROP INDEX IF EXISTS ix_contacts_name_fts",
    "DROP INDEX IF EXISTS ix_messages_body_fts",
]

SQLITE_UP = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, body) VALUES (new.id, coalesce(new.body, '')); END",
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, body) "
    "VALUES ('delete', old.id, coalesce(old.body, '')); END",
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF body ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, body) "
    "VALUES ('delete', old.id, coalesce(old.body, '')); "
    "INSERT INTO messages_fts(rowid, body) VALUES (new.id, coalesce(new.body, '')); END",
    "CREATE VIRTUAL TABLE contacts_fts USING fts5(name, content='contacts', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER contacts_fts_ai AFTER INSERT ON contacts BEGIN "
    "INSERT INTO contacts_fts(rowid, name) VALUES (new.id, coalesce(new.name, '')); END",
    "CREATE TRIGGER contacts_fts_ad AFTER DELETE ON contacts BEGIN "
    "INSERT INTO contacts_fts(contacts_fts, rowid, name) "
    "VALUES ('delete', old.id, coalesce(old.name, '')); END",
    "CREATE TRIGGER contacts_fts_au AFTER UPDATE OF name ON contacts BEGIN "
    "INSERT INTO contacts_fts(contacts_fts, rowid, name) "
    "VALUES ('delete', old.id, coalesce(old.name, '')); "
    "INSERT INTO contacts_fts(rowid, name) VALUES (new.id, coalesce(new.name, '')); END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS contacts_fts_au",
    "DROP TRIGGER IF EXISTS contacts_fts_ad",
    "DROP TRIGGER IF EXISTS contacts_fts_ai",
    "DROP TABLE IF EXISTS contacts_fts",
    "DROP TRIGGER IF EXISTS messages_fts_au",
    "DROP TRIGGER IF EXISTS messages_fts_ad",
    "DROP TRIGGER IF EXISTS messages_fts_ai",
    "DROP TABLE IF EXISTS messages_fts",
]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _run(PG_UP)
    elif dialect == "sqlite":
        _run(SQLITE_UP)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _run(PG_DOWN)
    elif dialect == "sqlite":
        _run(SQLITE_DOWN)
