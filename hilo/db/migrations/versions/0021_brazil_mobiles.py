"""Brazilian mobile numbers with their ninth digit: +55 AA NNNN-NNNN becomes +55 AA 9NNNN-NNNN.

WhatsApp names many Brazilian mobiles without the "9" they gained between 2012 and 2016
(wa_id 551187650000 for +55 11 98765-0000), so the same person's WhatsApp and SMS numbers
made two contacts. Phone normalisation now adds the digit; this rewrites the identities
stored before (eight digits after the area code, starting 6 to 9: landlines start 2 to 5
and are left alone).

- An identity whose new form nobody holds is rewritten. Its WhatsApp messages keep the
  wa_id they came from (`data.sender_address` of the latest one per channel account),
  because replies go back to the wa_id Meta gave.
- An identity whose new form another identity already holds is folded into that one: its
  messages and opt-outs move there and it is deleted. When the two belong to different
  contacts those contacts are merged first, as an agent's merge would (identities,
  conversations and messages move to the contact holding the nine-digit number, the
  other stays as a tombstone, and their unresolved conversations become one thread),
  unless they hold different verified identities of one kind: different people, left
  for an agent to look at.

Data only. The downgrade cannot undo it: the eight-digit form has not been a valid
Brazilian mobile number since 2016 and normalisation would turn it back at once, and a
merge done here is undone, like any other, by splitting the contact.

Revision ID: 0021_brazil_mobiles
Revises: 0020_account_lifecycle
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision: str = "0021_brazil_mobiles"
down_revision: str | Sequence[str] | None = "0020_account_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)

identities = sa.table(
    "identities",
    sa.column("id", sa.BigInteger),
    sa.column("contact_id", sa.BigInteger),
    sa.column("kind", sa.String),
    sa.column("value", sa.String),
    sa.column("verified", sa.Boolean),
    sa.column("opted_out", sa.Boolean),
    sa.column("merged_from_contact_id", sa.BigInteger),
)
messages = sa.table(
    "messages",
    sa.column("id", sa.BigInteger),
    sa.column("conversation_id", sa.BigInteger),
    sa.column("contact_id", sa.BigInteger),
    sa.column("identity_id", sa.BigInteger),
    sa.column("channel_account_id", sa.BigInteger),
    sa.column("direction", sa.String),
    sa.column("data", JSON),
    sa.column("created_at", UTC_TIME),
)
conversations = sa.table(
    "conversations",
    sa.column("id", sa.BigInteger),
    sa.column("contact_id", sa.BigInteger),
    sa.column("status", sa.String),
    sa.column("merged_into_id", sa.BigInteger),
    sa.column("resolved_at", UTC_TIME),
    sa.column("waiting_since", UTC_TIME),
    sa.column("message_count", sa.Integer),
    sa.column("last_message_at", UTC_TIME),
)
conversation_labels = sa.table(
    "conversation_labels", sa.column("conversation_id", sa.BigInteger), sa.column("label_id", sa.BigInteger)
)
contacts = sa.table(
    "contacts",
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("merged_into_id", sa.BigInteger),
)
opt_outs = sa.table("channel_opt_outs", sa.column("identity_id", sa.BigInteger), sa.column("channel_kind", sa.String))
channel_accounts = sa.table("channel_accounts", sa.column("id", sa.BigInteger), sa.column("kind", sa.String))

MOBILE_STARTS = "6789"


def current_form(value: str) -> str | None:
    """The nine-digit form of an eight-digit Brazilian mobile, or None for any other number."""
    digits = value.removeprefix("+")
    if not value.startswith("+55") or len(digits) != 12 or not digits.isdigit():
        return None
    area, subscriber = digits[2:4], digits[4:]
    if "0" in area or subscriber[0] not in MOBILE_STARTS:
        return None
    return f"+55{area}9{subscriber}"


def upgrade() -> None:
    conn = op.get_bind()
    candidates = conn.execute(
        sa.select(identities.c.id, identities.c.contact_id, identities.c.value).where(
            identities.c.kind == "phone", identities.c.value.like("+55%")
        )
    ).all()
    now = datetime.now(UTC)
    for row in candidates:
        new_value = current_form(row.value)
        if new_value is None:
            continue
        holder = conn.execute(
            sa.select(identities.c.id, identities.c.contact_id).where(
                identities.c.kind == "phone", identities.c.value == new_value
            )
        ).first()
        if holder is None:
            conn.execute(sa.update(identities).where(identities.c.id == row.id).values(value=new_value))
            _keep_sender_address(conn, row.id, row.value)
            continue
        if holder.contact_id != row.contact_id:
            if _verified_conflict(conn, row.contact_id, holder.contact_id):
                continue
            _merge_contacts(conn, source_id=row.contact_id, target_id=holder.contact_id, now=now)
        _keep_sender_address(conn, row.id, row.value)
        _fold_identity(conn, source_id=row.id, target_id=holder.id)


def _keep_sender_address(conn: Connection, identity_id: int, old_value: str) -> None:
    """Remember the wa_id on the latest WhatsApp message of each account, where replies look for it."""
    forms = {"whatsapp": old_value.removeprefix("+"), "twilio_whatsapp": old_value}
    latest = conn.execute(
        sa.select(sa.func.max(messages.c.id), channel_accounts.c.kind)
        .join(channel_accounts, channel_accounts.c.id == messages.c.channel_account_id)
        .where(
            messages.c.identity_id == identity_id,
            messages.c.direction == "inbound",
            channel_accounts.c.kind.in_(tuple(forms)),
        )
        .group_by(messages.c.channel_account_id, channel_accounts.c.kind)
    ).all()
    for message_id, kind in latest:
        data = conn.execute(sa.select(messages.c.data).where(messages.c.id == message_id)).scalar()
        data = {**(data or {}), "sender_address": forms[kind]}
        conn.execute(sa.update(messages).where(messages.c.id == message_id).values(data=data))


def _verified_conflict(conn: Connection, first_id: int, second_id: int) -> bool:
    """True when both contacts hold verified identities of one kind with different values."""
    rows = conn.execute(
        sa.select(identities.c.contact_id, identities.c.kind, identities.c.value).where(
            identities.c.contact_id.in_((first_id, second_id)), identities.c.verified.is_(True)
        )
    ).all()
    first: dict[str, set[str]] = {}
    second: dict[str, set[str]] = {}
    for row in rows:
        (first if row.contact_id == first_id else second).setdefault(row.kind, set()).add(row.value)
    return any(first[kind] != second[kind] for kind in first.keys() & second.keys())


def _merge_contacts(conn: Connection, *, source_id: int, target_id: int, now: datetime) -> None:
    """Move `source`'s identities, conversations and messages to `target`, as an agent's merge does."""
    conn.execute(
        sa.update(identities)
        .where(identities.c.contact_id == source_id)
        .values(contact_id=target_id, merged_from_contact_id=source_id)
    )
    unresolved = {
        row.contact_id: row.id
        for row in conn.execute(
            sa.select(conversations.c.id, conversations.c.contact_id)
            .where(
                conversations.c.contact_id.in_((source_id, target_id)),
                conversations.c.status != "resolved",
                conversations.c.merged_into_id.is_(None),
            )
            .order_by(conversations.c.id.desc())
        ).all()
    }
    if source_id in unresolved and target_id in unresolved:
        _merge_conversations(conn, source_id=unresolved[source_id], target_id=unresolved[target_id], now=now)
    conn.execute(sa.update(conversations).where(conversations.c.contact_id == source_id).values(contact_id=target_id))
    conn.execute(sa.update(messages).where(messages.c.contact_id == source_id).values(contact_id=target_id))
    source_name = conn.execute(sa.select(contacts.c.name).where(contacts.c.id == source_id)).scalar()
    conn.execute(
        sa.update(contacts).where(contacts.c.id == target_id, contacts.c.name.is_(None)).values(name=source_name)
    )
    conn.execute(sa.update(contacts).where(contacts.c.id == source_id).values(merged_into_id=target_id))


def _merge_conversations(conn: Connection, *, source_id: int, target_id: int, now: datetime) -> None:
    conn.execute(sa.update(messages).where(messages.c.conversation_id == source_id).values(conversation_id=target_id))
    labels = set(
        conn.execute(
            sa.select(conversation_labels.c.label_id).where(conversation_labels.c.conversation_id == source_id)
        ).scalars()
    )
    labels -= set(
        conn.execute(
            sa.select(conversation_labels.c.label_id).where(conversation_labels.c.conversation_id == target_id)
        ).scalars()
    )
    for label_id in sorted(labels):
        conn.execute(sa.insert(conversation_labels).values(conversation_id=target_id, label_id=label_id))
    conn.execute(sa.delete(conversation_labels).where(conversation_labels.c.conversation_id == source_id))
    conn.execute(
        sa.update(conversations)
        .where(conversations.c.id == source_id)
        .values(status="resolved", resolved_at=now, merged_into_id=target_id, waiting_since=None)
    )
    in_target = sa.select(messages.c.id).where(messages.c.conversation_id == target_id)
    latest = (
        sa.select(sa.func.max(messages.c.created_at)).where(messages.c.conversation_id == target_id).scalar_subquery()
    )
    conn.execute(
        sa.update(conversations)
        .where(conversations.c.id == target_id)
        .values(
            message_count=sa.select(sa.func.count()).select_from(in_target.subquery()).scalar_subquery(),
            last_message_at=sa.case(
                (latest > conversations.c.last_message_at, latest), else_=conversations.c.last_message_at
            ),
        )
    )


def _fold_identity(conn: Connection, *, source_id: int, target_id: int) -> None:
    """Make `target` the identity of everything `source` names, then delete `source`."""
    source = conn.execute(
        sa.select(identities.c.verified, identities.c.opted_out).where(identities.c.id == source_id)
    ).one()
    carried = {key: True for key in ("verified", "opted_out") if source._mapping[key]}
    if carried:
        conn.execute(sa.update(identities).where(identities.c.id == target_id).values(**carried))
    conn.execute(sa.update(messages).where(messages.c.identity_id == source_id).values(identity_id=target_id))
    held = set(conn.execute(sa.select(opt_outs.c.channel_kind).where(opt_outs.c.identity_id == target_id)).scalars())
    moving = sa.update(opt_outs).where(opt_outs.c.identity_id == source_id).values(identity_id=target_id)
    if held:
        moving = moving.where(opt_outs.c.channel_kind.not_in(sorted(held)))
    conn.execute(moving)
    conn.execute(sa.delete(opt_outs).where(opt_outs.c.identity_id == source_id))
    conn.execute(sa.delete(identities).where(identities.c.id == source_id))


def downgrade() -> None:
    """Nothing to undo: the eight-digit form is no longer a valid number (see the module docstring)."""
