"""login throttling (wrong passwords in a row, a temporary lock) and why a contact is blocked

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("last_failed_login_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("contact") as batch:
        batch.add_column(
            sa.Column(
                "blocked_reason",
                sqlmodel.sql.sqltypes.AutoString(length=200),
                nullable=False,
                server_default="",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("blocked_reason")
    with op.batch_alter_table("user") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("last_failed_login_at")
        batch.drop_column("failed_logins")
