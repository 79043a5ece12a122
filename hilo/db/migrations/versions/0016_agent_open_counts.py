"""Each agent's open conversations per kind of channel, kept by the database.

A routing decision compares every online member's load. Counting each member's open
conversations at decision time costs an index probe per member (about 1 ms for 200
agents on PostgreSQL); these counters make the candidate query a scan of the team's
routing rows. Triggers on `conversations` keep them: a conversation counts for its
assignee while it is open, in the class of its last channel (voice: call; e-mail and web
forms: email; anything else or none: chat). The mapping is frozen here as it was when
written (hilo.routing.capacity); changing it there needs a migration that replaces the
triggers. Rows of `routing_agents` created later are counted when created
(hilo.routing.actions.agent_row).

Revision ID: 0016_agent_open_counts
Revises: 0015_mexican_mobile_numbers
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_agent_open_counts"
down_revision: str | Sequence[str] | None = "0015_mexican_mobile_numbers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLASSES = ("call", "chat", "email")
CLASS_OF_KIND = "CASE WHEN kind = 'voice' THEN 'call' WHEN kind IN ('email', 'webform') THEN 'email' ELSE 'chat' END"


def _class_of(account_id: str) -> str:
    return f"COALESCE((SELECT {CLASS_OF_KIND} FROM channel_accounts WHERE id = {account_id}), 'chat')"


def _backfill() -> str:
    counts = ", ".join(
        f"""open_{klass} = (SELECT count(*) FROM conversations c
            WHERE c.assignee_id = routing_agents.agent_id AND c.status = 'open'
              AND {_class_of("c.last_channel_account_id")} = '{klass}')"""
        for klass in CLASSES
    )
    return f"UPDATE routing_agents SET {counts}"


POSTGRESQL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION hilo_agent_open_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    klass text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'open' AND OLD.assignee_id IS NOT NULL THEN
        klass := {_class_of("OLD.last_channel_account_id")};
        UPDATE routing_agents SET
            open_call = open_call - (klass = 'call')::int,
            open_chat = open_chat - (klass = 'chat')::int,
            open_email = open_email - (klass = 'email')::int
        WHERE agent_id = OLD.assignee_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status = 'open' AND NEW.assignee_id IS NOT NULL THEN
        klass := {_class_of("NEW.last_channel_account_id")};
        UPDATE routing_agents SET
            open_call = open_call + (klass = 'call')::int,
            open_chat = open_chat + (klass = 'chat')::int,
            open_email = open_email + (klass = 'email')::int
        WHERE agent_id = NEW.assignee_id;
    END IF;
    RETURN NULL;
END
$$
"""
CHANGED = (
    "OLD.status IS DISTINCT FROM NEW.status OR OLD.assignee_id IS DISTINCT FROM NEW.assignee_id"
    " OR OLD.last_channel_account_id IS DISTINCT FROM NEW.last_channel_account_id"
)
POSTGRESQL_TRIGGERS = {
    "trg_conversations_open_counts_insert": "AFTER INSERT ON conversations FOR EACH ROW"
    " WHEN (NEW.status = 'open' AND NEW.assignee_id IS NOT NULL)",
    "trg_conversations_open_counts_update": "AFTER UPDATE OF status, assignee_id, last_channel_account_id"
    f" ON conversations FOR EACH ROW WHEN ({CHANGED})",
    "trg_conversations_open_counts_delete": "AFTER DELETE ON conversations FOR EACH ROW"
    " WHEN (OLD.status = 'open' AND OLD.assignee_id IS NOT NULL)",
}


def _sqlite_step(row: str, sign: str) -> str:
    klass = _class_of(f"{row}.last_channel_account_id")
    counts = ", ".join(f"open_{k} = open_{k} {sign} ({klass} = '{k}')" for k in CLASSES)
    return (
        f"UPDATE routing_agents SET {counts} "
        f"WHERE agent_id = {row}.assignee_id AND {row}.status = 'open' AND {row}.assignee_id IS NOT NULL;"
    )


SQLITE_TRIGGERS = {
    "trg_conversations_open_counts_insert": f"AFTER INSERT ON conversations BEGIN {_sqlite_step('NEW', '+')} END",
    "trg_conversations_open_counts_update": (
        "AFTER UPDATE OF status, assignee_id, last_channel_account_id ON conversations WHEN "
        + CHANGED.replace("IS DISTINCT FROM", "IS NOT")
        + f" BEGIN {_sqlite_step('OLD', '-')} {_sqlite_step('NEW', '+')} END"
    ),
    "trg_conversations_open_counts_delete": f"AFTER DELETE ON conversations BEGIN {_sqlite_step('OLD', '-')} END",
}


def upgrade() -> None:
    with op.batch_alter_table("routing_agents") as batch:
        for klass in CLASSES:
            batch.add_column(sa.Column(f"open_{klass}", sa.Integer(), nullable=False, server_default="0"))
    op.execute(_backfill())
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        for name, definition in POSTGRESQL_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {definition} EXECUTE FUNCTION hilo_agent_open_counts()")
    else:
        for name, definition in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {definition}")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in POSTGRESQL_TRIGGERS:
        op.execute(
            f"DROP TRIGGER IF EXISTS {name} ON conversations" if postgresql else f"DROP TRIGGER IF EXISTS {name}"
        )
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS hilo_agent_open_counts()")
    with op.batch_alter_table("routing_agents") as batch:
        for klass in CLASSES:
            batch.drop_column(f"open_{klass}")
