"""Recorded prompts: the WAV an admin uploads for a dialog's prompt in one language, which
calls play instead of the synthesized voice.

A recording stands for the words of a prompt in a language (``PromptRecording.text``, the
text the interpreter says there: the language's own text, else the default language's it
falls back to). Keying by the words, not by a node, means the same sentence used by two
nodes is recorded once, and an edited prompt is spoken by the voice again (the page shows
the old recording as outdated) rather than playing words the dialog no longer says.

An upload is checked (a readable WAV: PCM 8-32 bit, float or G.711, any rate and channel
count; not empty, silent, too long or too large) and converted once, on upload, to what the
media engine plays: 8 kHz mono 16-bit PCM. Recordings live in the database, so every hub
process plays the same audio; each process keeps the decoded audio in a small cache by
recording id (a row never changes: a new upload is a new row).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from ivr_dialogs.loader import Dialog as LoadedDialog
from ivr_dialogs.validator import text_fields
from models import PromptRecording
from speech.audio import Audio, AudioError, read_wav, resample, wav_bytes

__all__ = [
    "TELEPHONY_RATE",
    "Converted",
    "PromptRow",
    "RecordingStore",
    "convert_upload",
    "prompt_rows",
    "text_sha",
]

TELEPHONY_RATE = 8000
MIN_SECONDS = 0.1
SILENT_PEAK = 64  # int16: below this everywhere, the file holds no sound (about -54 dBFS)
Pcm = npt.NDArray[np.int16]


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Converted:
    """An upload in telephony format: the WAV to store, and what it was before."""

    wav: bytes
    duration_ms: int
    original_format: str


def convert_upload(data: bytes, *, max_seconds: float, max_bytes: int) -> Converted:
    """Check an uploaded WAV and convert it to 8 kHz mono 16-bit PCM; ``AudioError`` with a
    reason a person can act on when it cannot be a prompt."""
    if not data:
        raise AudioError("the file is empty")
    if len(data) > max_bytes:
        raise AudioError(
            f"the file is {len(data) / 1e6:.1f} MB; a recorded prompt may be at most "
            f"{max_bytes / 1e6:.0f} MB"
        )
    try:
        audio = read_wav(data)
    except AudioError as exc:
        raise AudioError(f"not a WAV file this hub can read: {exc}") from None
    if audio.duration > max_seconds:
        raise AudioError(
            f"the recording lasts {audio.duration:.1f} s; a prompt may last at most "
            f"{max_seconds:.0f} s"
        )
    if audio.duration < MIN_SECONDS:
        raise AudioError(f"the recording lasts {audio.duration * 1000:.0f} ms: too short")
    original = f"{audio.sample_rate} Hz, {audio.channels} channel{'s' * (audio.channels > 1)}"
    mono = audio.mono().samples
    pcm = resample(mono, audio.sample_rate, TELEPHONY_RATE) if audio.sample_rate != 8000 else mono
    if pcm.size == 0 or int(np.abs(pcm.astype(np.int32)).max()) < SILENT_PEAK:
        raise AudioError("the recording is silent")
    converted = Audio(np.ascontiguousarray(pcm, dtype=np.int16), TELEPHONY_RATE)
    return Converted(
        wav_bytes(converted), round(converted.duration * 1000), original_format=original
    )


# ---------------------------------------------------------------- a dialog's prompts


@dataclass(slots=True)
class PromptRow:
    """One prompt of a dialog in one language, as the prompts page lists it."""

    language: str
    where: list[str]  # "node.prompt", "node.no_input.prompts.0", ...
    text: str  # what the interpreter says in this language
    own_text: bool  # False: the language has no text; another language's is said
    fixed: bool  # no {{ }} holes: the words are known, so they can be recorded
    sha: str
    said_from: str  # the language whose text is said (the interpreter's fallback)
    recording: Any = None  # the PromptRecording (without its audio), if any
    extra: dict[str, Any] = field(default_factory=dict)


def prompt_fields(dialog: LoadedDialog) -> list[tuple[str, Any]]:
    """Every spoken field of every node ("node.prompt", its text or texts by language);
    a sub-dialog's nodes are named "flow/node"."""
    found = []
    for name, flow in dialog.flows.items():
        for node_id, node in flow.nodes.items():
            label = node_id if name == "main" else f"{name}/{node_id}"
            for path, value in text_fields(node):
                if path[0] != "audio":
                    found.append((".".join((label, *path)), value))
    return found


