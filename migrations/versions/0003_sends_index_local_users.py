"""Index a contact's campaign sends (KPI recipients and reply rate); local CRM users

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
    op.create_table(
        "local_crm_users",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("local_crm_users")
    op.drop_index("ix_messages_campaign_sends", table_name="messages")
