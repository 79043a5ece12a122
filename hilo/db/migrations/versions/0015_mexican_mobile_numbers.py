"""Mexican mobile numbers in their current form: +521XXXXXXXXXX becomes +52XXXXXXXXXX.

WhatsApp names Mexican mobiles with the "1" the numbering plan dropped in 2019. Hilo
could not normalise those wa_ids and kept them as given, so they never met the same
person's SMS number. Phone normalisation now drops the "1"; this rewrites the identities
stored before, so a returning WhatsApp customer still finds their contact. An identity
whose new form another identity already holds (the same person reached us by SMS too) is
left alone: its contact and the other are two contacts an agent can merge.

Data only; the downgrade keeps the rewritten numbers, which are the valid ones.

Revision ID: 0015_mexican_mobile_numbers
Revises: 0014_outbox_parts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_mexican_mobile_numbers"
down_revision: str | Sequence[str] | None = "0014_outbox_parts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            """
            UPDATE identities SET value = '+52' || substr(value, 5)
            WHERE kind = 'phone'
              AND value LIKE '+521%'
              AND length(value) = 14
              AND NOT EXISTS (
                SELECT 1 FROM identities AS taken
                WHERE taken.kind = 'phone' AND taken.value = '+52' || substr(identities.value, 5)
              )
            """
        )
    )


def downgrade() -> None:
    """Nothing to undo: the old form was never a valid number."""
