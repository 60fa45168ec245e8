"""The QA page: search calls and text conversations together, open one to play it with its
transcript, and (admins) keep the categories that tag them.

QA staff and supervisors search and open every interaction; an agent may open only their
own. Every search and every opening is audited; the query is stored redacted, so the audit
log never keeps a card number someone searched for. Recordings play through
``/recordings/{id}`` (range requests, audited per request).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from litestar import Request, Router, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.qa.categories import METRICS, OPS, RuleError, queue_rerun, validate_rule
from hub.qa.erasure import delete_files, erase_contact
from hub.qa.query import QueryError
from hub.qa.redaction import redact
from hub.qa.search import SENTIMENTS, SPEAKERS, SearchFilters, SearchResult, browse, search
from models import (
    Category,
    Contact,
    ContactIdentity,
    Disposition,
    DocSource,
    Interaction,
    InteractionCategory,
    Message,
    QaDoc,
    Recording,
    Role,
    Transcript,
    TranscriptSegment,
)
from web import views
from web.common import UnprocessableError, page, role_guard, services_of, user_of

CHANNELS = ("voice", "webchat", "email", "sms", "telegram", "fax")
PAGE_SIZE = 20


def _opt_int(params: Any, name: str, label: str) -> int | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise UnprocessableError(f"{label} must be a whole number.") from None


def _opt_date(params: Any, name: str, label: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise UnprocessableError(f"{label} must be a date (YYYY-MM-DD).") from None


def filters_from(params: Any) -> SearchFilters:
    """The search form's fields, checked: a wrong value is a 422 naming the field."""
    speaker = (params.get("speaker") or "").strip() or None
    if speaker not in (None, *SPEAKERS):
        raise UnprocessableError("Speaker must be customer or agent.")
    channel = (params.get("channel") or "").strip() or None
    if channel not in (None, *CHANNELS):
        raise UnprocessableError(f"Channel must be one of {', '.join(CHANNELS)}.")
    sentiment = (params.get("sentiment") or "").strip() or None
    if sentiment not in (None, *SENTIMENTS):
        raise UnprocessableError("Sentiment must be negative, neutral or positive.")
    silence_raw = (params.get("min_silence") or "").strip()
    silence = None
    if silence_raw:
        try:
            silence = float(silence_raw)
        except ValueError:
            raise UnprocessableError("Silence must be a number of seconds.") from None
    filters = SearchFilters(
        speaker=speaker,
        date_from=_opt_date(params, "date_from", "From"),
        date_to=_opt_date(params, "date_to", "To"),
        queue_id=_opt_int(params, "queue_id", "Queue"),
        agent_id=_opt_int(params, "agent_id", "Agent"),
        channel=channel,
        disposition_id=_opt_int(params, "disposition_id", "Disposition"),
        category_id=_opt_int(params, "category_id", "Category"),
        sentiment=sentiment,
        min_silence_seconds=silence,
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise UnprocessableError("From must not be after To.")
    return filters


async def _choices(db: AsyncSession) -> dict[str, Any]:
    return {
        "queues": await views.queue_names(db),
        "agents": await views.agent_names(db),
        "dispositions": {d.id: d.label for d in (await db.exec(select(Disposition))).all() if d.id},
        "categories": {
            c.id: c.name
            for c in (await db.exec(select(Category).order_by(col(Category.name)))).all()
            if c.id
        },
        "channels": CHANNELS,
        "sentiments": SENTIMENTS,
    }


@get("/")
async def qa_page(request: Request) -> Template:
    params = request.query_params
    text = (params.get("q") or "").strip()
    services = services_of(request)
    user = user_of(request)
    error = None
    result: SearchResult | None = None
    page_no = _opt_int(params, "page", "Page") or 1
    filters = filters_from(params)
    async with services.sessionmaker() as db:
        choices = await _choices(db)
        offset = (page_no - 1) * PAGE_SIZE
        if not text:  # no words: the newest conversations the filters allow
            result = await browse(db, filters, limit=PAGE_SIZE, offset=offset)
        else:
            try:
                result = await search(db, text, filters, limit=PAGE_SIZE, offset=offset)
            except QueryError as exc:
                error = str(exc)
        # every list of conversations shown is audited, a browse (no words) too
        audited = await asyncio.to_thread(lambda: redact(text).text) if text else ""
        audit.record(
            db,
            user_id=user.id,
            action="qa.search",
            entity="qa",
            after={
                "query": audited,
                "filters": {k: str(v) for k, v in vars(filters).items() if v is not None},
                "hits": result.total if result else 0,
            },
        )
        await db.commit()
    template = page(
        "qa/page.html",
        request,
        q=text,
        form=params,
        result=result,
        error=error,
        page_no=page_no,
        page_size=PAGE_SIZE,
        **choices,
    )
    if error:
        template.status_code = 400
    return template


@dataclass
class Line:
    """One segment or message as the interaction view shows it (text redacted)."""

    doc_kind: str
    source_id: int
    speaker: str
    label: str
    text: str
    start_ms: int | None = None
    end_ms: int | None = None
    at: Any = None


async def may_open(db: AsyncSession, request: Request, interaction: Interaction) -> bool:
    user = user_of(request)
    if user.has_role(Role.QA, Role.SUPERVISOR):
        return True
    return user.agent_id is not None and interaction.agent_id == user.agent_id


async def _message_lines(
    db: AsyncSession, interaction_id: int, names: dict[int, str]
) -> list[Line]:
    messages = (
        await db.exec(
            select(Message)
            .where(Message.interaction_id == interaction_id, col(Message.private).is_(False))
            .order_by(col(Message.id))
        )
    ).all()
    indexed = {
        d.source_id: d.text
        for d in (
            await db.exec(
                select(QaDoc).where(
                    QaDoc.interaction_id == interaction_id,
                    QaDoc.source == DocSource.MESSAGE.value,
                )
            )
        ).all()
    }
    lines = []
    for m in messages:
        text = indexed.get(m.id or 0)
        if text is None:  # not indexed yet: redact now, never show the original
            raw = "\n".join(p for p in (m.subject, m.body) if p)
            text = await asyncio.to_thread(lambda raw=raw: redact(raw).text)
        speaker = {"contact": "customer", "agent": "agent", "bot": "ivr"}.get(
            m.sender_kind, "system"
        )
        label = names.get(m.agent_id or 0, "Agent") if speaker == "agent" else speaker.title()
        lines.append(Line("message", m.id or 0, speaker, label, text, at=m.created_at))
    return lines


@get("/interactions/{interaction_id:int}")
async def interaction_view(request: Request, interaction_id: FromPath[int]) -> Template:
    services = services_of(request)
    user = user_of(request)
    params = request.query_params
    focus = _opt_int(params, "doc", "Document")
    async with services.sessionmaker() as db:
        interaction = await db.get(Interaction, interaction_id)
        if interaction is None:
            raise NotFoundException(f"Interaction {interaction_id} does not exist.")
        if not await may_open(db, request, interaction):
            raise PermissionDeniedException("You may only open your own interactions.")
        names = await views.agent_names(db)
        queues = await views.queue_names(db)
        contact = await db.get(Contact, interaction.contact_id)
        recordings = (
            await db.exec(
                select(Recording)
                .where(Recording.interaction_id == interaction_id)
                .order_by(col(Recording.id))
            )
        ).all()
        transcripts = (
            await db.exec(
                select(Transcript)
                .where(Transcript.interaction_id == interaction_id)
                .order_by(col(Transcript.id))
            )
        ).all()
        segments = (
            await db.exec(
                select(TranscriptSegment)
                .where(TranscriptSegment.interaction_id == interaction_id)
                .order_by(col(TranscriptSegment.start_ms), col(TranscriptSegment.id))
            )
        ).all()
        seg_lines = [
            Line(
                "segment",
                s.id or 0,
                s.speaker,
                names.get(s.agent_id or 0, "Agent") if s.speaker == "agent" else s.speaker.title(),
                s.text,
                s.start_ms,
                s.end_ms,
            )
            for s in segments
        ]
        msg_lines = await _message_lines(db, interaction_id, names)
        tags = (
            await db.exec(
                select(Category.name, InteractionCategory.evidence)
                .join(InteractionCategory, col(InteractionCategory.category_id) == Category.id)
                .where(InteractionCategory.interaction_id == interaction_id)
                .order_by(col(Category.name))
            )
        ).all()
        focus_doc = await db.get(QaDoc, focus) if focus else None
        disposition = (
            await db.get(Disposition, interaction.disposition_id)
            if interaction.disposition_id
            else None
        )
        audit.record(
            db,
            user_id=user.id,
            action="qa.open",
            entity="interaction",
            entity_id=interaction_id,
        )
        await db.commit()
    duration_ms = max([ln.end_ms or 0 for ln in seg_lines] + [1])
    for r in recordings:
        duration_ms = max(duration_ms, int(r.duration_seconds * 1000))
    focus_key = (
        f"{focus_doc.source}-{focus_doc.source_id}"
        if focus_doc and focus_doc.interaction_id == interaction_id
        else None
    )
    seek_ms = focus_doc.start_ms if focus_doc and focus_doc.start_ms is not None else None
    return page(
        "qa/interaction.html",
        request,
        interaction=interaction,
        contact=contact,
        agent_name=names.get(interaction.agent_id or 0),
        queue_name=queues.get(interaction.queue_id or 0),
        disposition=disposition.label if disposition else None,
        recordings=recordings,
        transcripts=transcripts,
        segments=seg_lines,
        messages=msg_lines,
        tags=tags,
        duration_ms=duration_ms,
        focus_key=focus_key,
        seek_ms=seek_ms,
    )


# --- categories (admins keep them; QA may look) -------------------------------------------


@get("/categories")
async def categories_page(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        categories = (await db.exec(select(Category).order_by(col(Category.name)))).all()
    return page(
        "qa/categories.html",
        request,
        categories=categories,
        metrics=list(METRICS),
        ops=list(OPS),
        error=None,
        form={},
    )


def rule_from_form(form: Any) -> dict[str, Any]:
    phrases = []
    query = (form.get("query") or "").strip()
    if query:
        first = (form.get("first_seconds") or "").strip()
        last = (form.get("last_seconds") or "").strip()
        try:
            phrases.append(
                {
                    "query": query,
                    "speaker": form.get("speaker") or None,
                    "first_seconds": float(first) if first else None,
                    "last_seconds": float(last) if last else None,
                    "negate": form.get("negate") == "1",
                }
            )
        except ValueError:
            raise RuleError("The time window must be a number of seconds.") from None
    metrics = []
    if (form.get("metric") or "").strip():
        metrics.append(
            {"metric": form.get("metric"), "op": form.get("op"), "value": form.get("value")}
        )
    return validate_rule(
        {"match": form.get("match") or "all", "phrases": phrases, "metrics": metrics}
    )


@post("/categories", guards=[role_guard(Role.ADMIN)], status_code=200)
async def create_category(request: Request) -> Template | Redirect:
    form = await request.form()
    name = (form.get("name") or "").strip()
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        error = None
        if not name or len(name) > 64:
            error = "A category needs a name of at most 64 characters."
        elif (await db.exec(select(Category).where(Category.name == name))).first():
            error = f"A category named {name!r} exists already."
        else:
            try:
                rule = rule_from_form(form)
            except RuleError as exc:
                error = str(exc)
        if error:
            categories = (await db.exec(select(Category).order_by(col(Category.name)))).all()
            template = page(
                "qa/categories.html",
                request,
                categories=categories,
                metrics=list(METRICS),
                ops=list(OPS),
                error=error,
                form=form,
            )
            template.status_code = 422
            return template
        category = Category(name=name, description=(form.get("description") or "")[:300], rule=rule)
        db.add(category)
        await db.flush()
        audit.record(
            db,
            user_id=user.id,
            action="category.create",
            entity="category",
            entity_id=category.id,
            after=audit.snapshot(category),
        )
        if form.get("rerun") == "1":
            queue_rerun(db)
        await db.commit()
    return Redirect("/qa/categories", status_code=303)


@post("/categories/{category_id:int}/delete", guards=[role_guard(Role.ADMIN)], status_code=200)
async def delete_category(request: Request, category_id: FromPath[int]) -> Redirect:
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        category = await db.get(Category, category_id)
        if category is None:
            raise NotFoundException(f"Category {category_id} does not exist.")
        for tag in (
            await db.exec(
                select(InteractionCategory).where(InteractionCategory.category_id == category_id)
            )
        ).all():
            await db.delete(tag)
        audit.record(
            db,
            user_id=user.id,
            action="category.delete",
            entity="category",
            entity_id=category_id,
            before=audit.snapshot(category),
        )
        await db.delete(category)
        await db.commit()
    return Redirect("/qa/categories", status_code=303)


@post("/categories/rerun", guards=[role_guard(Role.ADMIN)], status_code=200)
async def rerun_categories(request: Request) -> Redirect:
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        queue_rerun(db)
        audit.record(db, user_id=user.id, action="category.rerun", entity="category")
        await db.commit()
    return Redirect("/qa/categories?rerun=1", status_code=303)


# --- erasure (admins) -----------------------------------------------------------------------


@get("/erase", guards=[role_guard(Role.ADMIN)])
async def erase_page(request: Request) -> Template:
    """Find the contact by id or by an address (phone, email, handle) before erasing."""
    raw = (request.query_params.get("contact") or "").strip()
    contact = None
    interactions = 0
    error = None
    if raw:
        async with services_of(request).sessionmaker() as db:
            if raw.isdigit():
                contact = await db.get(Contact, int(raw))
            else:
                identity = (
                    await db.exec(
                        select(ContactIdentity).where(
                            sa.func.lower(ContactIdentity.address) == raw.lower()
                        )
                    )
                ).first()
                contact = await db.get(Contact, identity.contact_id) if identity else None
            if contact is None:
                error = f"No contact matches {raw!r}."
            else:
                interactions = len(
                    (
                        await db.exec(
                            select(Interaction.id).where(Interaction.contact_id == contact.id)
                        )
                    ).all()
                )
    template = page(
        "qa/erase.html",
        request,
        raw=raw,
        contact=contact,
        interactions=interactions,
        error=error,
        done=request.query_params.get("done"),
    )
    if error:
        template.status_code = 404
    return template


@post("/contacts/{contact_id:int}/erase", guards=[role_guard(Role.ADMIN)], status_code=200)
async def erase(request: Request, contact_id: FromPath[int]) -> Redirect:
    form = await request.form()
    if form.get("confirm") != "ERASE":
        raise UnprocessableError("Type ERASE to confirm: this cannot be undone.")
    services = services_of(request)
    user = user_of(request)
    async with services.sessionmaker() as db:
        try:
            result = await erase_contact(
                db,
                contact_id,
                user_id=user.id,
                var_dir=services.settings.var_dir,
                attachments=services.attachments,
            )
        except LookupError as exc:
            raise NotFoundException(str(exc)) from None
        await db.commit()
    await asyncio.to_thread(delete_files, result.files)
    return Redirect(f"/qa/erase?done={contact_id}", status_code=303)


qa_router = Router(
    path="/qa",
    guards=[role_guard()],
    route_handlers=[
        Router(
            path="/",
            guards=[role_guard(Role.QA, Role.SUPERVISOR)],
            route_handlers=[
                qa_page,
                categories_page,
                create_category,
                delete_category,
                rerun_categories,
            ],
        ),
        interaction_view,  # agents too, for their own interactions
        erase_page,
        erase,
    ],
)

route_handlers: list = [qa_router]
