"""canned responses (per queue, or global), inserted by agents with /shortcut

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cannedresponse",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("shortcut", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["queue_id"], ["queue.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("queue_id", "shortcut"),
    )
    with op.batch_alter_table("cannedresponse", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cannedresponse_queue_id"), ["queue_id"], unique=False)
        batch_op.create_index(
            "uq_cannedresponse_global_shortcut",
            ["shortcut"],
            unique=True,
            sqlite_where=sa.text("queue_id IS NULL"),
            postgresql_where=sa.text("queue_id IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("cannedresponse", schema=None) as batch_op:
        batch_op.drop_index("uq_cannedresponse_global_shortcut")
        batch_op.drop_index(batch_op.f("ix_cannedresponse_queue_id"))
    op.drop_table("cannedresponse")
