"""Search over call transcripts and text conversations together: one interface, two engines.

The searchable rows are ``QaDoc``s (``hub.qa.indexer`` writes them): every transcript segment
and every non-private message of a text channel, redacted before it is stored, so a card
number cannot be found because it is not there. The engine is the database's own:

- SQLite: an external-content FTS5 table (``qadoc_fts``) kept by triggers; ``MATCH`` with
  ``snippet()``; newest first is FTS5's rowid order, which it walks without sorting;
- PostgreSQL: a GIN index over the stored ``fts_vector`` column (``to_tsvector('simple',
  text)``), ``@@ to_tsquery``, and ``ts_headline`` for the rows shown.

A date filter first becomes an id range through ``qadocday`` (each day's lowest and highest
document id): both engines then walk only that range of their index, newest first, instead
of rejecting every newer match one by one (bench/README.md, QA search).

Both use no stemming and the same query language (``hub.qa.query``), so a query finds the same
rows on either. Results are newest first (by index order: documents are indexed as calls and
messages happen), and the hit count stops at a cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.qa.query import Query, parse, to_fts5, to_tsquery, to_tsquery_candidates

# the FTS5 table and its triggers, the GIN index, and the stored tsvector column (PostgreSQL)
INDEX_OBJECTS = ("qadoc_fts", "ix_qadoc_fts", "fts_vector")
SPEAKERS = ("customer", "agent")
SENTIMENTS = ("negative", "neutral", "positive")
# VADER's usual cut-offs for its compound score.
NEGATIVE_BELOW = -0.05
POSITIVE_ABOVE = 0.05
DEFAULT_LIMIT = 20
DEFAULT_CAP = 1000
_START, _STOP = "\x02", "\x03"


def is_search_index_object(name: str | None) -> bool:
    """The FTS5 table (and its shadow tables), the GIN index or the tsvector column: made by
    the migrations by hand, so the schema check and autogenerate leave them alone."""
    return bool(name) and any(name == o or name.startswith(o + "_") for o in INDEX_OBJECTS)  # type: ignore[union-attr]


@dataclass
class SearchFilters:
    speaker: str | None = None  # customer or agent
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    queue_id: int | None = None
    agent_id: int | None = None  # the interaction's agent
    channel: str | None = None
    disposition_id: int | None = None
    category_id: int | None = None
    sentiment: str | None = None  # at the end of the call: negative, neutral, positive
    min_silence_seconds: float | None = None  # a silence at least this long
    only_agent_id: int | None = None  # rights: an agent searches only their own interactions


@dataclass
class SearchHit:
    doc_id: int
    interaction_id: int
    source: str
    source_id: int
    speaker: str
    start_ms: int | None
    at: datetime
    channel: str
    snippet: Markup


@dataclass
class SearchResult:
    query: Query | None  # None: a browse by filters alone
    hits: list[SearchHit] = field(default_factory=list)
    total: int = 0
    capped: bool = False  # total stopped at the cap: there are more


def snippet_html(raw: str) -> Markup:
    """The engine's snippet, escaped, with its match markers turned into ``<mark>``."""
    text = str(escape(raw))
    return Markup(text.replace(_START, "<mark>").replace(_STOP, "</mark>"))  # noqa: S704


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


async def _id_range(conn: Any, f: SearchFilters) -> tuple[int, int] | None:
    """The lowest and highest document id of the days in the filter's date range (a superset
    of the documents in it); None when no document falls on those days."""
    where, params = [], {}
    if f.date_from:
        where.append("day >= :date_from")
        params["date_from"] = f.date_from
    if f.date_to:
        where.append("day <= :date_to")
        params["date_to"] = f.date_to
    row = (
        await conn.execute(
            sa.text(
                "SELECT min(min_id), max(max_id) FROM qadocday WHERE " + " AND ".join(where)
            ).bindparams(*(sa.bindparam(k, type_=sa.Date()) for k in params)),
            params,
        )
    ).one()
    return None if row[0] is None else (row[0], row[1])


