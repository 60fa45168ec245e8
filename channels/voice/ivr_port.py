"""The voice port: an IVR dialog (``ivr_dialogs``) run on a phone call with speech.

``VoicePort`` implements :class:`ivr_dialogs.ports.Port` over a :class:`~channels.voice.call.Call`
and the speech engines, so the sans-IO interpreter drives a live call:

- ``say``: the prompt from Piper, rendered once per process and cached in memory and on disk
  as 8 kHz audio (:class:`speech.prompts.PromptCache`), or a recorded WAV. When the dialog
  allows barge-in, a key or the caller's voice (Silero VAD; a turn of ``barge_in_ms`` or
  more, so a cough or a line click does not stop the prompt) interrupts it; the words that
  interrupted are kept as the start of the answer.
- ``listen``: keys (RFC 4733 events, SIP INFO and in-band tones all arrive as the call's
  digits) or speech: the endpointer decides where the caller's turn ends, then faster-whisper
  transcribes it with the menu's phrases as hints. A short answer's recognition starts at
  the caller's pause (``early_asr_ms``), so it is mostly done when the end is decided. It
  returns the ``Digit``/``Digits``, ``Utterance``, ``NoInput`` or ``HangUp`` event the
  interpreter expects.
- ``queue``, ``transfer``, ``voicemail``, ``callback``: handed to the callbacks the port's
  creator (the hub's call service) supplies; a dialog that reaches one without a callback
  raises :class:`ActionNotSupported`, never a silent no-op. ``hangup`` hangs up the call.

Lookups are made by :func:`ivr_dialogs.runner.run_dialog`, never here. The models are shared
by every call of the process through one :class:`IvrSpeech`; per call, the port keeps only a
VAD state. ``VoicePort.run`` returns the runner's trace (nodes, inputs, variables, outcome,
handoff) with what the call heard and said added under ``"voice"``: each recognition's
``asr_ms``, and on the prompt that follows a spoken turn ``turn_to_prompt_ms``, the caller's
wait from the endpointer's end-of-turn decision to that prompt starting (``bench/speech_ivr.py``
reads it from stored traces).

    speech = IvrSpeech.load()  # once per process, on the loop that carries the calls
    await asyncio.to_thread(speech.warm_up)
    await speech.prerender(dialog_prompts(dialog))  # optional: the first caller waits less

    port = VoicePort(call, speech, on_queue=..., on_transfer=..., on_voicemail=...,
                     on_callback=...)
    trace = await port.run(dialog, http_client=client, secrets=secrets_from_env())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from channels.voice.call import Call, CallError, CallState, Pcm, PlayOutcome
from ivr_dialogs.actions import (
    Callback,
    Hangup,
    Listen,
    Queue,
    Say,
    SurveyAnswer,
    Transfer,
    Voicemail,
)
from ivr_dialogs.events import Digit, Digits, Event, HangUp, NoInput, Utterance
from ivr_dialogs.interpreter import CallerInfo
from ivr_dialogs.loader import Dialog
from ivr_dialogs.matching import spoken_digits
from ivr_dialogs.runner import Trace, run_dialog
from ivr_dialogs.schema import CallbackNode, QueueNode, TransferNode, VoicemailNode
from speech.asr import Utterance as RecognizedTurn
from speech.asr import hint_score
from speech.audio import AudioError
from speech.pool import RecognizerPool
from speech.prompts import PromptCache
from speech.settings import SpeechSettings
from speech.vad import EndpointConfig, Endpointer, EndpointEvent

__all__ = [
    "ActionNotSupported",
    "CallerGone",
    "IvrSpeech",
    "IvrVoiceSettings",
    "VoicePort",
    "chosen_answer",
    "dialog_prompts",
]

log = logging.getLogger(__name__)

A = TypeVar("A")
Handler = Callable[[A], Awaitable[None]]
RATE = 8000
NEVER_MS = 24 * 3600 * 1000  # the endpointer's own no-input timer is not used: the port's is
KEY_WAIT_S = 24 * 3600.0
FREE_SPEECH = frozenset({"speech", "date", "amount"})  # answers that are sentences, not words
MAX_LOGGED = 200  # prompts and recognitions kept per call for the trace


class ActionNotSupported(NotImplementedError):
    """The dialog asked for an action (queue, transfer, ...) the port's creator gave no
    callback for: the call cannot go where the dialog sends it."""


class CallerGone(ConnectionError):
    """The call ended while the IVR was talking; the runner turns this into ``HangUp``."""


@dataclass(frozen=True)
class IvrVoiceSettings:
    """Timers and thresholds of the voice IVR; ``from_env`` reads ``HUB_IVR_<FIELD>``.

    Tests shorten the timers. The VAD thresholds are lower than Silero's usual 0.5: on
    8 kHz telephone audio its scores for speech hover between 0.4 and 0.8, and at 0.5 a
    one-word answer ("Billing.", "Two.") was missed at about a third of its frame
    alignments, while line noise up to -30 dBFS still never reaches 0.4.
    """

    threshold: float = 0.4  # a VAD window at or above this is speech…
    negative_threshold: float = 0.25  # …and below this, silence (in between: no change)
    min_speech_ms: int = 64  # voice this long starts a turn
    pre_roll_ms: int = 300  # audio kept from before the start, so no first phoneme is lost
    end_silence_ms: int = 700  # silence that ends a short answer (a menu choice, yes/no)…
    max_speech_ms: int = 10_000  # …which is cut here
    free_end_silence_ms: int = 1200  # free speech (a complaint, a date) may pause longer…
    free_max_speech_ms: int = 20_000  # …and last longer
    barge_in_ms: int = 200  # a turn this long stops a prompt (a click or a cough does not)
    # A short answer's recognition starts after this much silence, before end_silence_ms
    # decides the turn is over; if the caller speaks again it is thrown away (0: off).
    early_asr_ms: int = 300
    inter_digit_timeout_s: float | None = None  # between keys; None: the listen's timeout
    prompt_cache_memory_mb: int = 64

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IvrVoiceSettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = env.get(f"HUB_IVR_{item.name.upper()}", "")
            if raw == "":
                continue
            values[item.name] = float(raw) if "float" in str(item.type) else int(raw)
        return cls(**values)

    def endpointing(self, expect: str = "menu") -> EndpointConfig:
        """The endpointer's settings for a listen that expects ``expect``."""
        free = expect in FREE_SPEECH
        return EndpointConfig(
            threshold=self.threshold,
            negative_threshold=self.negative_threshold,
            min_speech_ms=self.min_speech_ms,
            end_silence_ms=self.free_end_silence_ms if free else self.end_silence_ms,
            early_ms=0 if free else self.early_asr_ms,
            no_input_ms=NEVER_MS,
            max_speech_ms=self.free_max_speech_ms if free else self.max_speech_ms,
            pre_roll_ms=self.pre_roll_ms,
        )


