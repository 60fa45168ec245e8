"""Admins own self-service in the browser: dialogs listed, created, imported and exported;
an editor that checks as they type (problems with line numbers) and draws the flow; immutable
versions compared, published and rolled back; the dialog's own tests run on the text being
edited; and a simulator that answers the dialog as a chat.

Publishing is refused while the version does not load, validate or pass its tests
(``hub.dialogs.publish``), and while it names a queue or skill the hub does not have. A
dialog's sub-dialogs live in its own file, so a published version pins them by
construction. Every change is audited.
"""

from __future__ import annotations

import difflib
import functools
import json
from typing import Any

import httpx
from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.dialog_diagram import DiagramUnavailable, render_svg
from hub.dialog_figures import dialog_figures
from hub.dialogs import (
    check_source,
    create_dialog,
    publish,
    recorded_prompts,
    rollback,
    save_version,
    versions_of,
)
from hub.surveys import local_day_range
from hub.text_dialogs import decode_event, encode_event, render_prompt
from ivr_dialogs.actions import Listen, Lookup, Say, SurveyAnswer, action_dict
from ivr_dialogs.dialog_tests import run_tests
from ivr_dialogs.events import Digit, Event, HangUp, NoInput, Utterance, text_to_event
from ivr_dialogs.interpreter import Interpreter
from ivr_dialogs.loader import Dialog as LoadedDialog
from ivr_dialogs.loader import DialogError, Problem, load_dialog_text
from ivr_dialogs.runner import perform_lookup, secrets_from_env
from ivr_dialogs.schema import CallbackNode, QueueNode
from ivr_dialogs.validator import validate
from ivr_dialogs.versions import VersionError
from models import Dialog, DialogKind, DialogVersion, Inbox, Queue, Role, Skill
from web.admin import SECTIONS
from web.common import UnprocessableError, role_guard, services_of, user_of
from web.simulator_voice import hear_answer, simulate_speech, speech_url
from web.surveys import parse_period

MAX_SOURCE = 200_000
MAX_SPOKEN_BYTES = 8 * 1024 * 1024
KEYPAD = "0123456789*#"
NEW_DIALOG = """\
dialog: {name}
description: What this dialog is for.
languages: [en]
start: main

nodes:
  main:
    type: menu
    prompt: Hello. For sales, press 1 or say sales. For support, press 2 or say support.
    options:
      - digit: "1"
        phrases: [sales]
        next: to_general
      - digit: "2"
        phrases: [support]
        next: to_general
    no_input: {{retries: 1, fallback: to_general}}
    no_match: {{retries: 1, fallback: to_general}}

  to_general:
    type: queue
    queue: General
    prompt: Please hold for the next agent.

tests:
  - name: pressing 1 reaches the queue
    inputs: ["1"]
    expect:
      outcome: queued
"""


# ---------------------------------------------------------------- checks


def load(
    source: str, recorded: frozenset[tuple[str, str]] = frozenset()
) -> tuple[LoadedDialog | None, list[Problem]]:
    """The dialog and everything the validator says of it (or why it does not load);
    ``recorded`` prompts count as present in their language."""
    try:
        dialog = load_dialog_text(source, file="<editor>")
    except DialogError as exc:
        return None, list(exc.problems)
    return dialog, validate(dialog, recorded)


def hub_name_problems(dialog: LoadedDialog, queues: set[str], skills: set[str]) -> list[Problem]:
    """Queues and skills the dialog names that this hub does not have (by name, any case)."""
    problems = []
    for flow in dialog.flows.values():
        for node_id, node in flow.nodes.items():
            if isinstance(node, QueueNode | CallbackNode) and node.queue.lower() not in queues:
                line = dialog.node_line(flow, node_id, "queue")
                problems.append(
                    Problem(
                        "<editor>",
                        line,
                        "unknown-queue",
                        f"there is no queue '{node.queue}' in this hub",
                    )
                )
            for skill in getattr(node, "skills", []) or []:
                if skill.lower() not in skills:
                    line = dialog.node_line(flow, node_id, "skills")
                    problems.append(
                        Problem(
                            "<editor>",
                            line,
                            "unknown-skill",
                            f"there is no skill '{skill}' in this hub",
                        )
                    )
    return problems


async def hub_names(db: AsyncSession) -> tuple[set[str], set[str]]:
    queues = {name.lower() for name in (await db.exec(select(Queue.name))).all()}
    skills = {name.lower() for name in (await db.exec(select(Skill.name))).all()}
    return queues, skills


