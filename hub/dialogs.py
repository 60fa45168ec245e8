"""Dialogs stored in the hub: immutable versions, one published, and each inbox's dialog.

The rules are ``ivr_dialogs.versions``' (a version never changes, an unchanged source adds
no version, publishing needs a dialog that loads, validates and passes its own tests, a
rollback is a new version); this module keeps them in ``Dialog``/``DialogVersion`` rows.
``published_dialog`` is the seam the call service and the text channels use: the inbox's
published version, loaded and compiled once per process (a version never changes, so the
compiled dialog is shared by every session that runs it).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import ivr_dialogs
from ivr_dialogs.loader import Dialog as LoadedDialog
from ivr_dialogs.loader import DialogError, load_dialog_text
from ivr_dialogs.versions import DialogHistory, VersionError, publish_problems
from ivr_dialogs.versions import DialogVersion as VersionRecord
from models import Dialog, DialogKind, DialogVersion, Inbox, PromptRecording, ValidationStatus

log = logging.getLogger(__name__)

LIBRARY_DIR = Path(ivr_dialogs.__file__).parent / "library"
# The samples that do not answer an inbox; every other sample is an inbound dialog.
LIBRARY_KINDS: dict[str, DialogKind] = {
    "arrears_reminder": DialogKind.OUTBOUND,
    "satisfaction_survey": DialogKind.SURVEY,
}


@dataclass(frozen=True, slots=True)
class PublishedDialog:
    """An inbox's live dialog: which version it is (a text session stores ``version_id``
    to resume on the same version) and the loaded dialog the interpreter runs."""

    dialog_id: int
    name: str
    version_id: int
    number: int
    dialog: LoadedDialog


@functools.lru_cache(maxsize=128)
def check_source(
    source: str, recorded: frozenset[tuple[str, str]] = frozenset()
) -> tuple[str, ...]:
    """Why a source may not be published (empty: it may). Deterministic, so memoized.
    ``recorded``: the (language, prompt text) pairs the dialog has a recording for."""
    return tuple(publish_problems(source, recorded))


async def recorded_prompts(db: AsyncSession, dialog_id: int | None) -> frozenset[tuple[str, str]]:
    """The (language, prompt text) pairs an admin uploaded a recording for: the validator
    counts them as prompts present in that language."""
    query = select(PromptRecording.language, PromptRecording.text).where(
        PromptRecording.dialog_id == dialog_id
    )
    return frozenset((lang, text) for lang, text in (await db.exec(query)).all())


@functools.lru_cache(maxsize=128)
def _load(source: str, file: str) -> LoadedDialog:
    return load_dialog_text(source, file=file)


def version_label(name: str, number: int) -> str:
    """What a loaded version's problems and traces name as their file."""
    return f"{name} v{number}"


def load_version(name: str, version: DialogVersion) -> LoadedDialog:
    """A stored version, loaded and compiled once per process (versions never change)."""
    return _load(version.source, version_label(name, version.number))


async def versions_of(db: AsyncSession, dialog: Dialog) -> list[DialogVersion]:
    query = (
        select(DialogVersion)
        .where(DialogVersion.dialog_id == dialog.id)
        .order_by(col(DialogVersion.number))
    )
    return list((await db.exec(query)).all())


async def history_of(db: AsyncSession, dialog: Dialog) -> DialogHistory:
    """The dialog's versions as ``ivr_dialogs`` sees them (for diffs and the rules)."""
    return _history(dialog, await versions_of(db, dialog))


def _history(dialog: Dialog, rows: list[DialogVersion]) -> DialogHistory:
    published = next((r.number for r in rows if r.id == dialog.published_version_id), None)
    records = (
        VersionRecord(r.number, r.source, r.sha256, r.created_at, r.created_by, r.note)
        for r in rows
    )
    return DialogHistory(dialog.name, records, published)


async def save_version(
    db: AsyncSession, dialog: Dialog, source: str, author: str, *, note: str = ""
) -> DialogVersion:
    """Store ``source`` as the dialog's next version, with what checking it found.

    The same source as the latest version adds nothing and returns that version. Flushed,
    not committed: the caller's transaction decides.
    """
    rows = await versions_of(db, dialog)
    history = _history(dialog, rows)
    before = history.latest
    record = history.add(source, author, note=note)
    if before is not None and record is before:
        return rows[-1]
    return await _store(db, dialog, record)