def dialog_prompts(dialog: Dialog, language: str | None = None) -> list[str]:
    """The dialog's fixed prompts in a language (those without ``{{ }}`` holes), to render
    before the first caller hears them."""
    lang = language or dialog.model.language
    found: dict[str, None] = {}

    def add(text: Any) -> None:
        if isinstance(text, dict):
            text = text.get(lang) or text.get(dialog.model.language)
        if isinstance(text, str) and text.strip() and "{{" not in text:
            found.setdefault(text)

    for flow in dialog.flows.values():
        for node in flow.nodes.values():
            for name in ("prompt", "text", "intro"):
                add(getattr(node, name, None))
            for retry in (getattr(node, "no_input", None), getattr(node, "no_match", None)):
                for text in getattr(retry, "prompts", ()):
                    add(text)
            for question in getattr(node, "questions", ()):
                add(question.prompt)
    return list(found)


def chosen_answer(heard: RecognizedTurn) -> tuple[str, float]:
    """What a recognized turn answers, and how sure: the text, or the expected phrase it
    nearly said. A phrase the recognizer heard nearly ("Bill and please") is that phrase,
    and the confidence is how sure we are of the choice: Whisper's per-token probability,
    or how closely the words match an expected phrase if that is higher (a short "Billing,
    please." scored 0.42 on tiny.en with every word right). Keys said aloud ("two") stay
    words, for the dialog to read as keys. Calls and the simulator's voice mode share it."""
    text = heard.text.strip()
    if heard.hint and spoken_digits(text) is None:
        return heard.hint, max(heard.confidence, hint_score(text, heard.hint))
    return text, heard.confidence