def prompt_rows(dialog: LoadedDialog) -> list[PromptRow]:
    """Every prompt of the dialog in each language it declares, with the text said there
    (the same choice as the interpreter's: the language's text, else the default's)."""
    default = dialog.model.language
    rows: dict[tuple[str, str], PromptRow] = {}
    for language in dialog.model.languages:
        for where, value in prompt_fields(dialog):
            if isinstance(value, str):
                text, said_from = value, default
            else:
                said_from = next(
                    (lang for lang in (language, default, *value) if value.get(lang)), language
                )
                text = value.get(said_from) or ""
            own = said_from == language
            if not text.strip():
                continue
            key = (language, text)
            if key in rows:
                rows[key].where.append(where)
                continue
            rows[key] = PromptRow(
                language, [where], text, own, "{{" not in text, text_sha(text), said_from
            )
    return list(rows.values())


# ---------------------------------------------------------------- playing them


class RecordingStore:
    """A dialog's recordings as 8 kHz PCM by (language, text), for calls and the simulator.

    Which recordings exist is read from the database on every call (a small query), so an
    upload or a deletion in any hub process counts for the next call; the audio of each
    recording is decoded once per process (rows never change) and kept in a bounded cache.
    """

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], max_bytes: int = 32 * 1024 * 1024
    ) -> None:
        self.sessionmaker = sessionmaker
        self.max_bytes = max_bytes
        self._pcm: OrderedDict[int, Pcm] = OrderedDict()
        self._bytes = 0

    async def for_dialog(
        self, dialog_id: int, db: AsyncSession | None = None
    ) -> dict[tuple[str, str], Pcm]:
        """The dialog's recordings by (language, prompt text); in ``db`` when given (a call
        reads them in the same transaction as its dialog)."""
        if db is None:
            async with self.sessionmaker() as own:
                return await self.for_dialog(dialog_id, own)
        rows = (
            await db.exec(  # type: ignore[attr-defined]
                select(PromptRecording.id, PromptRecording.language, PromptRecording.text)
                .where(PromptRecording.dialog_id == dialog_id)
                .order_by(col(PromptRecording.id))
            )
        ).all()
        missing = [rid for rid, _lang, _text in rows if rid not in self._pcm]
        if missing:
            found = await db.exec(  # type: ignore[attr-defined]
                select(PromptRecording.id, PromptRecording.audio).where(
                    col(PromptRecording.id).in_(missing)
                )
            )
            for rid, audio in found.all():
                self._remember(rid, _decode(audio))
        out: dict[tuple[str, str], Pcm] = {}
        for rid, language, text in rows:
            pcm = self._pcm.get(rid)
            if pcm is not None:
                self._pcm.move_to_end(rid)
                out[(language, text)] = pcm
        return out

    def _remember(self, rid: int, pcm: Pcm) -> None:
        pcm.setflags(write=False)  # shared by every call that plays it
        self._pcm[rid] = pcm
        self._bytes += pcm.nbytes
        while self._bytes > self.max_bytes and len(self._pcm) > 1:
            _, dropped = self._pcm.popitem(last=False)
            self._bytes -= dropped.nbytes


def _decode(data: bytes) -> Pcm:
    audio = read_wav(data).mono()
    if audio.sample_rate != TELEPHONY_RATE:  # stored converted; kept safe for old rows
        return resample(audio.samples, audio.sample_rate, TELEPHONY_RATE)
    return audio.samples


def recording_store(services: Any) -> RecordingStore:
    """The process's one store (``services.extras["prompt_recordings"]``)."""
    store = services.extras.get("prompt_recordings")
    if store is None:
        store = services.extras["prompt_recordings"] = RecordingStore(services.sessionmaker)
    return store
