"""recordings after redaction: the redacted copy, the original kept by inbox policy

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-03 07:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "keep_original_audio", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(
            sa.Column(
                "original_audio_role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True
            )
        )
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("redacted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("original_path", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("recording", schema=None) as batch_op:
        batch_op.drop_column("original_path")
        batch_op.drop_column("redacted")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_column("original_audio_role")
        batch_op.drop_column("keep_original_audio")