def language_voices(spec: str) -> dict[str, Any]:
    """``HUB_IVR_VOICES``: the voice of each language besides the default Piper voice, as
    ``es=espeak:es, fr=espeak:fr, de=piper:/voices/de_DE-thorsten-medium.onnx``. A
    language without one is spoken by the default voice. A bad entry fails at start-up."""
    from speech.espeak import EspeakSynthesizer
    from speech.tts import Synthesizer

    voices: dict[str, Any] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        language, _, voice = entry.partition("=")
        engine, _, name = voice.strip().partition(":")
        if not language.strip() or not name:
            raise ValueError(f"HUB_IVR_VOICES: {entry!r} is not language=engine:voice")
        if engine == "espeak":
            voices[language.strip()] = EspeakSynthesizer(name)
        elif engine == "piper":
            voices[language.strip()] = Synthesizer(voice=name)
        else:
            raise ValueError(f"HUB_IVR_VOICES: unknown engine {engine!r} (espeak or piper)")
    return voices


class IvrSpeech:
    """The speech engines every call's IVR shares; build one per process.

    Piper, Whisper and Silero load once per process (``warm_up`` loads them before the first
    call); recognitions run in the bounded :class:`~speech.pool.RecognizerPool` and
    syntheses in the prompt cache's single TTS thread, both off the event loop. The pool
    belongs to the event loop that first uses it: the loop that carries the calls.
    """

    def __init__(
        self,
        prompts: PromptCache,
        recognizer: RecognizerPool,
        *,
        voices: Mapping[str, PromptCache] | None = None,
        settings: IvrVoiceSettings | None = None,
        vad_model: str | Path | None = None,
    ) -> None:
        self.prompts = prompts
        self.recognizer = recognizer
        self.voices = dict(voices or {})
        self._voiceless: set[str] = set()  # languages espeak-ng could not speak either
        self.settings = settings or IvrVoiceSettings()
        self.vad_model = vad_model

    @classmethod
    def load(
        cls,
        speech: SpeechSettings | None = None,
        *,
        prompt_dir: str | Path | None = None,
        settings: IvrVoiceSettings | None = None,
    ) -> IvrSpeech:
        """The default engines from settings: Piper's voice, faster-whisper, Silero VAD.

        Prompts are cached under ``prompt_dir`` (default: ``prompts/`` in
        ``HUB_SPEECH_TTS_CACHE_DIR``, else ``var/prompts``).
        """
        from speech.asr import WhisperRecognizer
        from speech.tts import Synthesizer

        speech = speech or SpeechSettings.from_env()
        settings = settings or IvrVoiceSettings.from_env()
        if prompt_dir is None:
            base = speech.tts_cache_dir
            prompt_dir = base / "prompts" if base is not None else Path("var/prompts")
        prompts = PromptCache(
            Synthesizer(settings=speech),
            prompt_dir,
            max_memory_bytes=settings.prompt_cache_memory_mb * 1024 * 1024,
        )
        pool = RecognizerPool.from_settings(WhisperRecognizer(settings=speech), speech)
        voices = {
            language: PromptCache(
                synthesizer,
                prompt_dir,
                max_memory_bytes=settings.prompt_cache_memory_mb * 1024 * 1024,
            )
            for language, synthesizer in language_voices(
                os.environ.get("HUB_IVR_VOICES", "")
            ).items()
        }
        return cls(prompts, pool, voices=voices, settings=settings)

    def add_fallback_voices(self, languages: Iterable[str]) -> list[str]:
        """Give every language without a voice of its own (the default voice is English)
        espeak-ng's voice for it; blocking, so run it in a thread at start-up. Returns the
        languages that espeak-ng cannot speak either (they stay with the default voice)."""
        from speech.espeak import EspeakSynthesizer

        missing = []
        for language in languages:
            if language in self.voices or language.split("-")[0] == "en":
                continue
            if language in self._voiceless:
                missing.append(language)
                continue
            try:
                synthesizer = EspeakSynthesizer(language)
                synthesizer.warm_up()
            except (FileNotFoundError, RuntimeError, OSError) as exc:
                log.warning("no voice for language %s: %s", language, exc)
                self._voiceless.add(language)
                missing.append(language)
                continue
            self.voices[language] = PromptCache(
                synthesizer,
                self.prompts.cache_dir,
                max_memory_bytes=self.settings.prompt_cache_memory_mb * 1024 * 1024,
            )
        return missing

    def prompts_for(self, language: str) -> PromptCache:
        """The voice of a language (the default voice when none is configured for it)."""
        return self.voices.get(language, self.prompts)

    def warm_up(self) -> None:
        """Load every model and run each once (blocking: call it in a thread at start-up)."""
        from speech.vad import SileroVad

        for cache in {id(c): c for c in (self.prompts, *self.voices.values())}.values():
            cache.synthesizer.warm_up()
        warm = getattr(self.recognizer.recognizer, "warm_up", None)
        if callable(warm):
            warm()
        SileroVad(RATE, self.vad_model)

    async def prerender(self, texts: Iterable[str], language: str = "en") -> None:
        """Render prompts ahead of the first caller (e.g. a dialog's fixed prompts)."""
        cache = self.prompts_for(language)
        for text in texts:
            if text.strip():
                await cache.render(text)

    async def close(self) -> None:
        await self.recognizer.close()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


