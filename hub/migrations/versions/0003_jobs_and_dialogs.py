"""jobs, dialogs and their versions, and each inbox's dialog

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 17:43:55.570196
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("locked_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_kind"), ["kind"], unique=False)
        batch_op.create_index("ix_job_state_run_at", ["state", "run_at"], unique=False)

    # dialog and dialogversion point at each other. The published-version key is declared
    # with use_alter: SQLite (no ALTER for constraints) gets it inside CREATE TABLE, which
    # may name a table that does not exist yet; PostgreSQL gets it below, once both exist.
    op.create_table(
        "dialog",
        # autoincrement spelled out: id is part of a foreign key, which would otherwise cost
        # it its SERIAL on PostgreSQL.
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("published_version_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["published_version_id", "id"],
            ["dialogversion.id", "dialogversion.dialog_id"],
            name="fk_dialog_published_version",
            use_alter=True,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "dialogversion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dialog_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("validation", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["dialog_id"], ["dialog.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dialog_id", "number"),
        sa.UniqueConstraint("id", "dialog_id"),
    )
    with op.batch_alter_table("dialogversion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dialogversion_dialog_id"), ["dialog_id"], unique=False)
    if op.get_bind().dialect.supports_alter:
        op.create_foreign_key(
            "fk_dialog_published_version",
            "dialog",
            "dialogversion",
            ["published_version_id", "id"],
            ["id", "dialog_id"],
        )

    # Plain ADD COLUMN ... REFERENCES, valid on both: a batch copy of inbox on SQLite would
    # drop the table that interactions and messages point at.
    op.execute("ALTER TABLE inbox ADD COLUMN dialog_id INTEGER REFERENCES dialog (id)")


def downgrade() -> None:
    op.execute("ALTER TABLE inbox DROP COLUMN dialog_id")  # SQLite >= 3.35, like RETURNING
    # The two dialog tables point at each other: unlink them before dropping either.
    op.execute("UPDATE dialog SET published_version_id = NULL")
    if op.get_bind().dialect.supports_alter:
        op.drop_constraint("fk_dialog_published_version", "dialog", type_="foreignkey")
    op.execute("DELETE FROM dialogversion")
    with op.batch_alter_table("dialogversion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dialogversion_dialog_id"))
    op.drop_table("dialogversion")
    op.drop_table("dialog")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_state_run_at")
        batch_op.drop_index(batch_op.f("ix_job_kind"))
    op.drop_table("job")