async def _diagram(
    dialog: LoadedDialog | None, notes: dict[str, str] | None = None
) -> dict[str, str]:
    if dialog is None:
        return {
            "svg": "",
            "diagram_error": "The dialog does not load, so there is nothing to draw.",
        }
    try:
        return {"svg": await render_svg(dialog, notes), "diagram_error": ""}
    except DiagramUnavailable as exc:
        return {"svg": "", "diagram_error": str(exc)}


async def _check_context(db: AsyncSession, source: str, dialog_id: int | None) -> dict[str, Any]:
    dialog, problems = load(source, await recorded_prompts(db, dialog_id))
    if dialog is not None:
        problems = problems + hub_name_problems(dialog, *await hub_names(db))
    problems.sort(key=lambda p: (p.line, p.severity != "error"))
    return {"problems": problems, **await _diagram(dialog)}


# ---------------------------------------------------------------- pages


async def _dialog(db: AsyncSession, dialog_id: int) -> Dialog:
    dialog = await db.get(Dialog, dialog_id)
    if dialog is None:
        raise NotFoundException(f"There is no dialog #{dialog_id}.")
    return dialog


async def _version(db: AsyncSession, dialog: Dialog, number: int) -> DialogVersion:
    version = next((v for v in await versions_of(db, dialog) if v.number == number), None)
    if version is None:
        raise NotFoundException(f"'{dialog.name}' has no version {number}.")
    return version


async def _editor_context(
    db: AsyncSession,
    dialog: Dialog,
    *,
    number: int | None = None,
    source: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    versions = await versions_of(db, dialog)
    shown = next((v for v in versions if v.number == number), versions[-1] if versions else None)
    text = source if source is not None else (shown.source if shown else "")
    inboxes = (await db.exec(select(Inbox.name).where(Inbox.dialog_id == dialog.id))).all()
    return {
        "main_nodes": await _published_main_nodes(db, dialog),
        "sections": SECTIONS,
        "section": None,
        "dialogs_page": True,
        "dialog": dialog,
        "versions": list(reversed(versions)),
        "shown": shown,
        "source": text,
        "inboxes": list(inboxes),
        **await _check_context(db, text, dialog.id),
        **extra,
    }


async def _published_main_nodes(db: AsyncSession, dialog: Dialog) -> list[str]:
    """The main flow's nodes of the published version (what agents may be offered)."""
    if dialog.published_version_id is None:
        return []
    version = await db.get(DialogVersion, dialog.published_version_id)
    if version is None:
        return []
    from hub.dialogs import load_version

    try:
        return list(load_version(dialog.name, version).main.nodes)
    except DialogError:
        return []


@post("/{dialog_id:int}/agent-nodes", status_code=200)
async def agent_nodes(request: Request, dialog_id: FromPath[int]) -> Template:
    """Which nodes of the published version agents may send a caller to from the call
    card ("back to self-service", ``hub.call_self_service``); none: not offered."""
    me = user_of(request)
    form = await request.form()
    chosen = [str(v)[:64] for v in form.getall("node", [])]
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        known = await _published_main_nodes(db, dialog)
        if chosen and not known:
            raise UnprocessableError("Publish a version first: agents are offered its nodes.")
        unknown = [n for n in chosen if n not in known]
        if unknown:
            raise UnprocessableError(
                f"The published version has no node {', '.join(repr(n) for n in unknown)}."
            )
        before = list(dialog.agent_nodes or [])
        dialog.agent_nodes = [n for n in known if n in chosen]
        db.add(dialog)
        audit.record(
            db,
            user_id=me.id,
            action="agent_nodes",
            entity="dialog",
            entity_id=dialog.id,
            before={"agent_nodes": before},
            after={"agent_nodes": dialog.agent_nodes},
        )
        await db.commit()
        message = (
            f"Agents may send callers to: {', '.join(dialog.agent_nodes)}."
            if dialog.agent_nodes
            else "No node of this dialog is offered to agents."
        )
        ctx = await _editor_context(db, dialog, saved=message)
    return Template(template_name="admin/dialog_editor.html", context=ctx)


@get("/")
async def dialogs_page(request: Request) -> Template:
    async with services_of(request).sessionmaker() as db:
        dialogs = list((await db.exec(select(Dialog).order_by(col(Dialog.name)))).all())
        versions = (
            await db.exec(select(DialogVersion.dialog_id, DialogVersion.number, DialogVersion.id))
        ).all()
        inboxes = (await db.exec(select(Inbox.dialog_id, Inbox.name))).all()
    latest: dict[int, int] = {}
    numbers: dict[int, int] = {}
    for dialog_id, number, version_id in versions:
        latest[dialog_id] = max(latest.get(dialog_id, 0), number)
        numbers[version_id] = number
    used: dict[int, list[str]] = {}
    for dialog_id, name in inboxes:
        if dialog_id is not None:
            used.setdefault(dialog_id, []).append(name)
    rows = [
        {
            "dialog": d,
            "latest": latest.get(d.id or 0),
            "published": numbers.get(d.published_version_id or 0),
            "inboxes": used.get(d.id or 0, []),
        }
        for d in dialogs
    ]
    return Template(
        template_name="admin/dialogs.html",
        context={"sections": SECTIONS, "section": None, "dialogs_page": True, "rows": rows},
    )


@post("/", status_code=200)
async def create(request: Request) -> Response:
    """A new dialog from the starter text (by name) or from an uploaded YAML file."""
    me = user_of(request)
    form = await request.form()
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_SOURCE + 1)
        if len(raw) > MAX_SOURCE:
            raise UnprocessableError(f"The file is larger than {MAX_SOURCE // 1000} kB.")
        try:
            source = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnprocessableError("The file is not UTF-8 text (a dialog is YAML).") from exc
    else:
        name = str(form.get("name", "") or "").strip()
        if not name.isidentifier() or len(name) > 64:
            raise UnprocessableError(
                "Name: letters, digits and _ only, starting with a letter (at most 64)."
            )
        source = NEW_DIALOG.format(name=name)
    async with services_of(request).sessionmaker() as db:
        try:
            dialog = await create_dialog(
                db, source, me.username, kind=DialogKind.INBOUND, publish_now=False
            )
        except DialogError as exc:
            first = exc.problems[0] if exc.problems else None
            raise UnprocessableError(
                f"The dialog does not load: line {first.line}: {first.message}"
                if first
                else "The dialog does not load."
            ) from exc
        except Exception as exc:  # a dialog of that name exists (unique name)
            raise UnprocessableError(
                "A dialog of that name exists already: open it instead."
            ) from exc
        audit.record(
            db,
            user_id=me.id,
            action="create",
            entity="dialog",
            entity_id=dialog.id,
            after={"name": dialog.name, "version": 1},
        )
        await db.commit()
    return Response(
        content="", status_code=200, headers={"HX-Redirect": f"/admin/dialogs/{dialog.id}"}
    )


