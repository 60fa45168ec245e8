"""survey answers per interaction (statistics per survey question)

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-03 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "surveyanswer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("dialog", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("dialog_version", sa.Integer(), nullable=True),
        sa.Column("survey", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("question", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("scale_min", sa.Integer(), nullable=True),
        sa.Column("scale_max", sa.Integer(), nullable=True),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("value_number", sa.Float(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["queue_id"], ["queue.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id", "survey", "question"),
    )
    with op.batch_alter_table("surveyanswer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_surveyanswer_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_surveyanswer_asked_at"), ["asked_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_surveyanswer_interaction_id"), ["interaction_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_surveyanswer_queue_id"), ["queue_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_surveyanswer_survey"), ["survey"], unique=False)


def downgrade() -> None:
    op.drop_table("surveyanswer")
