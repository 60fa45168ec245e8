"""Recorded prompts: an upload is checked and converted to telephony audio, a dialog's
prompts are listed per language with the text said there, a recording makes a missing
prompt present for the validator (and so for publishing), and the store hands calls the
audio by (language, text) from the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest

from hub import dialogs
from hub.prompt_recordings import RecordingStore, convert_upload, prompt_rows, text_sha
from hub.services import Services
from ivr_dialogs.loader import load_dialog_text
from ivr_dialogs.validator import validate
from models import PromptRecording
from speech.audio import Audio, AudioError, read_wav, wav_bytes
from tests.channels.voice.helpers import level_at

LIMITS = {"max_seconds": 10.0, "max_bytes": 1_000_000}
BILINGUAL = """\
dialog: bilingual_menu
languages: [es, en]
start: main
nodes:
  main:
    type: menu
    prompt: {en: "For billing, press 1."}
    options:
      - digit: "1"
        next: bye
    no_input: {retries: 0, fallback: bye}
    no_match: {retries: 0, fallback: bye}
  bye:
    type: hangup
    prompt: {en: "Goodbye.", es: "Adiós."}
"""


def tone_wav(rate: int, channels: int, seconds: float, freq: float = 1000.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    wave = (np.sin(2 * np.pi * freq * t) * 0.5 * 32767).astype(np.int16)
    samples = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    return wav_bytes(Audio(samples, rate))


def test_a_stereo_44k_upload_becomes_8k_mono_with_its_tone_kept() -> None:
    converted = convert_upload(tone_wav(44100, 2, 1.5), **LIMITS)
    audio = read_wav(converted.wav)
    assert (audio.sample_rate, audio.channels) == (8000, 1)
    assert converted.duration_ms == 1500
    assert converted.original_format == "44100 Hz, 2 channels"
    assert level_at(audio.samples[800:-800], 1000.0) > 10_000  # still the 1 kHz tone
    assert level_at(audio.samples[800:-800], 440.0) < 500


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"For billing, press 1.\n" * 20, "not a WAV file this hub can read"),
        (b"", "the file is empty"),
        (tone_wav(8000, 1, 12.0), "a prompt may last at most 10 s"),
        (tone_wav(8000, 1, 0.05), "too short"),
        (wav_bytes(Audio(np.zeros(8000, np.int16), 8000)), "the recording is silent"),
        (tone_wav(48000, 2, 9.0), "a recorded prompt may be at most 1 MB"),
    ],
)
def test_an_upload_that_cannot_be_a_prompt_is_refused_with_the_reason(
    data: bytes, reason: str
) -> None:
    with pytest.raises(AudioError, match=reason):
        convert_upload(data, **LIMITS)


def test_prompts_are_listed_per_language_with_the_text_said_there() -> None:
    dialog = load_dialog_text(BILINGUAL)
    rows = {(r.language, r.text): r for r in prompt_rows(dialog)}
    assert set(rows) == {
        ("es", "For billing, press 1."),  # no Spanish text: the English one is said
        ("es", "Adiós."),
        ("en", "For billing, press 1."),
        ("en", "Goodbye."),
    }
    assert not rows[("es", "For billing, press 1.")].own_text
    assert rows[("es", "For billing, press 1.")].said_from == "en"
    assert rows[("en", "For billing, press 1.")].own_text
    assert rows[("es", "Adiós.")].where == ["bye.prompt"]


def test_a_recording_makes_a_missing_prompt_present() -> None:
    dialog = load_dialog_text(BILINGUAL)
    missing = [p.message for p in validate(dialog) if p.code == "missing-prompt"]
    assert missing == ["node 'main' prompt: no prompt in 'es'"]
    recorded = {("es", "For billing, press 1.")}
    assert [p for p in validate(dialog, recorded) if p.code == "missing-prompt"] == []
    # a recording in the wrong language does not count
    assert validate(dialog, {("en", "For billing, press 1.")}) != validate(dialog, recorded)


async def test_publishing_counts_recordings_and_calls_get_the_audio(services: Services) -> None:
    async with services.sessionmaker() as db:
        dialog = await dialogs.create_dialog(db, BILINGUAL, "admin", publish_now=False)
        await db.commit()
        with pytest.raises(dialogs.VersionError, match="no prompt in 'es'"):
            await dialogs.publish(db, dialog, 1)  # no Spanish prompt yet (nothing written)
        converted = convert_upload(tone_wav(16000, 1, 1.0), **LIMITS)
        db.add(
            PromptRecording(
                dialog_id=dialog.id,  # type: ignore[arg-type]
                language="es",
                text_sha=text_sha("For billing, press 1."),
                text="For billing, press 1.",
                audio=converted.wav,
                duration_ms=converted.duration_ms,
                uploaded_by="admin",
            )
        )
        await db.commit()
        await dialogs.publish(db, dialog, 1)
        await db.commit()
    store = RecordingStore(services.sessionmaker)
    found = await store.for_dialog(dialog.id)  # type: ignore[arg-type]
    assert list(found) == [("es", "For billing, press 1.")]
    pcm = found[("es", "For billing, press 1.")]
    assert pcm.shape == (8000,) and level_at(pcm, 1000.0) > 10_000
    assert await store.for_dialog(dialog.id + 1000) == {}  # type: ignore[operator]