@get("/{dialog_id:int}")
async def editor(
    request: Request, dialog_id: FromPath[int], version: int | None = None
) -> Template:
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        ctx = await _editor_context(db, dialog, number=version)
    return Template(template_name="admin/dialog_editor.html", context=ctx)


@post("/{dialog_id:int}/check", status_code=200)
async def check(request: Request, dialog_id: FromPath[int]) -> Template:
    """The problems and the diagram of the text being edited (htmx, as the admin types)."""
    form = await request.form()
    source = str(form.get("source", "") or "")[:MAX_SOURCE]
    async with services_of(request).sessionmaker() as db:
        await _dialog(db, dialog_id)
        ctx = await _check_context(db, source, dialog_id)
    return Template(template_name="admin/_dialog_check.html", context={**ctx, "oob": True})


@post("/{dialog_id:int}/problems", status_code=200)
async def problems(request: Request, dialog_id: FromPath[int]) -> list[dict[str, Any]]:
    """The same problems as JSON, for the code editor's linter (marks in the gutter)."""
    form = await request.form()
    source = str(form.get("source", "") or "")[:MAX_SOURCE]
    async with services_of(request).sessionmaker() as db:
        await _dialog(db, dialog_id)
        dialog, found = load(source, await recorded_prompts(db, dialog_id))
        if dialog is not None:
            found += hub_name_problems(dialog, *await hub_names(db))
    return [p.as_dict() for p in found]


