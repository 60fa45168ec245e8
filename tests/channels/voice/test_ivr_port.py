"""The voice port: a dialog run by ``ivr_dialogs`` on a real call, with real speech.

A real :class:`SipEndpoint` answers SIPp callers; the dialog (``dialogs/phone_menu.yaml``)
runs on a :class:`VoicePort` with Piper prompts, Silero endpointing and faster-whisper.
The caller's media side is the test's RTP tap: it hears the prompts, and in the spoken test
it talks (Piper's voice, as a caller would) into the call.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from channels.voice.call import Call, CallState
from channels.voice.ivr_port import (
    ActionNotSupported,
    IvrSpeech,
    IvrVoiceSettings,
    VoicePort,
    dialog_prompts,
    language_voices,
)
from ivr_dialogs.actions import Hangup, Queue, Transfer
from ivr_dialogs.loader import Dialog, load_dialog_text
from speech.asr import WhisperRecognizer
from speech.audio import Audio, resample, write_wav
from speech.g711 import ulaw_decode, ulaw_encode
from speech.pool import RecognizerPool
from speech.prompts import PromptCache
from speech.settings import SpeechSettings
from speech.tts import Synthesizer
from speech.vad import Endpointer, EndpointEvent
from tests.channels.voice.helpers import level_at, open_tap, run_sipp
from tests.support import require_tool

pytestmark = pytest.mark.sipp

DIALOG = Path(__file__).parent / "dialogs" / "phone_menu.yaml"
ACCOUNTS = {"123456": {"customer": {"name": "Ada Lovelace"}, "plan": "fibre 500"}}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def synthesizer() -> Synthesizer:
    """Piper's default voice: loaded once for the module (and shared by the process)."""
    return Synthesizer()


@pytest.fixture(scope="module")
def prompts(synthesizer: Synthesizer, tmp_path_factory: pytest.TempPathFactory) -> PromptCache:
    """One prompt cache for the module, as one hub process has."""
    return PromptCache(synthesizer, tmp_path_factory.mktemp("prompts"))


@pytest.fixture(scope="module")
def recognizer() -> WhisperRecognizer:
    """tiny.en, loaded once for the module."""
    recognizer = WhisperRecognizer()
    recognizer.warm_up()
    return recognizer


@pytest.fixture
async def speech(prompts: PromptCache, recognizer: WhisperRecognizer) -> AsyncIterator[IvrSpeech]:
    """The shared engines; the recognition pool belongs to the test's event loop."""
    engines = IvrSpeech(prompts, RecognizerPool(recognizer), settings=IvrVoiceSettings())
    yield engines
    await engines.close()


