"""interaction segments, call control events, supervisors' monitored queues

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-03 07:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "interactionsegment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("role", _str(length=16), nullable=False),
        sa.Column("mode", _str(length=16), nullable=True),
        sa.Column("leg_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", _str(length=64), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["leg_id"], ["callleg.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("interactionsegment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interactionsegment_interaction_id"), ["interaction_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interactionsegment_agent_id"), ["agent_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interactionsegment_ended_at"), ["ended_at"], unique=False
        )
    op.create_table(
        "controlevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("kind", _str(length=24), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recording_offset", sa.Float(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["segment_id"], ["interactionsegment.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("controlevent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_controlevent_interaction_id"), ["interaction_id"], unique=False
        )
    op.create_table(
        "supervisorqueue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["queue_id"], ["queue.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "queue_id"),
    )
    with op.batch_alter_table("supervisorqueue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_supervisorqueue_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("supervisorqueue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervisorqueue_user_id"))
    op.drop_table("supervisorqueue")
    with op.batch_alter_table("controlevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_controlevent_interaction_id"))
    op.drop_table("controlevent")
    with op.batch_alter_table("interactionsegment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interactionsegment_ended_at"))
        batch_op.drop_index(batch_op.f("ix_interactionsegment_agent_id"))
        batch_op.drop_index(batch_op.f("ix_interactionsegment_interaction_id"))
    op.drop_table("interactionsegment")
