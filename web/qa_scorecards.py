"""Scorecards on the QA page: admins keep forms; QA staff and supervisors evaluate any
interaction (answers filled in from categories and metrics, which they may override), work
from the weekly sample, compare evaluators (calibration) and read roll-ups; agents read their
own evaluations and acknowledge or dispute them. Every change is audited."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Router, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlmodel import col, select

from hub import audit
from hub.qa.scorecards import (
    FormError,
    auto_answers,
    calibration,
    evaluate_interaction,
    questions,
    rollups,
    validate_form,
    weekly_sample,
)
from models import Evaluation, EvaluationForm, EvaluationStatus, Interaction, Role
from web import views
from web.common import UnprocessableError, page, role_guard, services_of, user_of

_AT = re.compile(r"^(\d{1,3}):([0-5]\d)$")
MAX_DISPUTE = 1000


def _form_page(
    request: Request, forms: list[EvaluationForm], error: str | None, raw: str, name: str
) -> Template:
    template = page("qa/forms.html", request, forms=forms, error=error, raw=raw, form_name=name)
    if error:
        template.status_code = 422
    return template


@get("/forms")
async def forms_page(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        forms = list(
            (await db.exec(select(EvaluationForm).order_by(col(EvaluationForm.name)))).all()
        )
    return _form_page(request, forms, None, "", "")


@post("/forms", guards=[role_guard(Role.ADMIN)], status_code=200)
async def create_form(request: Request) -> Template | Redirect:
    form = await request.form()
    name = (form.get("name") or "").strip()
    raw = form.get("definition") or ""
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        forms = list(
            (await db.exec(select(EvaluationForm).order_by(col(EvaluationForm.name)))).all()
        )
        if not name or len(name) > 64:
            return _form_page(
                request, forms, "A form needs a name of at most 64 characters.", raw, name
            )
        if any(f.name == name for f in forms):
            return _form_page(request, forms, f"A form named {name!r} exists already.", raw, name)
        try:
            definition = validate_form(json.loads(raw))
        except json.JSONDecodeError as exc:
            return _form_page(
                request,
                forms,
                f"The definition is not JSON: {exc.msg} (line {exc.lineno}).",
                raw,
                name,
            )
        except (FormError, AttributeError, TypeError) as exc:
            return _form_page(
                request, forms, str(exc) or "The definition is not a form.", raw, name
            )
        row = EvaluationForm(name=name, definition=definition)
        db.add(row)
        await db.flush()
        audit.record(
            db,
            user_id=user.id,
            action="form.create",
            entity="evaluationform",
            entity_id=row.id,
            after=audit.snapshot(row),
        )
        await db.commit()
    return Redirect("/qa/forms", status_code=303)


async def _interaction(db: Any, interaction_id: int) -> Interaction:
    interaction = await db.get(Interaction, interaction_id)
    if interaction is None:
        raise NotFoundException(f"Interaction {interaction_id} does not exist.")
    return interaction


@get("/interactions/{interaction_id:int}/evaluate")
async def evaluate_page(request: Request, interaction_id: FromPath[int]) -> Template:
    form_id = request.query_params.get("form")
    async with services_of(request).sessionmaker() as db:
        interaction = await _interaction(db, interaction_id)
        forms = list(
            (
                await db.exec(
                    select(EvaluationForm)
                    .where(col(EvaluationForm.active).is_(True))
                    .order_by(col(EvaluationForm.name))
                )
            ).all()
        )
        chosen = next((f for f in forms if str(f.id) == form_id), forms[0] if forms else None)
        auto = await auto_answers(db, chosen.definition, interaction_id) if chosen else {}
    return page(
        "qa/evaluate.html",
        request,
        interaction=interaction,
        forms=forms,
        form=chosen,
        auto=auto,
        error=None,
        given={},
    )


def _comments(form: Any) -> list[dict[str, Any]]:
    out = []
    for at, text in zip(
        form.getall("comment_at", []), form.getall("comment_text", []), strict=False
    ):
        text = (text or "").strip()
        if not text:
            continue
        at = (at or "").strip()
        at_ms = None
        if at:
            match = _AT.match(at)
            if match is None:
                raise FormError(f"A comment's moment must be m:ss, not {at!r}.")
            at_ms = (int(match.group(1)) * 60 + int(match.group(2))) * 1000
        out.append({"at_ms": at_ms, "text": text[:2000]})
    return out


@post("/interactions/{interaction_id:int}/evaluations", status_code=200)
async def submit_evaluation(request: Request, interaction_id: FromPath[int]) -> Template | Redirect:
    data = await request.form()
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        interaction = await _interaction(db, interaction_id)
        form_row = await db.get(EvaluationForm, int(data.get("form_id") or 0))
        if form_row is None:
            raise UnprocessableError("Choose a form.")
        given = {q["id"]: data.get(f"q_{q['id']}") or "" for q in questions(form_row.definition)}
        try:
            evaluation = await evaluate_interaction(
                db,
                form=form_row,
                interaction=interaction,
                evaluator_id=user.id,
                given=given,
                comments=_comments(data),
            )
        except FormError as exc:
            forms = list(
                (await db.exec(select(EvaluationForm).order_by(col(EvaluationForm.name)))).all()
            )
            auto = await auto_answers(db, form_row.definition, interaction_id)
            template = page(
                "qa/evaluate.html",
                request,
                interaction=interaction,
                forms=forms,
                form=form_row,
                auto=auto,
                error=str(exc),
                given=given,
            )
            template.status_code = 422
            return template
        await db.flush()
        audit.record(
            db,
            user_id=user.id,
            action="evaluation.create",
            entity="evaluation",
            entity_id=evaluation.id,
            after={"score": evaluation.score, "interaction_id": interaction_id},
        )
        await db.commit()
    return Redirect(f"/qa/evaluations/{evaluation.id}", status_code=303)


async def _own_or_staff(request: Request, evaluation: Evaluation) -> None:
    user = user_of(request)
    if user.has_role(Role.QA, Role.SUPERVISOR):
        return
    if user.agent_id is None or evaluation.agent_id != user.agent_id:
        raise PermissionDeniedException("You may only see your own evaluations.")


@get("/evaluations/{evaluation_id:int}")
async def evaluation_page(request: Request, evaluation_id: FromPath[int]) -> Template:
    user = user_of(request)
    async with services_of(request).sessionmaker() as db:
        evaluation = await db.get(Evaluation, evaluation_id)
        if evaluation is None:
            raise NotFoundException(f"Evaluation {evaluation_id} does not exist.")
        await _own_or_staff(request, evaluation)
        form_row = await db.get(EvaluationForm, evaluation.form_id)
        others = list(
            (
                await db.exec(
                    select(Evaluation)
                    .where(
                        Evaluation.interaction_id == evaluation.interaction_id,
                        Evaluation.form_id == evaluation.form_id,
                    )
                    .order_by(col(Evaluation.id))
                )
            ).all()
        )
        names = await views.agent_names(db)
        audit.record(
            db,
            user_id=user.id,
            action="evaluation.view",
            entity="evaluation",
            entity_id=evaluation_id,
        )
        await db.commit()
    staff = user.has_role(Role.QA, Role.SUPERVISOR)
    return page(
        "qa/evaluation.html",
        request,
        evaluation=evaluation,
        form=form_row,
        questions=questions(form_row.definition) if form_row else [],
        calibration=calibration(others) if staff and len(others) > 1 else None,
        agent_name=names.get(evaluation.agent_id or 0),
        mine=user.agent_id is not None and evaluation.agent_id == user.agent_id,
    )


@post("/evaluations/{evaluation_id:int}/respond", status_code=200)
async def respond(request: Request, evaluation_id: FromPath[int]) -> Redirect:
    """The evaluated agent acknowledges or disputes (with a reason)."""
    data = await request.form()
    user = user_of(request)
    action = data.get("action")
    reason = (data.get("reason") or "").strip()
    async with services_of(request).sessionmaker() as db:
        evaluation = await db.get(Evaluation, evaluation_id)
        if evaluation is None:
            raise NotFoundException(f"Evaluation {evaluation_id} does not exist.")
        if user.agent_id is None or evaluation.agent_id != user.agent_id:
            raise PermissionDeniedException("Only the evaluated agent can respond.")
        if action not in ("acknowledge", "dispute"):
            raise UnprocessableError("Acknowledge or dispute.")
        if action == "dispute" and not reason:
            raise UnprocessableError("Say why you dispute this evaluation.")
        if len(reason) > MAX_DISPUTE:
            raise UnprocessableError(f"Keep the reason under {MAX_DISPUTE} characters.")
        before = evaluation.status
        evaluation.status = (
            EvaluationStatus.ACKNOWLEDGED if action == "acknowledge" else EvaluationStatus.DISPUTED
        )
        evaluation.dispute_reason = reason if action == "dispute" else ""
        db.add(evaluation)
        audit.record(
            db,
            user_id=user.id,
            action=f"evaluation.{action}",
            entity="evaluation",
            entity_id=evaluation_id,
            before={"status": before},
            after={"status": evaluation.status},
        )
        await db.commit()
    return Redirect(f"/qa/evaluations/{evaluation_id}", status_code=303)


@get("/my-evaluations")
async def my_evaluations(request: Request) -> Template:
    user = user_of(request)
    if user.agent_id is None:
        raise PermissionDeniedException("Only agents have evaluations of their own.")
    async with services_of(request).sessionmaker() as db:
        rows = list(
            (
                await db.exec(
                    select(Evaluation)
                    .where(Evaluation.agent_id == user.agent_id)
                    .order_by(col(Evaluation.id).desc())
                )
            ).all()
        )
    return page("qa/my_evaluations.html", request, evaluations=rows)


@get("/scores")
async def scores_page(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        by_agent = await rollups(db, "agent")
        by_queue = await rollups(db, "queue")
        by_form = await rollups(db, "form")
        sample = await weekly_sample(db, datetime.now(UTC).date())
        names = await views.agent_names(db)
        queues = await views.queue_names(db)
        forms = {f.id: f.name for f in (await db.exec(select(EvaluationForm))).all()}
    return page(
        "qa/scores.html",
        request,
        by_agent=by_agent,
        by_queue=by_queue,
        by_form=by_form,
        sample=sample,
        names=names,
        queues=queues,
        forms=forms,
    )


staff_router = Router(
    path="/qa",
    guards=[role_guard(Role.QA, Role.SUPERVISOR)],
    route_handlers=[forms_page, create_form, evaluate_page, submit_evaluation, scores_page],
)
own_router = Router(
    path="/qa",
    guards=[role_guard()],
    route_handlers=[evaluation_page, respond, my_evaluations],
)
route_handlers: list = [staff_router, own_router]