class _Accounts(BaseHTTPRequestHandler):
    """The customer's billing system the dialog's lookup asks."""

    requests: list[str] = []  # noqa: RUF012 (one server per test, reset by the fixture)

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        account = self.path.rsplit("/", 1)[-1]
        found = ACCOUNTS.get(account)
        body = json.dumps(found if found else {"error": "no such account"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def accounts_url() -> Iterator[str]:
    """A real HTTP server on loopback, answering ``GET /accounts/<number>``."""
    _Accounts.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accounts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def phone_menu(accounts_url: str) -> Dialog:
    return load_dialog_text(
        DIALOG.read_text().replace("ACCOUNTS_URL", accounts_url), file=str(DIALOG)
    )


def heard_speech(pcm: np.ndarray) -> float:
    """Seconds of the tap's audio that are clearly not silence (20 ms frames)."""
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float64)
    return float((np.sqrt((frames**2).mean(axis=1)) > 500).sum() * 0.02)


def chime_runs(pcm: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of 20 ms frames dominated by a 1 kHz tone (speech has far
    less energy in that one bin: under 3,100 against the chime's 12,000)."""
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    tone = [level_at(frame, 1000.0) > 6000 for frame in frames]
    runs: list[tuple[int, int]] = []
    for i, on in enumerate(tone):
        if on and (i == 0 or not tone[i - 1]):
            runs.append((i, i + 1))
        elif on:
            runs[-1] = (runs[-1][0], i + 1)
    return runs


# --------------------------------------------------------------------------- tests


def turns(endpointer: Endpointer, pcm: np.ndarray) -> list[EndpointEvent]:
    pcm = pcm[: len(pcm) // 160 * 160]
    return [event for frame in pcm.reshape(-1, 160) for event in endpointer.feed(frame)]


def test_one_word_answers_are_heard_at_every_frame_alignment_and_line_noise_is_not(
    synthesizer: Synthesizer,
) -> None:
    """The IVR's endpointing on G.711 audio: a caller's one-word answer starts a turn
    wherever it falls in the 20 ms frames, and the turn holds the whole word; hiss on the
    line starts none."""
    config = IvrVoiceSettings().endpointing()
    endpointer = Endpointer(8000, config)
    for word in ("Billing.", "Two.", "No."):
        said = synthesizer.synthesize(word)
        pcm = ulaw_decode(ulaw_encode(resample(said.samples, said.sample_rate, 8000)))
        for offset in range(0, 480, 40):  # 12 alignments against the VAD's 32 ms windows
            endpointer.reset(config)
            line = np.concatenate(
                [np.zeros(8000 + offset, np.int16), pcm, np.zeros(12000, np.int16)]
            )
            events = turns(endpointer, line)
            kinds = [e.kind for e in events]
            assert kinds == ["speech_start", "speech_pause", "speech_end"], (word, offset)
            turn = events[-1].utterance
            assert turn is not None and turn.duration >= len(pcm) / 8000, (word, offset)
    noise = np.random.default_rng(7).normal(0.0, 1000.0, 8000 * 10)  # about -30 dBFS
    endpointer.reset(config)
    hiss = ulaw_decode(ulaw_encode(np.clip(noise, -32768, 32767).astype(np.int16)))
    assert turns(endpointer, hiss) == []


def test_a_free_answer_may_pause_where_a_menu_answer_ends(synthesizer: Synthesizer) -> None:
    """ "My internet is down. (a breath) Since Monday." is one turn when the dialog asks for
    free speech, but a menu choice ends at the first pause."""
    settings = IvrVoiceSettings()
    parts = [synthesizer.synthesize(text) for text in ("My internet is down.", "Since Monday.")]
    first, second = (resample(p.samples, p.sample_rate, 8000) for p in parts)
    line = np.concatenate(
        [
            np.zeros(4000, np.int16),
            first,
            np.zeros(7200, np.int16),
            second,
            np.zeros(16000, np.int16),
        ]
    )
    menu = turns(Endpointer(8000, settings.endpointing("menu")), line)
    free = turns(Endpointer(8000, settings.endpointing("speech")), line)
    assert [e.kind for e in menu] == ["speech_start", "speech_pause", "speech_end"]
    assert menu[-1].time < (4000 + len(first) + 7200) / 8000  # ended before "Since Monday"
    assert [e.kind for e in free] == ["speech_start", "speech_end"]
    assert free[-1].time > (4000 + len(first) + 7200) / 8000  # both sentences in one turn


@pytest.mark.slow
async def test_caller_hears_the_menu_presses_2_keys_the_account_and_reaches_billing(
    sipp: str, make_endpoint, tmp_path: Path, speech: IvrSpeech, accounts_url: str
) -> None:
    dialog = phone_menu(accounts_url)
    await speech.prerender(dialog_prompts(dialog))  # rendered once, before the call
    tap = await open_tap()
    queued: list[Queue] = []
    done = asyncio.Event()
    seen: dict[str, Any] = {}

    async def on_queue(action: Queue) -> None:
        queued.append(action)

    async def on_call(call: Call) -> None:
        try:
            await call.answer()
            port = VoicePort(call, speech, on_queue=on_queue)
            seen["missing"] = port.missing_handlers(dialog)
            seen["trace"] = await port.run(dialog)
            seen["port"] = port
            await call.hangup()  # the call service would bridge an agent here
        finally:
            done.set()

    # SIPp plays its RFC 4733 pcaps from its own media port while the tap (the SDP
    # address) hears the prompts: a gateway configured without symmetric RTP.
    endpoint = await make_endpoint(on_call, symmetric_rtp=False)
    run = await run_sipp(
        "caller_ivr_keys.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port}
    )
    await asyncio.wait_for(done.wait(), 20)
    tap.close()
    assert run.returncode == 0, run.errors()

    # The caller heard the menu: real speech at the caller's end, which Whisper can read.
    heard = tap.audio()
    assert heard_speech(heard) >= 1.5
    words = await asyncio.to_thread(speech.recognizer.recognizer.transcribe, Audio(heard, 8000))
    text = words.text.lower()
    assert "thank you for calling" in text
    assert "general questions" in text  # the menu, cut short by the key "2"
    assert "account number" in text  # the next question

    # The dialog went where "2" and the account lead, with what the lookup found.
    assert seen["missing"] == []
    assert queued == [
        Queue(
            "billing",
            3,
            ("billing",),
            {"account": "123456", "customer": "Ada Lovelace", "plan": "fibre 500"},
        )
    ]
    assert _Accounts.requests == ["/accounts/123456"]
    trace = seen["trace"]
    assert trace["outcome"] == "queued"
    assert trace["nodes"] == ["main", "ask_account", "lookup_account", "billing_queue"]
    inputs = [(i["node"], i["event"], i["value"]) for i in trace["inputs"]]
    assert inputs[0] == ("main", "digits", "2")
    assert inputs[1] == ("ask_account", "digits", "123456")
    assert trace["variables"]["account"] == "123456"
    assert trace["variables"]["customer"] == "Ada Lovelace"
    assert trace["handoff"]["name"] == "billing"
    # What the voice side did: the menu came from the cache and a key cut it short or
    # followed it; nothing was sent to the recognizer.
    prompts = trace["voice"]["prompts"]
    assert prompts[0]["text"].startswith("Thank you for calling Acme")
    assert prompts[0]["cached"] is True
    assert prompts[0]["outcome"] in ("dtmf", "completed")
    assert trace["voice"]["recognitions"] == []
    assert json.loads(json.dumps(trace)) == trace  # storable as JSON on the interaction
    call = seen["port"].call
    assert call.stats()["rtp"]["packets_sent"] >= 100


@pytest.mark.slow
async def test_two_callers_at_once_share_the_engines_and_the_rendered_prompts(
    sipp: str, make_endpoint, tmp_path: Path, speech: IvrSpeech, accounts_url: str
) -> None:
    dialog = phone_menu(accounts_url)
    await speech.prerender(dialog_prompts(dialog))
    made = speech.prompts.syntheses
    tap = await open_tap()
    queued: list[tuple[str, Queue]] = []
    traces: list[dict[str, Any]] = []

    async def on_call(call: Call) -> None:
        async def on_queue(action: Queue) -> None:
            queued.append((call.call_id, action))

        await call.answer()
        traces.append(await VoicePort(call, speech, on_queue=on_queue).run(dialog))
        await call.hangup()

    endpoint = await make_endpoint(on_call, symmetric_rtp=False)
    run = await run_sipp(
        "caller_ivr_keys.xml",
        endpoint.port,
        tmp_path / "sipp",
        keys={"tap_port": tap.port},
        calls=2,
    )
    tap.close()
    assert run.returncode == 0, run.errors()
    assert len(traces) == 2
    assert len({call_id for call_id, _ in queued}) == 2  # each call's own handoff
    for _, action in queued:
        assert action.name == "billing" and action.data["account"] == "123456"
    assert all(t["voice"]["prompts"][0]["cached"] for t in traces)
    assert speech.prompts.syntheses == made  # no prompt was made again for the second caller


@pytest.mark.slow
async def test_a_spoken_billing_is_recognized_with_the_menu_hints(
    sipp: str,
    make_endpoint,
    tmp_path: Path,
    speech: IvrSpeech,
    accounts_url: str,
    synthesizer: Synthesizer,
) -> None:
    dialog = phone_menu(accounts_url)
    await speech.prerender(dialog_prompts(dialog))
    said = await asyncio.to_thread(synthesizer.synthesize, "Billing, please.")
    caller_voice = resample(said.samples, said.sample_rate, 8000)
    tap = await open_tap()
    queued: list[Queue] = []
    answered = asyncio.Event()
    done = asyncio.Event()
    seen: dict[str, Any] = {}

    async def on_queue(action: Queue) -> None:
        queued.append(action)

    async def on_call(call: Call) -> None:
        try:
            await call.answer()
            seen["call"] = call
            answered.set()
            seen["trace"] = await VoicePort(call, speech, on_queue=on_queue).run(dialog)
            await call.hangup()
        finally:
            done.set()

    endpoint = await make_endpoint(on_call)
    caller = asyncio.ensure_future(
        run_sipp("caller_talk.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port})
    )
    await asyncio.wait_for(answered.wait(), 10)
    call: Call = seen["call"]
    assert call.rtp is not None
    destination = ("127.0.0.1", call.rtp.local_port)
    # The caller listens until the menu is under way, then answers over it.
    while heard_speech(tap.audio()) < 1.0:
        assert not caller.done(), "the call ended before the menu played"
        await asyncio.sleep(0.05)
    await tap.stream_pcm(destination, caller_voice)
    await asyncio.wait_for(done.wait(), 30)
    run = await caller
    tap.close()
    assert run.returncode == 0, run.errors()

    trace = seen["trace"]
    recognitions = trace["voice"]["recognitions"]
    assert len(recognitions) == 1, recognitions
    assert recognitions[0]["node"] == "main"
    assert recognitions[0]["chosen"] == "billing"
    assert trace["inputs"][0]["node"] == "main"
    assert trace["inputs"][0]["event"] == "speech"
    assert trace["inputs"][0]["value"]["text"] == "billing"
    # Talking over the menu stopped it (barge-in); the caller then keyed nothing, so the
    # account question timed out and Billing got the call without an account.
    assert trace["voice"]["prompts"][0]["outcome"] == "barge_in"
    # The next prompt records how long the caller waited after the endpointer ended the
    # turn, which includes the recognition; the menu before any turn has no such gap.
    assert "turn_to_prompt_ms" not in trace["voice"]["prompts"][0]
    # The recognition began at the pause after "please" (early_asr_ms), so by the end of
    # the turn only what was left of it was waited for.
    assert recognitions[0]["early"] is True
    asr_ms = recognitions[0]["asr_ms"]
    assert 0 <= asr_ms <= trace["voice"]["prompts"][1]["turn_to_prompt_ms"]
    assert trace["nodes"] == ["main", "ask_account", "billing_unidentified"]
    assert [(i["node"], i["event"]) for i in trace["inputs"][1:]] == [("ask_account", "noinput")]
    assert queued == [Queue("billing", 2, ("billing",), {"reason": "account not given"})]
    assert _Accounts.requests == []
    assert call.state is CallState.ENDED


@pytest.mark.slow
async def test_a_recorded_prompt_then_hangup_ends_the_call_and_missing_handoffs_are_refused(
    sipp: str, make_endpoint, tmp_path: Path, speech: IvrSpeech
) -> None:
    chime = (np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000) * 12000).astype(np.int16)
    (tmp_path / "audio").mkdir()
    write_wav(tmp_path / "audio" / "chime.wav", Audio(chime, 16000))  # 1 s at 16 kHz
    write_wav(tmp_path / "outside.wav", Audio(chime, 16000))  # not in the prompts folder
    dialog = load_dialog_text(
        "dialog: goodbye_only\n"
        "start: chime\n"
        "nodes:\n"
        "  chime: {type: say, audio: chime.wav, text: (a chime), next: outside}\n"
        "  outside: {type: say, audio: ../outside.wav, text: 'Sorry, that recording is not"
        " available.', next: bye}\n"
        "  bye: {type: hangup, reason: closed today, prompt: We are closed today. Goodbye.}\n"
    )
    tap = await open_tap()
    done = asyncio.Event()
    seen: dict[str, Any] = {}
    reasons: list[Hangup] = []

    async def on_hangup(action: Hangup) -> None:
        reasons.append(action)

    async def on_call(call: Call) -> None:
        try:
            await call.answer()
            port = VoicePort(call, speech, on_hangup=on_hangup, audio_dir=tmp_path / "audio")
            seen["missing"] = port.missing_handlers(phone_menu("http://127.0.0.1:9"))
            with pytest.raises(ActionNotSupported, match="on_queue"):
                await port.queue(Queue("general"))
            with pytest.raises(ActionNotSupported, match="on_transfer"):
                await port.transfer(Transfer("+15550100"))
            seen["trace"] = await port.run(dialog)
            seen["call"] = call
        finally:
            done.set()

    endpoint = await make_endpoint(on_call)
    run = await run_sipp(
        "caller_talk.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port}
    )
    await asyncio.wait_for(done.wait(), 20)
    tap.close()
    assert run.returncode == 0, run.errors()  # SIPp got the hub's BYE
    assert seen["missing"] == ["queue"]
    trace = seen["trace"]
    assert trace["outcome"] == "hangup"
    prompts = trace["voice"]["prompts"]
    assert [p["outcome"] for p in prompts] == ["completed", "completed", "completed"]
    assert prompts[0]["cached"] is None  # the recorded chime
    assert prompts[1]["cached"] is False  # a file outside the folder: its text was spoken
    assert prompts[2]["cached"] is False  # made while the caller listened
    assert reasons == [Hangup("closed today")]
    call: Call = seen["call"]
    assert call.state is CallState.ENDED and call.end_reason == "local hangup"
    heard = tap.audio()
    # The chime (1 s of 1 kHz) played once, first: the file outside the folder (the same
    # chime) was not. Found in the audio itself, not at a fixed offset, so a late first
    # packet on a busy machine does not shift it.
    runs = chime_runs(heard)
    assert runs and runs[0][0] <= 25 and 40 <= runs[0][1] - runs[0][0] <= 60, runs
    assert all(end - start < 10 for start, end in runs[1:]), runs
    # Then both spoken prompts: the outside prompt's text instead of its file (the goodbye
    # alone is about 1.2 s of speech, the two together about 2.7 s), then the goodbye.
    after = heard[runs[0][1] * 160 :]
    assert heard_speech(after) >= 2.2
    words = await asyncio.to_thread(speech.recognizer.recognizer.transcribe, Audio(after, 8000))
    assert "recording" in words.text.lower(), words.text
    assert "goodbye" in words.text.lower(), words.text


@pytest.mark.slow
async def test_a_caller_who_hangs_up_in_the_menu_ends_the_dialog(
    sipp: str, make_endpoint, tmp_path: Path, speech: IvrSpeech, accounts_url: str
) -> None:
    dialog = phone_menu(accounts_url)
    await speech.prerender(dialog_prompts(dialog))
    tap = await open_tap()
    done = asyncio.Event()
    seen: dict[str, Any] = {}
    queued: list[Queue] = []

    async def on_queue(action: Queue) -> None:
        queued.append(action)

    async def on_call(call: Call) -> None:
        try:
            await call.answer()
            seen["trace"] = await VoicePort(call, speech, on_queue=on_queue).run(dialog)
        finally:
            done.set()

    endpoint = await make_endpoint(on_call)
    run = await run_sipp(
        "caller_hangs_up.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port}
    )
    await asyncio.wait_for(done.wait(), 20)
    tap.close()
    assert run.returncode == 0, run.errors()
    trace = seen["trace"]
    assert trace["outcome"] == "caller_hangup"
    assert trace["nodes"] == ["main"]
    assert trace["voice"]["prompts"][0]["outcome"] == "hangup"
    assert queued == []


def test_settings_come_from_the_environment_and_the_engines_from_speech_settings(
    tmp_path: Path,
) -> None:
    settings = IvrVoiceSettings.from_env(
        {"HUB_IVR_END_SILENCE_MS": "400", "HUB_IVR_THRESHOLD": "0.45", "HUB_IVR_OTHER": "x"}
    )
    assert settings.end_silence_ms == 400 and settings.threshold == 0.45
    assert settings.endpointing().end_silence_ms == 400
    assert IvrVoiceSettings.from_env({}) == IvrVoiceSettings()
    engines = IvrSpeech.load(SpeechSettings(tts_cache_dir=tmp_path), settings=settings)
    assert engines.prompts.cache_dir == tmp_path / "prompts"
    assert engines.settings is settings
    assert engines.prompts_for("xx") is engines.prompts  # one voice until others are added
    assert engines.add_fallback_voices(["en", "es", "xx-nope"]) == ["xx-nope"]
    assert engines.prompts_for("es") is not engines.prompts  # espeak-ng speaks Spanish
    assert engines.prompts_for("es").synthesizer.identity == '["espeak-ng", "es", 150]'
    assert engines.prompts_for("xx-nope") is engines.prompts
    with pytest.raises(ValueError, match="unknown engine 'festival'"):
        language_voices("es=festival:es")
    with pytest.raises(ValueError, match="is not language=engine:voice"):
        language_voices("es")


@pytest.mark.slow
async def test_a_second_language_is_spoken_by_its_own_voice(
    sipp: str, make_endpoint, tmp_path: Path, speech: IvrSpeech
) -> None:
    """Only the English Piper voice ships; Spanish falls back to espeak-ng, as set in
    HUB_IVR_VOICES, and the caller who chooses it hears the Spanish prompts in that voice."""
    require_tool("espeak-ng")
    (voice,) = language_voices("es=espeak:es").values()
    spanish = PromptCache(voice, tmp_path / "es-prompts")
    engines = IvrSpeech(
        speech.prompts, speech.recognizer, voices={"es": spanish}, settings=speech.settings
    )
    dialog = load_dialog_text(
        "dialog: two_languages\n"
        "languages: [en, es]\n"
        "start: pick\n"
        "nodes:\n"
        "  pick:\n"
        "    type: menu\n"
        "    prompt: {en: For English press 1., es: Para español oprima 2.}\n"
        "    timeout_s: 6\n"
        "    options:\n"
        "      - {digit: '1', next: account}\n"
        "      - {digit: '2', next: to_spanish}\n"
        "  to_spanish: {type: set, values: {language: \"'es'\"}, next: account}\n"
        "  account:\n"
        "    type: ask\n"
        "    expect: digits\n"
        "    var: account\n"
        "    max_length: 10\n"
        "    timeout_s: 8\n"
        "    prompt: {en: Key in your account., es: Marque su número de cuenta.}\n"
        "    next: agent\n"
        "  agent:\n"
        "    type: queue\n"
        "    queue: general\n"
        "    prompt: {en: One moment., es: Gracias. Le comunico con un agente.}\n"
    )
    tap = await open_tap()
    done = asyncio.Event()
    seen: dict[str, Any] = {}

    async def on_call(call: Call) -> None:
        try:
            await call.answer()
            port = VoicePort(call, engines, on_queue=lambda _action: asyncio.sleep(0))
            seen["trace"] = await port.run(dialog)
            await call.hangup()
        finally:
            done.set()

    endpoint = await make_endpoint(on_call, symmetric_rtp=False)
    run = await run_sipp(
        "caller_ivr_keys.xml", endpoint.port, tmp_path / "sipp", keys={"tap_port": tap.port}
    )
    await asyncio.wait_for(done.wait(), 30)
    tap.close()
    assert run.returncode == 0, run.errors()
    trace = seen["trace"]
    assert trace["language"] == "es"
    assert trace["nodes"] == ["pick", "to_spanish", "account", "agent"]
    assert trace["variables"]["account"] == "123456"
    said = [p["text"] for p in trace["voice"]["prompts"]]
    assert said[1:] == ["Marque su número de cuenta.", "Gracias. Le comunico con un agente."]
    assert spanish.syntheses == 2  # made by espeak-ng, not by the English voice
    assert speech.prompts.key(said[-1]) != spanish.key(said[-1])
    assert heard_speech(tap.audio()[-8000 * 3 :]) >= 0.8  # the caller heard the last one