@post("/{dialog_id:int}/tests", status_code=200)
async def tests(request: Request, dialog_id: FromPath[int]) -> Template:
    """The dialog's own test cases, run on the text being edited."""
    form = await request.form()
    source = str(form.get("source", "") or "")[:MAX_SOURCE]
    loaded, problems = load(source)
    results = run_tests(loaded) if loaded is not None else []
    return Template(
        template_name="admin/_dialog_tests.html",
        context={"results": results, "load_problems": problems if loaded is None else []},
    )


@post("/{dialog_id:int}/versions", status_code=200)
async def save(request: Request, dialog_id: FromPath[int]) -> Template:
    me = user_of(request)
    form = await request.form()
    source = str(form.get("source", "") or "")
    if len(source) > MAX_SOURCE:
        raise UnprocessableError(f"The dialog is longer than {MAX_SOURCE // 1000} kB.")
    note = str(form.get("note", "") or "").strip()[:200]
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        loaded, problems = load(source)
        if loaded is None:
            first = problems[0]
            raise UnprocessableError(
                f"Not saved: the dialog does not load (line {first.line}: {first.message})."
            )
        if loaded.name != dialog.name:
            raise UnprocessableError(
                f"Not saved: the text names dialog '{loaded.name}'; this is '{dialog.name}'."
            )
        before = (await versions_of(db, dialog))[-1:]
        row = await save_version(db, dialog, source, me.username, note=note)
        if before and before[0].id == row.id:
            message = f"Nothing changed since version {row.number}."
        else:
            audit.record(
                db,
                user_id=me.id,
                action="update",
                entity="dialog",
                entity_id=dialog.id,
                before={"version": row.number - 1},
                after={"version": row.number, "note": note},
            )
            message = f"Saved version {row.number}."
        await db.commit()
        ctx = await _editor_context(db, dialog, number=row.number, saved=message)
    return Template(template_name="admin/dialog_editor.html", context=ctx)


@post("/{dialog_id:int}/versions/{number:int}/publish", status_code=200)
async def publish_version(
    request: Request, dialog_id: FromPath[int], number: FromPath[int]
) -> Template:
    """Publish, or show in the editor why not (every problem, so the admin can fix them)."""
    me = user_of(request)
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        version = await _version(db, dialog, number)
        loaded, _ = load(version.source)
        refused = list(check_source(version.source, await recorded_prompts(db, dialog.id)))
        if loaded is not None:
            refused += [str(p) for p in hub_name_problems(loaded, *await hub_names(db))]
        if refused:
            ctx = await _editor_context(db, dialog, number=number, refused=refused)
            return Template(template_name="admin/dialog_editor.html", context=ctx)
        before = dialog.published_version_id
        try:
            await publish(db, dialog, number)
        except VersionError as exc:  # checked above; kept for a race with another admin
            raise UnprocessableError(str(exc)) from exc
        audit.record(
            db,
            user_id=me.id,
            action="publish",
            entity="dialog",
            entity_id=dialog.id,
            before={"published_version_id": before},
            after={"published": number},
        )
        await db.commit()
        ctx = await _editor_context(
            db, dialog, number=number, saved=f"Version {number} is published."
        )
    return Template(template_name="admin/dialog_editor.html", context=ctx)


@post("/{dialog_id:int}/versions/{number:int}/rollback", status_code=200)
async def rollback_to(
    request: Request, dialog_id: FromPath[int], number: FromPath[int]
) -> Template:
    me = user_of(request)
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        try:
            row = await rollback(db, dialog, number, me.username)
        except VersionError as exc:
            ctx = await _editor_context(
                db, dialog, refused=[str(exc), *getattr(exc, "problems", [])]
            )
            return Template(template_name="admin/dialog_editor.html", context=ctx)
        audit.record(
            db,
            user_id=me.id,
            action="rollback",
            entity="dialog",
            entity_id=dialog.id,
            before={"to": number},
            after={"version": row.number, "published": row.number},
        )
        await db.commit()
        ctx = await _editor_context(
            db,
            dialog,
            number=row.number,
            saved=f"Rolled back: version {row.number} equals version {number} and is published.",
        )
    return Template(template_name="admin/dialog_editor.html", context=ctx)


@get("/{dialog_id:int}/diff")
async def diff(request: Request, dialog_id: FromPath[int], a: int, b: int) -> Template:
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        versions = {v.number: v for v in await versions_of(db, dialog)}
    if a not in versions or b not in versions:
        raise NotFoundException(f"'{dialog.name}' has no version {a if a not in versions else b}.")
    lines = list(
        difflib.unified_diff(
            versions[a].source.splitlines(),
            versions[b].source.splitlines(),
            f"version {a}",
            f"version {b}",
            lineterm="",
        )
    )
    return Template(
        template_name="admin/dialog_diff.html",
        context={
            "sections": SECTIONS,
            "section": None,
            "dialogs_page": True,
            "dialog": dialog,
            "a": a,
            "b": b,
            "lines": lines,
        },
    )


