"""The recorded-prompts page over HTTP, on SQLite and PostgreSQL: admins only, every bad
upload refused with its reason, a good one stored converted, played back, deleted, and both
audited; the simulator's voice mode says why it cannot speak on a hub without voice."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pytest
from litestar import Litestar
from sqlmodel import select

from hub.app import create_app
from hub.prompt_recordings import text_sha
from hub.services import Services
from hub.settings import Settings
from models import AuditEntry, Dialog, PromptRecording
from speech.audio import Audio, read_wav, wav_bytes
from tests.web.conftest import hx, login

GREETING = (
    "Thank you for calling Acme. For general questions, press 1 or say general. "
    "For billing, press 2 or say billing."
)


@pytest.fixture
async def app(web_database_url: str, tmp_path: Path) -> Litestar:
    """The web tests' app without the SIP endpoint (and so without speech engines)."""
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=web_database_url,
        secret_key="test-secret-key-for-web-tests",
        voice_enabled=False,
    )
    return create_app(settings)


def tone(rate: int = 16000, channels: int = 2) -> bytes:
    t = np.arange(rate) / rate
    wave = (np.sin(2 * np.pi * 1000 * t) * 16000).astype(np.int16)
    return wav_bytes(Audio(np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate))


async def demo_menu(services: Services) -> int:
    async with services.sessionmaker() as db:
        found = await db.exec(select(Dialog.id).where(Dialog.name == "demo_phone_menu"))
        return found.one()  # type: ignore[return-value]


async def test_upload_check_play_and_delete_a_recorded_prompt(
    client: httpx.AsyncClient, services: Services
) -> None:
    dialog_id = await demo_menu(services)
    url = f"/admin/dialogs/{dialog_id}/prompts/"
    await login(client, "alice")
    assert (await client.get(url)).status_code == 403  # agents do not record prompts
    client.cookies.clear()
    await login(client, "admin")
    page = await client.get(url)
    assert page.status_code == 200 and GREETING in page.text
    form = {"version": "1", "language": "en", "sha": text_sha(GREETING)}

    async def upload(data: bytes, name: str = "greeting.wav", **fields: str) -> httpx.Response:
        files = {"file": (name, data, "audio/wav")}
        return await client.post(url, data={**form, **fields}, files=files, headers=hx(client))

    refused = {
        "not a WAV file this hub can read": await upload(b"RIFF? no, just text " * 10),
        "the recording is silent": await upload(wav_bytes(Audio(np.zeros(8000, np.int16), 8000))),
        "has no such prompt in 'en'": await upload(tone(), sha=text_sha("Something else.")),
        "has no such prompt in 'fr'": await upload(tone(), language="fr"),
    }
    for reason, response in refused.items():
        assert response.status_code == 422 and reason in response.text, (reason, response.text)
    assert (await client.post(url, data=form, headers=hx(client))).status_code == 422  # no file

    stored = await upload(tone(), name="menu.wav")
    assert stored.status_code == 200, stored.text
    assert "converted from 16000 Hz, 2 channels to 8 kHz mono" in stored.text
    async with services.sessionmaker() as db:
        (row,) = (await db.exec(select(PromptRecording))).all()
    assert (row.language, row.text, row.duration_ms) == ("en", GREETING, 1000)
    audio_url = f"/admin/dialogs/{dialog_id}/prompts/{row.id}/audio"
    assert f'src="{audio_url}"' in stored.text
    played = await client.get(audio_url)
    assert played.headers["content-type"].startswith("audio/wav")
    heard = read_wav(played.content)
    assert (heard.sample_rate, heard.channels, heard.frames) == (8000, 1, 8000)
    assert (
        await client.get(f"/admin/dialogs/{dialog_id + 999}/prompts/{row.id}/audio")
    ).status_code == 404

    # The same prompt again replaces the recording (one per prompt and language).
    again = await upload(tone(rate=8000, channels=1), name="menu2.wav")
    assert "converted from 8000 Hz, 1 channel to 8 kHz mono" in again.text
    async with services.sessionmaker() as db:
        (row,) = (await db.exec(select(PromptRecording))).all()
    assert row.filename == "menu2.wav"

    deleted = await client.post(f"{url}{row.id}/delete", data={"version": "1"}, headers=hx(client))
    assert deleted.status_code == 200 and "Deleted the recording" in deleted.text
    async with services.sessionmaker() as db:
        assert (await db.exec(select(PromptRecording))).all() == []
        audited = (
            await db.exec(select(AuditEntry).where(AuditEntry.entity == "prompt_recording"))
        ).all()
    assert [a.action for a in audited] == ["upload", "upload", "delete"]
    assert audited[1].before["filename"] == "menu.wav"  # what the replacement replaced
    assert audited[2].before["filename"] == "menu2.wav"
    missing = await client.post(f"{url}{row.id}/delete", data={}, headers=hx(client))
    assert missing.status_code == 404


async def test_voice_mode_says_why_it_cannot_speak_and_refuses_bad_input(
    client: httpx.AsyncClient, services: Services
) -> None:
    dialog_id = await demo_menu(services)
    await login(client, "admin")
    page = await client.get(f"/admin/dialogs/{dialog_id}/simulate?mode=voice")
    assert 'id="sim-keypad"' in page.text and 'name="speech"' in page.text
    speech = f"/admin/dialogs/{dialog_id}/simulate/speech"
    bad = await client.get(speech, params={"p": "no language"})
    assert bad.status_code == 422 and "language:text" in bad.text
    off = await client.get(speech, params={"p": "en:Hello."})
    assert off.status_code == 409 and "HUB_VOICE_ENABLED" in off.text
    step = f"/admin/dialogs/{dialog_id}/simulate"
    greeted = await client.post(
        step, data={"version": "1", "log": "[]", "mode": "voice"}, headers=hx(client)
    )
    audio = re.search(r'<audio class="sim-audio"[^>]* src="([^"]+)"', greeted.text)
    assert audio is not None and "/simulate/speech?p=en%3AThank+you" in audio.group(1)
    key = await client.post(
        step, data={"version": "1", "log": "[]", "mode": "voice", "key": "x"}, headers=hx(client)
    )
    assert key.status_code == 422 and "not a key of the keypad" in key.text
    pressed = await client.post(
        step, data={"version": "1", "log": "[]", "mode": "voice", "key": "2"}, headers=hx(client)
    )
    assert "pressed 2" in pressed.text and "key in your account number" in pressed.text
