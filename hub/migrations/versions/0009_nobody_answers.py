"""when nobody can answer: voicemail, queued callbacks, calls out, retention

Revision ID: 0009
Revises: 0014
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_wait_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("max_wait_action", S(length=16), nullable=False, server_default="voicemail")
        )
        batch_op.add_column(
            sa.Column("callback_key", S(length=1), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("callback_retry_seconds", sa.Integer(), nullable=False, server_default="300")
        )
        batch_op.add_column(
            sa.Column("callback_max_tries", sa.Integer(), nullable=False, server_default="3")
        )
        batch_op.add_column(
            sa.Column("onduty_number", S(length=32), nullable=False, server_default="")
        )
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", TS, nullable=True))
        batch_op.create_index(batch_op.f("ix_recording_deleted_at"), ["deleted_at"], unique=False)

    op.create_table(
        "voicemail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=True),
        sa.Column("inbox_id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("reason", S(length=32), nullable=False),
        sa.Column("ended_by", S(length=16), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["inbox_id"], ["inbox.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["queue_id"], ["queue.id"]),
        sa.ForeignKeyConstraint(["recording_id"], ["recording.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("voicemail", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_voicemail_inbox_id"), ["inbox_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_voicemail_interaction_id"), ["interaction_id"], unique=False
        )

    op.create_table(
        "callbackrequest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("number", S(length=32), nullable=False),
        sa.Column("state", S(length=16), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("max_tries", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["queue_id"], ["queue.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id"),
    )
    with op.batch_alter_table("callbackrequest", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_callbackrequest_state"), ["state"], unique=False)

    op.create_table(
        "callbackattempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("outcome", S(length=64), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["callbackrequest.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("callbackattempt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_callbackattempt_interaction_id"), ["interaction_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_callbackattempt_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "callout",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", S(length=16), nullable=False),
        sa.Column("number", S(length=32), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("reason", S(length=200), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["inbox_id"], ["inbox.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("callout", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_callout_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_callout_inbox_id"), ["inbox_id"], unique=False)


def downgrade() -> None:
    op.drop_table("callout")
    op.drop_table("callbackattempt")
    op.drop_table("callbackrequest")
    op.drop_table("voicemail")
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_deleted_at"))
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table("queue", schema=None) as batch_op:
        for name in (
            "onduty_number",
            "callback_max_tries",
            "callback_retry_seconds",
            "callback_key",
            "max_wait_action",
            "max_wait_seconds",
        ):
            batch_op.drop_column(name)