@get("/{dialog_id:int}/versions/{number:int}/export")
async def export(request: Request, dialog_id: FromPath[int], number: FromPath[int]) -> Response:
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        version = await _version(db, dialog, number)
    return Response(
        content=version.source,
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{dialog.name}-v{number}.yaml"'},
    )


# ---------------------------------------------------------------- self-service figures


@get("/{dialog_id:int}/figures")
async def figures(request: Request, dialog_id: FromPath[int]) -> Template:
    """Visits and exits of every node, hang-ups, handovers and containment over a period
    (the organization's days), drawn on the published (else latest) version's flow."""
    timezone = services_of(request).settings.timezone
    q = request.query_params
    period = parse_period(q.get("from"), q.get("to"), timezone)
    start, end = local_day_range(period.first, period.last, timezone)
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        versions = await versions_of(db, dialog)
        found = await dialog_figures(db, dialog.name, start, end)
    shown = next((v for v in versions if v.id == dialog.published_version_id), None)
    shown = shown or (versions[-1] if versions else None)
    loaded = load(shown.source)[0] if shown is not None else None
    drawn = {
        f"{name}.{node}"
        for name, flow in (loaded.flows if loaded else {}).items()
        for node in flow.nodes
    }
    rows = sorted(found.nodes.items(), key=lambda kv: (-kv[1].visits, kv[0]))
    return Template(
        template_name="admin/dialog_figures.html",
        context={
            "sections": SECTIONS,
            "section": None,
            "dialogs_page": True,
            "dialog": dialog,
            "shown": shown,
            "period": period,
            "timezone": timezone,
            "figures": found,
            "rows": [(key.removeprefix("main."), f, key in drawn) for key, f in rows],
            **await _diagram(loaded, found.notes()),
        },
    )


# ---------------------------------------------------------------- simulator


@get("/{dialog_id:int}/simulate")
async def simulator(
    request: Request, dialog_id: FromPath[int], version: int | None = None, mode: str = "chat"
) -> Template:
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        versions = await versions_of(db, dialog)
    if not versions:
        raise NotFoundException(f"'{dialog.name}' has no version yet.")
    published = next((v.number for v in versions if v.id == dialog.published_version_id), None)
    number = version or published or versions[-1].number
    return Template(
        template_name="admin/dialog_simulator.html",
        context={
            "sections": SECTIONS,
            "section": None,
            "dialogs_page": True,
            "dialog": dialog,
            "versions": versions,
            "number": number,
            "mode": "voice" if mode == "voice" else "chat",
            "keys": "123456789*0#",
        },
    )