async def _store(db: AsyncSession, dialog: Dialog, record: VersionRecord) -> DialogVersion:
    problems = check_source(record.source, await recorded_prompts(db, dialog.id))
    row = DialogVersion(
        dialog_id=dialog.id,  # type: ignore[arg-type]
        number=record.number,
        source=record.source,
        sha256=record.sha256,
        note=record.note,
        created_by=record.author,
        created_at=record.created_at,
        validation=ValidationStatus.INVALID if problems else ValidationStatus.VALID,
        problems=list(problems),
    )
    db.add(row)
    await db.flush()
    return row


async def publish(db: AsyncSession, dialog: Dialog, number: int) -> DialogVersion:
    """Make version ``number`` the live one; ``VersionError`` (with its problems) if it
    does not load, validate and pass its own tests. Flushed, not committed."""
    rows = await versions_of(db, dialog)
    history = _history(dialog, rows)
    record = history.get(number)
    problems = check_source(record.source, await recorded_prompts(db, dialog.id))
    if problems:
        raise VersionError(
            f"version {number} of '{dialog.name}' cannot be published", list(problems)
        )
    history.publish(number, check=False)  # checked just above, memoized
    row = rows[number - 1]
    dialog.published_version_id = row.id
    db.add(dialog)
    await db.flush()
    return row


async def rollback(db: AsyncSession, dialog: Dialog, number: int, author: str) -> DialogVersion:
    """A new version equal to version ``number``, published: the history keeps both."""
    history = await history_of(db, dialog)
    record = history.rollback(number, author, publish=False)
    row = await _store(db, dialog, record)
    await publish(db, dialog, row.number)
    return row


async def create_dialog(
    db: AsyncSession,
    source: str,
    author: str,
    *,
    kind: DialogKind = DialogKind.INBOUND,
    publish_now: bool = True,
) -> Dialog:
    """A new dialog named by its source's ``dialog:``, with the source as version 1,
    published when asked (and valid). Raises ``DialogError`` if the source does not load."""
    loaded = _load(source, "<new dialog>")
    dialog = Dialog(name=loaded.name, kind=kind, description=loaded.model.description or "")
    db.add(dialog)
    await db.flush()
    version = await save_version(db, dialog, source, author)
    if publish_now:
        try:
            await publish(db, dialog, version.number)
        except VersionError as exc:
            log.warning("dialog %s stays unpublished: %s", dialog.name, exc)
    return dialog


async def import_library(
    db: AsyncSession, directory: Path = LIBRARY_DIR, author: str = "seed"
) -> dict[str, Dialog]:
    """Every sample dialog (``*.yaml``) as a dialog with version 1 published; a dialog
    whose name exists already is left as its admins made it. Returns all of them by name,
    imported or found. Flushed, not committed."""
    existing = {d.name: d for d in (await db.exec(select(Dialog))).all()}
    for path, source in await asyncio.to_thread(_read_yaml_files, directory):
        try:
            name = _load(source, str(path)).name
        except DialogError as exc:
            log.warning("sample dialog %s does not load: %s", path.name, exc)
            continue
        if name not in existing:
            kind = LIBRARY_KINDS.get(name, DialogKind.INBOUND)
            existing[name] = await create_dialog(db, source, author, kind=kind)
    return existing


def _read_yaml_files(directory: Path) -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.yaml"))]


async def published_dialog(db: AsyncSession, inbox_id: int) -> PublishedDialog | None:
    """The inbox's published dialog version, loaded; None when the inbox has no dialog or
    its dialog has no published version (contacts then go straight to routing)."""
    query = (
        select(Dialog, DialogVersion)
        .join(Inbox, col(Inbox.dialog_id) == col(Dialog.id))
        .join(DialogVersion, col(DialogVersion.id) == col(Dialog.published_version_id))
        .where(Inbox.id == inbox_id)
    )
    found = (await db.exec(query)).first()
    if found is None:
        return None
    dialog, version = found
    loaded = load_version(dialog.name, version)
    return PublishedDialog(
        dialog_id=dialog.id,  # type: ignore[arg-type]
        name=dialog.name,
        version_id=version.id,  # type: ignore[arg-type]
        number=version.number,
        dialog=loaded,
    )
