"""reports: an index on the interactions' creation time (repeat contacts read a window)

Revision ID: 0024
Revises: 0020
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_interaction_created_at", "interaction", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_interaction_created_at", table_name="interaction")