def _filters(
    f: SearchFilters, dialect: str, *, per_interaction: bool = False
) -> tuple[list[str], dict[str, Any], list[Any]]:
    """The conditions on a document ``d`` of interaction ``i``; ``per_interaction``: on
    ``i`` alone (a browse: its dates are the interaction's, and ``speaker`` is left to
    the caller)."""
    where: list[str] = []
    params: dict[str, Any] = {}
    binds: list[Any] = []
    owner, at = ("i.id", "i.created_at") if per_interaction else ("d.interaction_id", "d.at")
    if f.speaker:
        if not per_interaction:
            where.append("d.speaker = :speaker")
        params["speaker"] = f.speaker
    if f.date_from:
        where.append(f"{at} >= :date_from")
        params["date_from"] = _day_start(f.date_from)
        binds.append(sa.bindparam("date_from", type_=sa.DateTime(timezone=True)))
    if f.date_to:
        where.append(f"{at} < :date_to")
        params["date_to"] = _day_start(f.date_to + timedelta(days=1))
        binds.append(sa.bindparam("date_to", type_=sa.DateTime(timezone=True)))
    for name in ("queue_id", "agent_id", "channel", "disposition_id"):
        value = getattr(f, name)
        if value is not None and value != "":
            where.append(f"i.{name} = :{name}")
            params[name] = value
    if f.only_agent_id is not None:
        where.append("i.agent_id = :only_agent_id")
        params["only_agent_id"] = f.only_agent_id
    if f.category_id is not None:
        where.append(
            "EXISTS (SELECT 1 FROM interactioncategory ic WHERE ic.interaction_id = "
            f"{owner} AND ic.category_id = :category_id)"
        )
        params["category_id"] = f.category_id
    metric = _metric_sql(dialect)
    if f.sentiment:
        end = metric("sentiment", "end")
        condition = {
            "negative": f"{end} < :neg",
            "positive": f"{end} > :pos",
            "neutral": f"{end} BETWEEN :neg AND :pos",
        }[f.sentiment]
        where.append(
            f"EXISTS (SELECT 1 FROM transcript t WHERE t.interaction_id = {owner} AND {condition})"
        )
        params.update(neg=NEGATIVE_BELOW, pos=POSITIVE_ABOVE)
    if f.min_silence_seconds is not None:
        longest = metric("longest_silence_seconds")
        where.append(
            f"EXISTS (SELECT 1 FROM transcript t WHERE t.interaction_id = {owner} "
            f"AND {longest} >= :silence)"
        )
        params["silence"] = f.min_silence_seconds
    return where, params, binds


def _metric_sql(dialect: str):
    def metric(*path: str) -> str:
        if dialect == "sqlite":
            return f"json_extract(t.metrics, '$.{'.'.join(path)}')"
        inner = "t.metrics" + "".join(f"->'{p}'" for p in path[:-1]) + f"->>'{path[-1]}'"
        return f"CAST({inner} AS DOUBLE PRECISION)"

    return metric


async def search(
    db: AsyncSession,
    text: str,
    filters: SearchFilters | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    cap: int = DEFAULT_CAP,
) -> SearchResult:
    """Hits for ``text`` (see ``hub.qa.query``), newest first; raises ``QueryError``."""
    query = parse(text)
    filters = filters or SearchFilters()
    dialect = db.get_bind().dialect.name
    where, params, binds = _filters(filters, dialect)
    conn = await db.connection()  # Core statements: no ORM session bookkeeping
    if dialect != "sqlite":
        # asyncpg prepares statements, and after five runs PostgreSQL may keep a generic plan
        # that cannot see the date and id bounds (a month's search went from 30 ms to 260 ms):
        # plan every search for its own values, in this transaction only.
        await conn.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
    if filters.date_from or filters.date_to:
        ids = await _id_range(conn, filters)
        if ids is None:
            return SearchResult(query)
        rowid = "qadoc_fts.rowid" if dialect == "sqlite" else "d.id"
        where.append(f"{rowid} BETWEEN :min_id AND :max_id")
        params.update(min_id=ids[0], max_id=ids[1])
    if dialect == "sqlite":
        params["q"] = to_fts5(query)
        base = (
            "FROM qadoc_fts JOIN qadoc d ON d.id = qadoc_fts.rowid "
            "JOIN interaction i ON i.id = d.interaction_id "
            "WHERE qadoc_fts MATCH :q" + "".join(f" AND {w}" for w in where)
        )
        rows_sql = (
            "SELECT d.id, d.interaction_id, d.source, d.source_id, d.speaker, d.start_ms, d.at, "
            "i.channel, snippet(qadoc_fts, 0, char(2), char(3), '…', 16) "
            f"{base} ORDER BY qadoc_fts.rowid DESC LIMIT :limit OFFSET :offset"
        )
    else:
        params["q"] = to_tsquery(query)
        match = "d.fts_vector @@ to_tsquery('simple', :q)"
        if candidates := to_tsquery_candidates(query):
            # NEAR: the index finds the rows by the words, the full query checks them (a
            # function call, which the planner does not take to the index)
            params["candidates"] = candidates
            match = (
                "d.fts_vector @@ to_tsquery('simple', :candidates) "
                "AND ts_match_vq(d.fts_vector, to_tsquery('simple', :q))"
            )
        base = (
            "FROM qadoc d JOIN interaction i ON i.id = d.interaction_id "
            f"WHERE {match}" + "".join(f" AND {w}" for w in where)
        )
    count_sql = f"SELECT count(*) FROM (SELECT 1 {base} LIMIT :cap) c"
    total = (
        await conn.execute(sa.text(count_sql).bindparams(*binds), {**params, "cap": cap + 1})
    ).scalar_one()
    if dialect != "sqlite":
        # Newest first with a limit: PostgreSQL may walk the primary key backward and test
        # every row, which pays when matches are many and dense, and is ruinous when they are
        # few: its estimate for a phrase or NEAR query runs tens of times too high (714 for 30
        # at 3,000,000 segments), and "a NEAR/5 b" took 4.5 s walking two thirds of the table.
        # The capped count above has just told how many there are: up to the cap, collect the
        # matches from the index and sort them (``d.id + 0`` is no index order).
        order = "d.id DESC" if total > cap else "d.id + 0 DESC"
        rows_sql = (
            "SELECT h.id, h.interaction_id, h.source, h.source_id, h.speaker, h.start_ms, h.at, "
            "h.channel, ts_headline('simple', h.text, to_tsquery('simple', :q), "
            '\'StartSel="\x02", StopSel="\x03", MaxWords=24, MinWords=8, '
            'ShortWord=2, MaxFragments=1, FragmentDelimiter="…"\') '
            "FROM (SELECT d.id, d.interaction_id, d.source, d.source_id, d.speaker, "
            f"d.start_ms, d.at, d.text, i.channel {base} "
            f"ORDER BY {order} LIMIT :limit OFFSET :offset) h ORDER BY h.id DESC"
        )
    rows = (
        await conn.execute(
            sa.text(rows_sql).bindparams(*binds),
            {**params, "limit": limit, "offset": offset},
        )
    ).all()
    hits = [_hit(r, snippet_html(r[8] or "")) for r in rows]
    return SearchResult(query, hits, min(total, cap), total > cap)


