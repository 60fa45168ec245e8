"""A dialog's prompts as recorded audio: per language the dialog declares, every prompt with
its text and its recording, if any. The admin uploads a WAV for a prompt and a language
(checked and converted to 8 kHz mono telephony audio on upload, ``hub.prompt_recordings``),
plays it in the page and deletes it. Calls then play the recording instead of the voice,
and the validator counts a recorded prompt as present in that language. Every upload and
deletion is audited.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.dialogs import recorded_prompts, versions_of
from hub.prompt_recordings import PromptRow, convert_upload, prompt_rows
from ivr_dialogs.loader import DialogError, load_dialog_text
from ivr_dialogs.validator import validate
from models import Dialog, DialogVersion, PromptRecording, Role
from speech.audio import AudioError
from web.admin import SECTIONS
from web.common import UnprocessableError, role_guard, services_of, user_of


async def _dialog(db: AsyncSession, dialog_id: int) -> Dialog:
    dialog = await db.get(Dialog, dialog_id)
    if dialog is None:
        raise NotFoundException(f"There is no dialog #{dialog_id}.")
    return dialog


async def _shown(db: AsyncSession, dialog: Dialog, number: int | None) -> DialogVersion:
    """The version asked for, else the published one, else the latest."""
    versions = await versions_of(db, dialog)
    if not versions:
        raise NotFoundException(f"'{dialog.name}' has no version yet.")
    if number is not None:
        found = next((v for v in versions if v.number == number), None)
        if found is None:
            raise NotFoundException(f"'{dialog.name}' has no version {number}.")
        return found
    published = next((v for v in versions if v.id == dialog.published_version_id), None)
    return published or versions[-1]


async def _recordings(db: AsyncSession, dialog_id: int) -> list[PromptRecording]:
    query = (
        select(PromptRecording)
        .where(PromptRecording.dialog_id == dialog_id)
        .options(defer(PromptRecording.audio))  # type: ignore[arg-type]
        .order_by(col(PromptRecording.language), col(PromptRecording.id))
    )
    return list((await db.exec(query)).all())


async def _context(
    db: AsyncSession, dialog: Dialog, number: int | None, settings: Any, **extra: Any
) -> dict[str, Any]:
    version = await _shown(db, dialog, number)
    try:
        loaded = load_dialog_text(version.source, file=f"{dialog.name} v{version.number}")
    except DialogError:
        loaded = None
    rows: list[PromptRow] = prompt_rows(loaded) if loaded is not None else []
    recordings = await _recordings(db, dialog.id)  # type: ignore[arg-type]
    by_key = {(r.language, r.text_sha): r for r in recordings}
    for row in rows:
        row.recording = by_key.pop((row.language, row.sha), None)
    languages = list(loaded.model.languages) if loaded is not None else []
    missing = []
    if loaded is not None:
        recorded = await recorded_prompts(db, dialog.id)
        missing = [p for p in validate(loaded, recorded) if p.code == "missing-prompt"]
    return {
        "sections": SECTIONS,
        "section": None,
        "dialogs_page": True,
        "dialog": dialog,
        "version": version,
        "versions": await versions_of(db, dialog),
        "loads": loaded is not None,
        "languages": languages,
        "default_language": loaded.model.language if loaded is not None else "",
        "rows": rows,
        "unused": list(by_key.values()),  # recorded for words this version does not say
        "missing": missing,
        "max_seconds": settings.prompt_recording_max_seconds,
        "max_mb": settings.prompt_recording_max_mb,
        **extra,
    }


def _page(ctx: dict[str, Any]) -> Template:
    return Template(template_name="admin/dialog_prompts.html", context=ctx)


@get("/")
async def prompts_page(
    request: Request, dialog_id: FromPath[int], version: int | None = None
) -> Template:
    services = services_of(request)
    async with services.sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        return _page(await _context(db, dialog, version, services.settings))


@post("/", status_code=200)
async def upload(request: Request, dialog_id: FromPath[int]) -> Template:
    """A WAV for one prompt in one language: checked, converted, stored (replacing the
    previous recording of that prompt), audited."""
    me = user_of(request)
    settings = services_of(request).settings
    form = await request.form()
    language = str(form.get("language", "") or "")
    sha = str(form.get("sha", "") or "")
    try:
        number = int(str(form.get("version", "")))
    except ValueError as exc:
        raise UnprocessableError("The form is damaged: reload the page.") from exc
    upload_file = form.get("file")
    if not isinstance(upload_file, UploadFile) or not upload_file.filename:
        raise UnprocessableError("Choose a WAV file to upload.")
    max_bytes = int(settings.prompt_recording_max_mb * 1_000_000)
    data = await upload_file.read(max_bytes + 1)
    try:
        converted = convert_upload(
            data, max_seconds=settings.prompt_recording_max_seconds, max_bytes=max_bytes
        )
    except AudioError as exc:
        raise UnprocessableError(f"{upload_file.filename}: {exc}.") from exc
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        version = await _shown(db, dialog, number)
        loaded = load_dialog_text(version.source, file=dialog.name)
        row = next(
            (r for r in prompt_rows(loaded) if r.language == language and r.sha == sha), None
        )
        if row is None:
            raise UnprocessableError(
                f"Version {number} has no such prompt in '{language}': reload the page."
            )
        if not row.fixed:
            raise UnprocessableError(
                "This prompt has {{ }} holes filled in per caller: the voice must speak it."
            )
        old = (
            await db.exec(
                select(PromptRecording).where(
                    PromptRecording.dialog_id == dialog.id,
                    PromptRecording.language == language,
                    PromptRecording.text_sha == sha,
                )
            )
        ).first()
        before = None
        if old is not None:
            before = _described(old)
            await db.delete(old)
            await db.flush()
        recording = PromptRecording(
            dialog_id=dialog.id,  # type: ignore[arg-type]
            language=language,
            text_sha=sha,
            text=row.text,
            audio=converted.wav,
            duration_ms=converted.duration_ms,
            filename=str(upload_file.filename)[:200],
            original_format=converted.original_format,
            uploaded_by=me.username,
        )
        db.add(recording)
        try:
            await db.flush()
        except IntegrityError as exc:  # another admin's upload of the same prompt won
            raise UnprocessableError(
                "Another upload of this prompt was stored at the same moment: reload the page."
            ) from exc
        audit.record(
            db,
            user_id=me.id,
            action="upload",
            entity="prompt_recording",
            entity_id=recording.id,
            before=before,
            after=_described(recording),
        )
        await db.commit()
        saved = (
            f"Recorded “{_short(row.text)}” in {language}: {converted.duration_ms / 1000:.1f} s, "
            f"converted from {converted.original_format} to 8 kHz mono."
        )
        return _page(await _context(db, dialog, number, settings, saved=saved))


@get("/{recording_id:int}/audio")
async def audio(
    request: Request, dialog_id: FromPath[int], recording_id: FromPath[int]
) -> Response:
    """The stored recording (8 kHz mono WAV), for the page's player."""
    async with services_of(request).sessionmaker() as db:
        recording = await db.get(PromptRecording, recording_id)
        if recording is None or recording.dialog_id != dialog_id:
            raise NotFoundException(f"There is no recording #{recording_id} of this dialog.")
        body = bytes(recording.audio)
    return Response(
        content=body,
        media_type="audio/wav",
        headers={"Cache-Control": "private, max-age=3600"},  # a row never changes
    )


