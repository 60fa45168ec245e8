"""agent devices: how each agent takes calls (browser, SIP phone, external number)

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-03 13:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0020"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.add_column(
            sa.Column(
                "device",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="sip",
            )
        )
        batch.add_column(
            sa.Column("device_number", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("agent") as batch:
        batch.drop_column("device_number")
        batch.drop_column("device")
