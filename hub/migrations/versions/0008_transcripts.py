"""transcripts of calls and voicemail, per speaker (QA)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transcript",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["recording_id"], ["recording.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recording_id"),
    )
    with op.batch_alter_table("transcript", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transcript_interaction_id"), ["interaction_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_transcript_status"), ["status"], unique=False)
    op.create_table(
        "transcriptsegment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transcript_id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("speaker", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("start_ms", sa.Integer(), nullable=False),
        sa.Column("end_ms", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("original_text", sa.Text(), nullable=True),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("sentiment", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["transcript_id"], ["transcript.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("transcriptsegment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transcriptsegment_agent_id"), ["agent_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_transcriptsegment_interaction_id"), ["interaction_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_transcriptsegment_transcript_id"), ["transcript_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("transcriptsegment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcriptsegment_transcript_id"))
        batch_op.drop_index(batch_op.f("ix_transcriptsegment_interaction_id"))
        batch_op.drop_index(batch_op.f("ix_transcriptsegment_agent_id"))
    op.drop_table("transcriptsegment")
    with op.batch_alter_table("transcript", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcript_status"))
        batch_op.drop_index(batch_op.f("ix_transcript_interaction_id"))
    op.drop_table("transcript")