async def browse(
    db: AsyncSession,
    filters: SearchFilters | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    cap: int = DEFAULT_CAP,
) -> SearchResult:
    """The newest interactions that match ``filters``, with no words to look for: a QA
    reviewer's list of, say, one agent's calls last week that ended on a negative note.

    One hit per interaction that has searchable lines (of ``speaker``, when the filter names
    one), its first such line as the snippet. Interactions are walked newest first by their
    primary key, a twentieth of the documents of calls, and the count stops at ``cap``."""
    filters = filters or SearchFilters()
    dialect = db.get_bind().dialect.name
    conn = await db.connection()
    if dialect != "sqlite":  # as in ``search``: a plan for these values
        await conn.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
    where, params, binds = _filters(filters, dialect, per_interaction=True)
    by_speaker = " AND x.speaker = :speaker" if filters.speaker else ""
    candidates = (
        "SELECT i.id, i.channel, (SELECT min(x.id) FROM qadoc x WHERE x.interaction_id = i.id"
        f"{by_speaker}) AS first_id FROM interaction i"
        + (" WHERE " + " AND ".join(where) if where else "")
    )
    listed = f"SELECT * FROM ({candidates}) f WHERE f.first_id IS NOT NULL"
    total = (
        await conn.execute(
            sa.text(f"SELECT count(*) FROM ({listed} LIMIT :cap) c").bindparams(*binds),
            {**params, "cap": cap + 1},
        )
    ).scalar_one()
    rows = (
        await conn.execute(
            sa.text(
                "SELECT d.id, d.interaction_id, d.source, d.source_id, d.speaker, d.start_ms, "
                f"d.at, p.channel, d.text FROM ({listed} ORDER BY f.id DESC "
                "LIMIT :limit OFFSET :offset) p JOIN qadoc d ON d.id = p.first_id "
                "ORDER BY d.interaction_id DESC"
            ).bindparams(*binds),
            {**params, "limit": limit, "offset": offset},
        )
    ).all()
    hits = [_hit(r, escape(_clipped(r[8] or ""))) for r in rows]
    return SearchResult(None, hits, min(total, cap), total > cap)


def _hit(row: Any, snippet: Markup) -> SearchHit:
    """A hit from a row of (doc id, interaction, source, source id, speaker, start, at,
    channel, …)."""
    return SearchHit(
        doc_id=row[0],
        interaction_id=row[1],
        source=row[2],
        source_id=row[3],
        speaker=row[4],
        start_ms=row[5],
        at=_as_datetime(row[6]),
        channel=row[7],
        snippet=snippet,
    )


def _clipped(text: str, words: int = 24) -> str:
    """The first ``words`` words of a line, as long as a search's snippet."""
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite through a text() query hands back the stored string
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
