"""Index a contact's campaign sends (KPI recipients and reply rate)

Revision ID: 0003
Revises: 0002

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SENDS = "campaign_id IS NOT NULL AND direction = 'outbound'"


def upgrade() -> None:
    op.create_index(
        "ix_messages_campaign_sends",
        "messages",
        ["contact_id", "timestamp"],
        unique=False,
        postgresql_where=sa.text(_SENDS),
        sqlite_where=sa.text(_SENDS),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_campaign_sends", table_name="messages")