@dataclass
class _EarlyRecognition:
    """A recognition started at a pause in the caller's turn, before its end was decided."""

    start: float | None
    end: float
    hints: tuple[str, ...]
    result: asyncio.Future[RecognizedTurn]

    def matches(self, turn: EndpointEvent, hints: tuple[str, ...] | None) -> bool:
        return (turn.start, turn.time, hints) == (self.start, self.end, self.hints)


class _Capture:
    """The caller's audio, fed to one endpointer while the IVR listens for speech (or plays a
    prompt the caller may talk over)."""

    def __init__(self, call: Call, speech: IvrSpeech) -> None:
        self.call = call
        self.settings = speech.settings
        self.barge_in_s = speech.settings.barge_in_ms / 1000
        self.endpointer = Endpointer(RATE, self.settings.endpointing(), speech.vad_model)
        self.recognizer = speech.recognizer
        self.hints: tuple[str, ...] | None = None  # the listen's phrases; None: no listen yet
        self._early: _EarlyRecognition | None = None
        self.armed = False
        self.started = asyncio.Event()  # the caller's voice began a turn
        self.finished: asyncio.Future[EndpointEvent] = self._future()
        self.on_barge_in: Callable[[], None] | None = None
        self._started_at = 0.0
        self.decided_at = 0.0  # monotonic time the endpointer ended the last turn
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _future() -> asyncio.Future[EndpointEvent]:
        return asyncio.get_running_loop().create_future()

    @property
    def speaking(self) -> bool:
        """A turn has begun (maybe ended) and nobody has taken it yet."""
        return self.armed and self.started.is_set()

    def arm(
        self,
        expect: str = "menu",
        on_barge_in: Callable[[], None] | None = None,
        hints: tuple[str, ...] | None = None,
    ) -> None:
        """Listen for a new turn from now on; ``on_barge_in`` is called once the turn has
        lasted ``barge_in_ms`` (the prompt it interrupts stops). ``hints`` are the listen's
        phrases (None while a prompt plays: its turn is recognized when the listen comes)."""
        self.endpointer.reset(self.settings.endpointing(expect))
        self._drop_early()
        self.hints = hints
        self.started.clear()
        if not self.finished.done():
            self.finished.cancel()
        self.finished = self._future()
        self.on_barge_in = on_barge_in
        self.armed = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump(), name="ivr-audio")

    def keep_listening(self, expect: str, hints: tuple[str, ...]) -> None:
        """The prompt is over but the turn goes on: what was heard during it is kept, and
        the turn ends as the listen's kind of answer does."""
        self.endpointer.config = self.settings.endpointing(expect)
        self.on_barge_in = None
        self.hints = hints

    def disarm(self) -> None:
        self.armed = False
        self.on_barge_in = None
        self._drop_early()
        if not self.finished.done():
            self.finished.cancel()

    def take_early(self, turn: EndpointEvent) -> asyncio.Future[RecognizedTurn] | None:
        """The recognition started at the turn's last pause, if it heard this very turn."""
        early, self._early = self._early, None
        if early is not None and early.matches(turn, self.hints):
            return early.result
        if early is not None:
            early.result.cancel()
        return None

    def _recognize_early(self, pause: EndpointEvent) -> None:
        """Start recognizing the turn so far: if the caller says nothing more, it is the
        whole turn, and its words are ready sooner (``IvrVoiceSettings.early_asr_ms``)."""
        self._drop_early()
        if self.hints is None or pause.utterance is None or pause.utterance.frames == 0:
            return
        result = asyncio.ensure_future(
            self.recognizer.transcribe_utterance(pause.utterance, list(self.hints) or None)
        )
        result.add_done_callback(_retrieve)  # a dropped one's failure is nobody's to log
        self._early = _EarlyRecognition(pause.start, pause.time, self.hints, result)

    def _drop_early(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            early.result.cancel()

    async def _pump(self) -> None:
        async for frame in self.call.audio_stream():
            if self.armed:
                self._feed(frame)

    def _feed(self, frame: Pcm) -> None:
        for event in self.endpointer.feed(frame):
            log.debug("%s: %s at %.2f s", self.call.call_id, event.kind, event.time)
            if event.kind == "speech_pause":
                self._recognize_early(event)
            elif event.kind == "speech_start":
                self.started.set()
                self._started_at = event.time
            elif event.kind not in ("speech_end", "max_speech") or self.finished.done():
                continue
            elif self.on_barge_in is not None and event.time - self._started_at < self.barge_in_s:
                # Too short to stop the prompt (a click, a cough): forget it, listen on.
                self.endpointer.reset()
                self.started.clear()
            else:
                self.decided_at = time.monotonic()
                self.finished.set_result(event)
        if self._early is not None and self._early.end != self.endpointer.last_speech:
            self._drop_early()  # the caller spoke again: that recognition heard half a turn
        if (
            self.on_barge_in is not None
            and self.endpointer.state == "speech"
            and self.endpointer.time - self._started_at >= self.barge_in_s
        ):
            barge_in, self.on_barge_in = self.on_barge_in, None
            barge_in()

    async def close(self) -> None:
        self.disarm()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class _Log:
    """What the call heard and said, for the trace."""

    prompts: list[dict[str, Any]] = field(default_factory=list)
    recognitions: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def add(items: list[dict[str, Any]], item: dict[str, Any]) -> None:
        if len(items) < MAX_LOGGED:
            items.append(item)


class VoicePort:
    """An IVR dialog on one call (``ivr_dialogs.ports.Port``).

    ``on_queue``, ``on_transfer``, ``on_voicemail`` and ``on_callback`` receive the
    dialog's handoff action; ``on_hangup`` (optional) hears the reason before the call is
    hung up; ``on_survey_answer`` (optional) stores answers as they come.
    ``audio_dir`` is where a ``say`` node's recorded ``audio`` files are found;
    ``recordings`` holds the prompts an admin recorded, as 8 kHz PCM by (language, text):
    such a prompt plays the recording instead of the voice.
    """

    def __init__(
        self,
        call: Call,
        speech: IvrSpeech,
        *,
        on_queue: Handler[Queue] | None = None,
        on_transfer: Handler[Transfer] | None = None,
        on_voicemail: Handler[Voicemail] | None = None,
        on_callback: Handler[Callback] | None = None,
        on_hangup: Handler[Hangup] | None = None,
        on_survey_answer: Handler[SurveyAnswer] | None = None,
        audio_dir: str | Path | None = None,
        recordings: Mapping[tuple[str, str], Pcm] | None = None,
    ) -> None:
        self.call = call
        self.recordings = recordings or {}
        self.speech = speech
        self.on_queue = on_queue
        self.on_transfer = on_transfer
        self.on_voicemail = on_voicemail
        self.on_callback = on_callback
        self.on_hangup = on_hangup
        self.on_survey_answer = on_survey_answer
        self.audio_dir = Path(audio_dir) if audio_dir is not None else None
        self.log = _Log()
        self.answers: list[SurveyAnswer] = []
        self.handoff: Queue | Transfer | Voicemail | Callback | Hangup | None = None
        self.trace: Trace | None = None
        self._capture: _Capture | None = None
        # When the endpointer ended the caller's last spoken turn (monotonic), until the
        # next prompt starts: the trace keeps the gap as the prompt's ``turn_to_prompt_ms``.
        self._turn_ended_at: float | None = None

    # ------------------------------------------------------------------ running a dialog

    def caller_info(self, **extra: Any) -> CallerInfo:
        """``caller.*`` for the dialog from the call: its number (and what the hub adds)."""
        return CallerInfo(number=self.call.caller_number, channel="voice", **extra)

    def missing_handlers(self, dialog: Dialog) -> list[str]:
        """Handoffs the dialog can reach that this port has no callback for (check before
        answering a call, rather than failing in the middle of it)."""
        needed = {
            QueueNode: ("queue", self.on_queue),
            TransferNode: ("transfer", self.on_transfer),
            VoicemailNode: ("voicemail", self.on_voicemail),
            CallbackNode: ("callback", self.on_callback),
        }
        missing = {
            needed[type(node)][0]
            for flow in dialog.flows.values()
            for node in flow.nodes.values()
            if type(node) in needed and needed[type(node)][1] is None
        }
        return sorted(missing)

    async def run(self, dialog: Dialog, **options: Any) -> Trace:
        """Run the dialog on the call (``options`` go to ``run_dialog``: http_client,
        secrets, caller, now, business_hours, ...) and return its trace, also kept in
        :attr:`trace` for the call service to store on the interaction.

        An error from a handoff callback (or :class:`ActionNotSupported`) propagates; the
        prompts and recognitions so far are still in :meth:`voice_record`."""
        options.setdefault("caller", self.caller_info())
        try:
            trace = await run_dialog(dialog, self, **options)
        finally:
            await self.close()
        trace["voice"] = self.voice_record()
        self.trace = trace
        return trace

    def voice_record(self) -> dict[str, Any]:
        """The prompts played (and how each ended) and what the recognizer heard."""
        return {
            "call_id": self.call.call_id,
            "prompts": list(self.log.prompts),
            "recognitions": list(self.log.recognitions),
        }

    async def close(self) -> None:
        """Stop listening to the call's audio (the call itself goes on)."""
        if self._capture is not None:
            await self._capture.close()
            self._capture = None

    def _capturer(self) -> _Capture:
        if self._capture is None:
            self._capture = _Capture(self.call, self.speech)
        return self._capture

    # ------------------------------------------------------------------ say

    def _audio_file(self, name: str) -> Path | None:
        """The recorded prompt's file, only from inside ``audio_dir`` (a dialog cannot make
        the call play any other file of the machine)."""
        if self.audio_dir is None:
            return None
        base = self.audio_dir.resolve()
        path = (base / name).resolve()
        if not path.is_relative_to(base) or not path.is_file():
            return None
        return path

    async def say(self, action: Say) -> None:
        """Play the prompt; with ``barge_in`` a key or the caller's voice stops it."""
        call = self.call
        if call.state is CallState.ENDED:
            raise CallerGone(f"call {call.call_id} has ended")
        capture = self._capturer()
        if action.barge_in and capture.speaking:
            # The caller is already answering (they talked over the previous prompt).
            self._logged_prompt(action, "skipped_caller_speaking", cached=None)
            return
        source: Any
        audio = self._audio_file(action.audio) if action.audio else None
        recorded = self.recordings.get((action.lang, action.text)) if action.text else None
        cached: bool | None = None
        if audio is not None:
            source = audio
        elif recorded is not None:
            source, cached = recorded, True
        elif action.text.strip():
            prompts = self.speech.prompts_for(action.lang)
            pcm = prompts.cached(action.text)
            cached = pcm is not None
            source = pcm if pcm is not None else prompts.stream(action.text)
        else:
            if action.audio:
                self._logged_prompt(action, "missing_audio", cached=None)
            return
        if action.barge_in:
            capture.arm(on_barge_in=call.stop_playback)
        else:
            capture.disarm()
        reply_ms = self._reply_ms()
        try:
            outcome = await call.play(
                source, sample_rate=RATE, interrupt_on_dtmf=action.barge_in, barge_in=False
            )
        except CallError as exc:
            capture.disarm()
            raise CallerGone(str(exc)) from exc
        except AudioError as exc:  # a recorded prompt that is not a WAV we can read
            capture.disarm()
            log.warning("%s: cannot play %s: %s", call.call_id, action.audio, exc)
            self._logged_prompt(action, "bad_audio", cached=None, reply_ms=reply_ms)
            if action.text.strip():
                await self.say(Say(action.text, action.lang, None, action.barge_in))
            return
        if outcome is PlayOutcome.STOPPED and capture.speaking:
            heard = "barge_in"
        else:
            heard = str(outcome)
            if outcome is PlayOutcome.DTMF:
                capture.disarm()  # the key is the answer, not the voice
        self._logged_prompt(action, heard, cached, reply_ms=reply_ms, recorded=recorded is not None)
        log.debug("%s: prompt %r: %s", call.call_id, action.text[:40], heard)
        if outcome is PlayOutcome.HANGUP or call.state is CallState.ENDED:
            capture.disarm()
            raise CallerGone(f"call {call.call_id} ended during a prompt")

    def _reply_ms(self) -> float | None:
        """How long the caller waited, from the endpointer ending their spoken turn to this
        prompt being handed to the media clock (its first frame leaves on the next 20 ms
        tick when it is cached; a streamed one waits for the synthesizer's first frame too).
        Once per turn; None after keys or no input."""
        ended, self._turn_ended_at = self._turn_ended_at, None
        return None if ended is None else round((time.monotonic() - ended) * 1000, 1)

    def _logged_prompt(
        self,
        action: Say,
        outcome: str,
        cached: bool | None,
        reply_ms: float | None = None,
        recorded: bool = False,
    ) -> None:
        item: dict[str, Any] = {
            "text": action.text,
            "audio": action.audio,
            "outcome": outcome,
            "cached": cached,
        }
        if recorded:
            item["recorded"] = action.lang  # an admin's recording played, not the voice
        if reply_ms is not None:
            item["turn_to_prompt_ms"] = reply_ms
        self.log.add(self.log.prompts, item)

    # ------------------------------------------------------------------ listen

    async def listen(self, action: Listen) -> Event:
        """The caller's next keys or words; ``NoInput`` after ``timeout_s`` of neither."""
        call = self.call
        if call.state is CallState.ENDED:
            return HangUp()
        capture = self._capturer()
        hints = tuple(action.hints)
        if capture.armed:
            capture.keep_listening(action.expect, hints)  # straight on from a barge-in prompt
        else:
            capture.arm(action.expect, hints=hints)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + action.timeout_s
        # The first key, with no limit of its own: the silence timer below decides.
        keys = asyncio.ensure_future(call.collect_dtmf(1, timeout=KEY_WAIT_S, terminator=None))
        started = asyncio.ensure_future(capture.started.wait())
        finished = capture.finished
        try:
            while True:
                if capture.started.is_set():
                    # A turn is under way: the endpointer ends it (at most max_speech);
                    # the margin only guards against a media clock that stopped.
                    wait = capture.endpointer.config.max_speech_ms / 1000 + 5.0
                    pending = {keys, finished}
                else:
                    wait = max(0.0, deadline - loop.time())
                    pending = {keys, finished, started}
                done, _ = await asyncio.wait(pending, timeout=wait, return_when="FIRST_COMPLETED")
                if keys.done():
                    collected = keys.result()
                    if collected.digits:
                        capture.disarm()
                        return await self._keys(collected.digits, action)
                    return HangUp()  # collection ends without a key only at the hang-up
                if finished.done() and not finished.cancelled():
                    turn = finished.result()
                    early = capture.take_early(turn)
                    capture.disarm()
                    self._turn_ended_at = capture.decided_at
                    return await self._recognize(turn, action, early)
                if not done:
                    capture.disarm()
                    return NoInput()
        finally:
            for task in (keys, started):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(keys, started, return_exceptions=True)

    async def _keys(self, first: str, action: Listen) -> Event:
        """The rest of a keyed entry, up to ``max_digits`` or the terminator."""
        if action.max_digits <= 1:
            return Digit(first)
        if first == action.terminator:
            return Digits(first)
        settings = self.speech.settings
        gap = settings.inter_digit_timeout_s or action.timeout_s
        rest = await self.call.collect_dtmf(
            action.max_digits - 1, timeout=gap, terminator=action.terminator
        )
        if rest.ended_by == "hangup":
            return HangUp()
        ended = action.terminator if rest.ended_by == "terminator" and action.terminator else ""
        return Digits(first + rest.digits + ended)

    async def _recognize(
        self,
        turn: EndpointEvent,
        action: Listen,
        early: asyncio.Future[RecognizedTurn] | None = None,
    ) -> Event:
        """What the caller said, with the menu's phrases as hints for the recognizer;
        ``early`` is its recognition already under way since the turn's last pause."""
        if turn.utterance is None or turn.utterance.frames == 0:
            return NoInput()
        hints = list(action.hints) or None
        started = time.monotonic()
        try:
            if early is None:
                heard = await self.speech.recognizer.transcribe_utterance(turn.utterance, hints)
            else:
                heard = await early
        except Exception:  # a failed recognition is a no-match (the dialog can offer keys)
            log.exception("%s: recognition failed", self.call.call_id)
            self.log.add(self.log.recognitions, {"node": action.node, "error": "failed"})
            return Utterance("", 0.0)
        text = heard.text.strip()
        chosen, confidence = chosen_answer(heard)
        self.log.add(
            self.log.recognitions,
            {
                "node": action.node,
                "text": text,
                "hint": heard.hint,
                "chosen": chosen,
                "asr_confidence": round(heard.confidence, 3),
                "confidence": round(confidence, 3),
                "seconds": round(heard.duration, 2),
                "end": turn.kind,
                "early": early is not None,
                "asr_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        log.debug("%s: heard %r as %r (%.2f)", self.call.call_id, text, chosen, confidence)
        if not chosen:
            return Utterance("", 0.0)  # a sound that was not words: the dialog's no-match
        return Utterance(chosen, float(confidence))

    # ------------------------------------------------------------------ handoffs

    async def survey_answer(self, action: SurveyAnswer) -> None:
        self.answers.append(action)  # also in the trace's "survey"
        if self.on_survey_answer is not None:
            await self.on_survey_answer(action)

    async def _hand_off(self, action: A, handler: Handler[A] | None, name: str) -> None:
        if handler is None:
            raise ActionNotSupported(
                f"the dialog ended with {name} ({action!r}) but this voice port was given no "
                f"on_{name} callback"
            )
        self.handoff = action  # type: ignore[assignment]
        await handler(action)

    async def queue(self, action: Queue) -> None:
        await self._hand_off(action, self.on_queue, "queue")

    async def transfer(self, action: Transfer) -> None:
        await self._hand_off(action, self.on_transfer, "transfer")

    async def voicemail(self, action: Voicemail) -> None:
        await self._hand_off(action, self.on_voicemail, "voicemail")

    async def callback(self, action: Callback) -> None:
        await self._hand_off(action, self.on_callback, "callback")

    async def hangup(self, action: Hangup) -> None:
        """Tell the creator why (if it asked), then hang up the call."""
        self.handoff = action
        try:
            if self.on_hangup is not None:
                await self.on_hangup(action)
        finally:
            await self.close()
            await self.call.hangup()
