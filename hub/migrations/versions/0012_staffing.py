"""staffing groups, shift templates, forecast overrides and rosters

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-03 07:33:12.202644
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shifttemplate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("length_minutes", sa.Integer(), nullable=False),
        sa.Column("earliest_start", sa.Integer(), nullable=False),
        sa.Column("latest_start", sa.Integer(), nullable=False),
        sa.Column("start_step_minutes", sa.Integer(), nullable=False),
        sa.Column("break_offset_minutes", sa.Integer(), nullable=True),
        sa.Column("break_minutes", sa.Integer(), nullable=False),
        sa.Column("paid_break", sa.Boolean(), nullable=False),
        sa.Column("cost_per_hour", sa.Float(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("max_count", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "roster",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("roster", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_roster_day"), ["day"], unique=False)

    op.create_table(
        "rostershift",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("roster_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("template_name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("length_minutes", sa.Integer(), nullable=False),
        sa.Column("break_offset_minutes", sa.Integer(), nullable=True),
        sa.Column("break_minutes", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agent.id"],
        ),
        sa.ForeignKeyConstraint(
            ["roster_id"],
            ["roster.id"],
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["shifttemplate.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rostershift", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rostershift_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rostershift_roster_id"), ["roster_id"], unique=False)

    op.create_table(
        "staffinggroup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("skill", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("aht_seconds", sa.Integer(), nullable=False),
        sa.Column("sl_target_pct", sa.Integer(), nullable=False),
        sa.Column("sl_seconds", sa.Integer(), nullable=False),
        sa.Column("shrinkage_pct", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("email_target_minutes", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queue.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "forecastoverride",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("by_user_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["by_user_id"],
            ["user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["staffinggroup.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "day", "start_minute", "minutes"),
    )
    with op.batch_alter_table("forecastoverride", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forecastoverride_day"), ["day"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_forecastoverride_group_id"), ["group_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("forecastoverride", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forecastoverride_group_id"))
        batch_op.drop_index(batch_op.f("ix_forecastoverride_day"))

    op.drop_table("forecastoverride")
    op.drop_table("staffinggroup")
    with op.batch_alter_table("rostershift", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rostershift_roster_id"))
        batch_op.drop_index(batch_op.f("ix_rostershift_agent_id"))

    op.drop_table("rostershift")
    with op.batch_alter_table("roster", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roster_day"))

    op.drop_table("roster")
    op.drop_table("shifttemplate")
