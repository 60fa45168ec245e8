"""The simulator's voice mode: what a caller would hear, and spoken answers heard as a call
hears them.

Prompts are spoken by the hub's own engines, the ones the IVR loaded once for the process
(``services.extras["voice"].ivr``): a prompt an admin recorded plays that recording, any
other is rendered by the language's voice through the shared prompt cache (8 kHz, what the
phone line carries), so trying a dialog costs no model load and warms the cache for calls.
An uploaded spoken answer (WAV) is transcribed by the same faster-whisper pool with the
menu's phrases as hints, and chosen the way a call chooses (``chosen_answer``).
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from hub.prompt_recordings import TELEPHONY_RATE, recording_store
from ivr_dialogs.actions import Listen, Say
from ivr_dialogs.events import Utterance
from models import Dialog
from speech.audio import Audio, AudioError, read_wav, wav_bytes
from web.common import ClientError, ServiceUnavailable, UnprocessableError, services_of

if TYPE_CHECKING:
    from channels.voice.ivr_port import IvrSpeech

MAX_PARTS = 12
MAX_TEXT = 2000
MAX_ANSWER_SECONDS = 30.0
MAX_ANSWER_BYTES = 8 * 1024 * 1024
GAP = np.zeros(TELEPHONY_RATE // 4, dtype=np.int16)  # a quarter second between prompts
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})?$")


class VoiceOff(ClientError):
    """This hub runs without voice, so it has no speech engines to speak with (409: the
    hub's configuration, not the request, is what stands in the way; the page shows why)."""

    status_code = 409


async def hub_speech(services: Any) -> IvrSpeech:
    """The IVR's engines of this process (loaded once, at voice start); a 409 saying why
    when this hub runs without voice, a 503 when they failed to load (logged)."""
    runtime = services.extras.get("voice")
    if runtime is None:
        raise VoiceOff(
            "Voice mode speaks with the IVR's engines, which load with the SIP endpoint: "
            "this hub runs with HUB_VOICE_ENABLED off."
        )
    try:
        return await runtime.ivr.speech()
    except Exception as exc:
        raise ServiceUnavailable(f"The speech engines did not load: {exc}") from exc


def speech_url(dialog_id: int, said: list[Say]) -> str | None:
    """Where the page fetches the audio of what the dialog says in one turn."""
    parts = [("p", f"{s.lang}:{s.text}") for s in said if s.text.strip()][:MAX_PARTS]
    if not parts:
        return None
    return f"/admin/dialogs/{dialog_id}/simulate/speech?{urlencode(parts)}"


@get("/{dialog_id:int}/simulate/speech")
async def simulate_speech(request: Request, dialog_id: FromPath[int]) -> Response:
    """One turn's prompts as an 8 kHz WAV: recordings where the admin made them, the
    language's voice for the rest."""
    services = services_of(request)
    parts: list[tuple[str, str]] = []
    for raw in request.query_params.getall("p", [])[:MAX_PARTS]:
        language, _, text = str(raw).partition(":")
        if not _LANGUAGE.match(language) or not text.strip() or len(text) > MAX_TEXT:
            raise UnprocessableError("Each p must be language:text (at most 2,000 characters).")
        parts.append((language, text))
    if not parts:
        raise UnprocessableError("Nothing to say: give p=language:text.")
    async with services.sessionmaker() as db:
        if await db.get(Dialog, dialog_id) is None:
            raise NotFoundException(f"There is no dialog #{dialog_id}.")
    speech = await hub_speech(services)
    recordings = await recording_store(services).for_dialog(dialog_id)
    others = sorted({lang for lang, _ in parts if lang not in speech.voices})
    if others:  # espeak-ng for a language without a voice, as a call would get
        await asyncio.to_thread(speech.add_fallback_voices, others)
    pcm: list[np.ndarray] = []
    for language, text in parts:
        found = recordings.get((language, text))
        if found is None:
            found = await speech.prompts_for(language).render(text)
        pcm += [found, GAP]
    audio = Audio(np.concatenate(pcm[:-1]).astype(np.int16), TELEPHONY_RATE)
    return Response(
        content=wav_bytes(audio),
        media_type="audio/wav",
        headers={"Cache-Control": "private, max-age=300"},
    )


async def hear_answer(services: Any, data: bytes, listen: Listen | None) -> tuple[str, Utterance]:
    """A spoken answer (WAV bytes) as the IVR hears it: (what was said, the event)."""
    if not data:
        raise UnprocessableError("The spoken answer is empty: choose a WAV file.")
    if len(data) > MAX_ANSWER_BYTES:
        raise UnprocessableError("The spoken answer is larger than 8 MB.")
    try:
        audio = read_wav(data).mono()
    except AudioError as exc:
        raise UnprocessableError(
            f"The spoken answer is not a WAV file this hub reads: {exc}."
        ) from exc
    if audio.duration > MAX_ANSWER_SECONDS:
        raise UnprocessableError(
            f"The spoken answer lasts {audio.duration:.0f} s; at most {MAX_ANSWER_SECONDS:.0f} s."
        )
    from channels.voice.ivr_port import chosen_answer

    speech = await hub_speech(services)
    hints = list(listen.hints) if listen is not None else []
    heard = await speech.recognizer.transcribe_utterance(audio, hints or None)
    chosen, confidence = chosen_answer(heard)
    return heard.text.strip(), Utterance(chosen, float(confidence) if chosen else 0.0)