@post("/{recording_id:int}/delete", status_code=200)
async def delete(
    request: Request, dialog_id: FromPath[int], recording_id: FromPath[int]
) -> Template:
    me = user_of(request)
    settings = services_of(request).settings
    form = await request.form()
    try:
        number: int | None = int(str(form.get("version", "")))
    except ValueError:
        number = None
    async with services_of(request).sessionmaker() as db:
        dialog = await _dialog(db, dialog_id)
        recording = await db.get(PromptRecording, recording_id)
        if recording is None or recording.dialog_id != dialog.id:
            raise NotFoundException(f"There is no recording #{recording_id} of this dialog.")
        before = _described(recording)
        await db.delete(recording)
        audit.record(
            db,
            user_id=me.id,
            action="delete",
            entity="prompt_recording",
            entity_id=recording_id,
            before=before,
        )
        await db.commit()
        saved = f"Deleted the recording of “{_short(before['text'])}” in {before['language']}."
        return _page(await _context(db, dialog, number, settings, saved=saved))


def _described(recording: PromptRecording) -> dict[str, Any]:
    """What the audit log keeps of a recording (not its audio)."""
    return {
        "dialog_id": recording.dialog_id,
        "language": recording.language,
        "text": recording.text,
        "duration_ms": recording.duration_ms,
        "filename": recording.filename,
        "original_format": recording.original_format,
        "uploaded_by": recording.uploaded_by,
    }


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


route_handlers: list = [
    Router(
        path="/admin/dialogs/{dialog_id:int}/prompts",
        guards=[role_guard(Role.ADMIN)],
        route_handlers=[prompts_page, upload, audio, delete],
    )
]
