"""QA search index (redacted text of segments and messages), categories and their tags,
evaluation forms and evaluations

The full-text index is dialect-specific: on SQLite an external-content FTS5 table kept in
step with ``qadoc`` by triggers; on PostgreSQL a GIN index over ``to_tsvector('simple', text)``.
Neither is a model table: ``hub.qa.search.INDEX_OBJECTS`` names them for the schema check.
A later SQLite batch migration that rebuilds ``qadoc`` must create the triggers again.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-03 07:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE qadoc_fts USING fts5(text, content='qadoc', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2', prefix='2 3')",
    "CREATE TRIGGER qadoc_fts_ai AFTER INSERT ON qadoc BEGIN "
    "INSERT INTO qadoc_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER qadoc_fts_ad AFTER DELETE ON qadoc BEGIN "
    "INSERT INTO qadoc_fts(qadoc_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER qadoc_fts_au AFTER UPDATE OF text ON qadoc BEGIN "
    "INSERT INTO qadoc_fts(qadoc_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO qadoc_fts(rowid, text) VALUES (new.id, new.text); END",
]
_PG_FTS = "CREATE INDEX ix_qadoc_fts ON qadoc USING gin (to_tsvector('simple', text))"


def upgrade() -> None:
    op.create_table(
        "qadoc",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("speaker", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_ms", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "source_id"),
    )
    with op.batch_alter_table("qadoc", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qadoc_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_qadoc_interaction_id"), ["interaction_id"], unique=False
        )
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute(_PG_FTS)
    op.create_table(
        "category",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "interactioncategory",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("tagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["category_id"], ["category.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id", "category_id"),
    )
    with op.batch_alter_table("interactioncategory", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interactioncategory_category_id"), ["category_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interactioncategory_interaction_id"), ["interaction_id"], unique=False
        )

    op.create_table(
        "evaluationform",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "evaluation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("evaluator_id", sa.Integer(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("comments", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("failed_critical", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("dispute_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.ForeignKeyConstraint(["evaluator_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["form_id"], ["evaluationform.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["queue_id"], ["queue.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluation_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_evaluation_form_id"), ["form_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_evaluation_interaction_id"), ["interaction_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluation_interaction_id"))
        batch_op.drop_index(batch_op.f("ix_evaluation_form_id"))
        batch_op.drop_index(batch_op.f("ix_evaluation_agent_id"))
    op.drop_table("evaluation")
    op.drop_table("evaluationform")
    with op.batch_alter_table("interactioncategory", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interactioncategory_interaction_id"))
        batch_op.drop_index(batch_op.f("ix_interactioncategory_category_id"))
    op.drop_table("interactioncategory")
    op.drop_table("category")
    if op.get_bind().dialect.name == "sqlite":
        for name in ("qadoc_fts_au", "qadoc_fts_ad", "qadoc_fts_ai"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE qadoc_fts")
    else:
        op.execute("DROP INDEX ix_qadoc_fts")
    with op.batch_alter_table("qadoc", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qadoc_interaction_id"))
        batch_op.drop_index(batch_op.f("ix_qadoc_at"))
    op.drop_table("qadoc")
