"""back to self-service and the post-call survey: dialog.agent_nodes, queue.survey_dialog_id

Revision ID: 0017
Revises: 0022
Create Date: 2026-12-03 13:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dialog", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("agent_nodes", sa.JSON(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("survey_dialog_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_queue_survey_dialog_id", "dialog", ["survey_dialog_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.drop_constraint("fk_queue_survey_dialog_id", type_="foreignkey")
        batch_op.drop_column("survey_dialog_id")
    with op.batch_alter_table("dialog", schema=None) as batch_op:
        batch_op.drop_column("agent_nodes")