@post("/{dialog_id:int}/simulate", status_code=200)
async def simulate_step(request: Request, dialog_id: FromPath[int]) -> Template:
    """One turn of a simulated chat or call. Stateless: the page keeps the session's event
    log and sends it back, and the interpreter replays it (as text conversations do).

    In voice mode each turn of the dialog comes with its audio (``web.simulator_voice``),
    a key of the keypad is one ``Digit`` (as a phone sends them), a typed answer is
    recognized speech, and an uploaded WAV is transcribed by the hub's recognizer."""
    form = await request.form()
    try:
        number = int(str(form.get("version", "")))
        events: list[dict[str, Any]] = json.loads(str(form.get("log", "") or "[]"))
    except ValueError as exc:
        raise UnprocessableError("The simulator's state is damaged: start again.") from exc
    voice = form.get("mode") == "voice"
    text = form.get("text")
    key = str(form.get("key", "") or "")
    if key and (len(key) != 1 or key not in KEYPAD):
        raise UnprocessableError(f"'{key[:5]}' is not a key of the keypad (0-9, *, #).")
    spoken = form.get("speech")
    spoken = spoken if isinstance(spoken, UploadFile) and spoken.filename else None
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        version = await _version(db, dialog, number)
    loaded, problems = load(version.source)
    if loaded is None:
        raise UnprocessableError(
            f"Version {number} does not load: line {problems[0].line}: {problems[0].message}"
        )
    base_url = services_of(request).settings.self_url
    interpreter = Interpreter(loaded, {"channel": "voice" if voice else "simulator"})
    lines: list[dict[str, Any]] = []
    actions = interpreter.start()
    listen = _last_listen(actions, None)
    for data in events:
        actions = interpreter.feed(decode_event(data))
        listen = _last_listen(actions, listen)
    run = functools.partial(_run, dialog_id=dialog_id if voice else None, base_url=base_url)
    if text is None and not key and spoken is None:  # a new session: greet
        lines += await run(interpreter, actions, events)
    elif not interpreter.done and interpreter.waiting_for == "input":
        event: Event
        if key:
            event = Digit(key)
            lines.append(_line("caller", f"pressed {key}"))
        elif spoken is not None:
            raw = await spoken.read(MAX_SPOKEN_BYTES + 1)
            heard, event = await hear_answer(services_of(request), raw, listen)
            taken = f" → taken as “{event.text}”" if event.text and event.text != heard else ""
            lines.append(_line("caller", f"said “{heard}”{taken}" if heard else "(no words heard)"))
        else:
            typed = str(text or "")[:500]
            if typed == "/hangup":
                event = HangUp()
            elif voice:  # typed words are what the recognizer would have heard
                event = Utterance(typed.strip(), 1.0) if typed.strip() else NoInput()
            else:
                event = text_to_event(typed)
            lines.append(_line("caller", typed or "(silence)"))
        events.append(encode_event(event))
        lines += await run(interpreter, interpreter.feed(event), events)
    trace = interpreter.trace
    return Template(
        template_name="admin/_dialog_turn.html",
        context={
            "lines": lines,
            "log": json.dumps(events),
            "done": interpreter.done,
            "trace": trace,
        },
    )


def _line(who: str, text: str, audio: str | None = None) -> dict[str, Any]:
    return {"who": who, "text": text, "audio": audio}


def _last_listen(actions: list[Any], before: Listen | None) -> Listen | None:
    """The question the caller is answering (its phrases are the recognizer's hints)."""
    return next((a for a in reversed(actions) if isinstance(a, Listen)), before)


def describe_end(action: Any) -> str:
    """How the dialog ended, in words, for the simulator's last line."""
    data = action_dict(action)
    kind = data.pop("action")
    details = ", ".join(f"{k} {v}" for k, v in data.items() if v not in (None, "", {}, [], ()))
    return f"{kind}: {details}" if details else kind


async def _run(
    interpreter: Interpreter,
    actions: list[Any],
    events: list[dict[str, Any]],
    *,
    base_url: str,
    dialog_id: int | None = None,
) -> list[dict[str, Any]]:
    """What the dialog says (lookups made for real, as the hub would), until it waits;
    with ``dialog_id`` (voice mode) each of its lines has the URL of its audio."""
    lines: list[dict[str, Any]] = []
    said: list[Say] = []

    def say_line(listen: Listen | None) -> dict[str, Any]:
        text = render_prompt([s.text or "" for s in said], listen)
        audio = speech_url(dialog_id, said) if dialog_id is not None else None
        said.clear()
        return _line("dialog", text, audio)

    while True:
        for action in actions:
            if isinstance(action, Say):
                said.append(action)
            elif isinstance(action, Listen):
                lines.append(say_line(action))
            elif not isinstance(action, Lookup | SurveyAnswer):
                if said:
                    lines.append(say_line(None))
                lines.append(_line("end", describe_end(action)))
        lookup = next((a for a in actions if isinstance(a, Lookup)), None)
        if lookup is None:
            break
        async with httpx.AsyncClient(base_url=base_url) as client:  # "/" is the hub itself
            result = await perform_lookup(client, lookup, secrets_from_env())
        events.append(encode_event(result))
        lines.append(
            _line("lookup", f"{lookup.method} {lookup.url} → {result.status or result.error}")
        )
        actions = interpreter.feed(result)
    if said:
        lines.append(say_line(None))
    return lines


route_handlers: list = [
    Router(
        path="/admin/dialogs",
        guards=[role_guard(Role.ADMIN)],
        route_handlers=[
            dialogs_page,
            create,
            editor,
            check,
            problems,
            tests,
            save,
            publish_version,
            agent_nodes,
            rollback_to,
            diff,
            export,
            simulator,
            simulate_step,
            simulate_speech,
            figures,
        ],
    )
]
