"""QA search by date: a per-day zone map of QaDoc ids; on PostgreSQL a stored tsvector

``qadocday`` holds, per UTC day, the lowest and highest ``qadoc`` id of that day's
documents, kept by a trigger on insert (and on a change of ``at``). A date filter becomes an
id range that FTS5 (rowid) and PostgreSQL (primary key) walk directly.

On PostgreSQL the GIN index moves from the expression ``to_tsvector('simple', text)`` to a
stored generated column ``fts_vector`` (with a larger statistics target), so filtering a
candidate row reads the vector instead of parsing the text again. The trigger there is per
statement, with the inserted rows as a transition table: one upsert per statement, days
locked in order.

Neither the triggers nor the column are model objects: ``hub.qa.search.INDEX_OBJECTS``
names them for the schema check.

Revision ID: 0022
Revises: 0018
Create Date: 2026-12-03 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_UPSERT = (
    "INSERT INTO qadocday (day, min_id, max_id) VALUES (date(new.at), new.id, new.id) "
    "ON CONFLICT (day) DO UPDATE SET min_id = min(min_id, excluded.min_id), "
    "max_id = max(max_id, excluded.max_id); "
)
_SQLITE = [
    f"CREATE TRIGGER qadoc_fts_day_ai AFTER INSERT ON qadoc BEGIN {_SQLITE_UPSERT}END",
    f"CREATE TRIGGER qadoc_fts_day_au AFTER UPDATE OF at ON qadoc BEGIN {_SQLITE_UPSERT}END",
]
_SQLITE_DROP = ["DROP TRIGGER qadoc_fts_day_au", "DROP TRIGGER qadoc_fts_day_ai"]

_PG = [
    "ALTER TABLE qadoc ADD COLUMN fts_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED",
    "CREATE INDEX ix_qadoc_fts_vector ON qadoc USING gin (fts_vector)",
    # More of the most common words in the statistics: a rare word is then estimated rare,
    # and the planner reads its GIN posting list instead of walking the primary key backward
    # hoping for 20 matches (416 ms against 0.7 ms on 1,000,000 rows, bench/README.md).
    "ALTER TABLE qadoc ALTER COLUMN fts_vector SET STATISTICS 1000",
    "DROP INDEX ix_qadoc_fts",
    """CREATE FUNCTION qadoc_fts_day() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO qadocday (day, min_id, max_id)
  SELECT (at AT TIME ZONE 'UTC')::date, min(id), max(id) FROM qadoc_new GROUP BY 1 ORDER BY 1
  ON CONFLICT (day) DO UPDATE
    SET min_id = LEAST(qadocday.min_id, EXCLUDED.min_id),
        max_id = GREATEST(qadocday.max_id, EXCLUDED.max_id)
    WHERE qadocday.min_id > EXCLUDED.min_id OR qadocday.max_id < EXCLUDED.max_id;
  RETURN NULL;
END $$""",
    "CREATE TRIGGER qadoc_fts_day_ai AFTER INSERT ON qadoc REFERENCING NEW TABLE AS qadoc_new "
    "FOR EACH STATEMENT EXECUTE FUNCTION qadoc_fts_day()",
    "CREATE TRIGGER qadoc_fts_day_au AFTER UPDATE ON qadoc REFERENCING NEW TABLE AS qadoc_new "
    "FOR EACH STATEMENT EXECUTE FUNCTION qadoc_fts_day()",
]
_PG_DROP = [
    "DROP TRIGGER qadoc_fts_day_au ON qadoc",
    "DROP TRIGGER qadoc_fts_day_ai ON qadoc",
    "DROP FUNCTION qadoc_fts_day()",
    "CREATE INDEX ix_qadoc_fts ON qadoc USING gin (to_tsvector('simple', text))",
    "DROP INDEX ix_qadoc_fts_vector",
    "ALTER TABLE qadoc DROP COLUMN fts_vector",
]


def upgrade() -> None:
    op.create_table(
        "qadocday",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("min_id", sa.Integer(), nullable=False),
        sa.Column("max_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(
        "INSERT INTO qadocday (day, min_id, max_id) SELECT date(at), min(id), max(id) "
        "FROM qadoc GROUP BY 1"
        if sqlite
        else "INSERT INTO qadocday (day, min_id, max_id) SELECT (at AT TIME ZONE 'UTC')::date, "
        "min(id), max(id) FROM qadoc GROUP BY 1"
    )
    for statement in _SQLITE if sqlite else _PG:
        op.execute(statement)


def downgrade() -> None:
    for statement in _SQLITE_DROP if op.get_bind().dialect.name == "sqlite" else _PG_DROP:
        op.execute(statement)
    op.drop_table("qadocday")
