"""Voice activity detection and endpointing over a stream of telephony frames.

The model is the Silero VAD (v6) that faster-whisper ships in ``faster_whisper/assets``, so
no other weights are needed. It scores 32 ms windows of 16 kHz audio; frames of any rate
and size (20 ms RTP payloads at 8 kHz, typically) are resampled and buffered to that.

`Endpointer` turns scores into the IVR's events: speech started, speech ended (with the
utterance audio, including a little audio from before the start so the first phoneme is not
clipped), no input, or speech too long. The silence and timeout lengths are settings, because
a menu choice wants a short end-of-speech silence and a free-form answer a longer one.
`BargeInDetector` listens while a prompt plays, so a caller can interrupt it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from speech.audio import Audio, StreamResampler, pcm_to_float

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["BargeInDetector", "EndpointConfig", "EndpointEvent", "Endpointer", "SileroVad"]

VAD_RATE = 16_000
_WINDOW = 512  # samples per Silero window at 16 kHz (32 ms)
_CONTEXT = 64  # samples of the previous window the model sees before each window
WINDOW_SECONDS = _WINDOW / VAD_RATE

_SESSIONS: dict[str, onnxruntime.InferenceSession] = {}
_SESSIONS_LOCK = threading.Lock()


def default_vad_model() -> Path:
    """silero_vad_v6.onnx from faster-whisper's package data."""
    import faster_whisper

    return Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"


def _session(path: Path) -> onnxruntime.InferenceSession:
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(str(path))
        if session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1  # tiny model: threads cost more than they save
            options.log_severity_level = 4
            session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            _SESSIONS[str(path)] = session
        return session


class SileroVad:
    """Streaming speech probabilities, one per 32 ms window; state is per instance."""

    def __init__(self, sample_rate: int = 8000, model_path: str | Path | None = None) -> None:
        self.sample_rate = sample_rate
        self._session = _session(Path(model_path) if model_path else default_vad_model())
        self._resampler = StreamResampler(sample_rate, VAD_RATE)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
        """Speech probability of each whole 32 ms window completed by this chunk."""
        audio16k = pcm_to_float(self._resampler.feed(np.asarray(pcm, dtype=np.int16)))
        data = np.concatenate([self._pending, audio16k])
        count = len(data) // _WINDOW
        self._pending = data[count * _WINDOW :]
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        windows = data[: count * _WINDOW].reshape(count, _WINDOW)
        contexts = np.vstack([self._context[np.newaxis], windows[:-1, -_CONTEXT:]])
        self._context = windows[-1, -_CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1).astype(np.float32)
        probs, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        return np.asarray(probs, dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class EndpointConfig:
    """Thresholds and timeouts; times in milliseconds."""

    threshold: float = 0.5  # a window at or above this is speech
    negative_threshold: float = 0.35  # below this is silence (in between keeps the state)
    min_speech_ms: int = 96  # speech this long starts an utterance (shorter: a click)
    end_silence_ms: int = 700  # silence this long after speech ends the utterance
    no_input_ms: int = 5000  # nothing said this long after start: "no input"
    max_speech_ms: int = 15_000  # an utterance is cut here
    pre_roll_ms: int = 200  # audio kept from before the detected start
    # Silence this long after speech (shorter than end_silence_ms; 0: off) gives a
    # ``speech_pause`` event with the turn so far, so recognition can start while the end is
    # still undecided. The turn's audio stops 150 ms after its last speech, so from about
    # 200 ms on the pause's audio is the very audio the turn ends with if nobody speaks again.
    early_ms: int = 0


EventKind = Literal["speech_start", "speech_pause", "speech_end", "no_input", "max_speech"]


@dataclass(frozen=True)
class EndpointEvent:
    """What happened and when (seconds since the stream started)."""

    kind: EventKind
    time: float
    utterance: Audio | None = None  # with speech_pause / _end / max_speech: the words so far
    start: float | None = None  # with speech_pause / _end / max_speech: when speech began


class Endpointer:
    """Start and end of one caller turn in a stream of frames; `reset` for the next turn."""

    def __init__(
        self,
        sample_rate: int = 8000,
        config: EndpointConfig | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.config = config or EndpointConfig()
        self._vad = SileroVad(sample_rate, model_path)
        self.reset()

    def reset(self, config: EndpointConfig | None = None) -> None:
        """Listen for a new turn (optionally with other timeouts); the clock restarts at 0."""
        if config is not None:
            self.config = config
        self._vad.reset()
        self.state: Literal["waiting", "speech", "done"] = "waiting"
        self._window = 0  # windows scored so far
        self._run = 0  # consecutive speech windows while waiting
        self._silent = 0  # consecutive silent windows while in speech
        self._start_window = 0
        self._last_speech_window = 0
        # While waiting, keep enough audio to reach back to pre-roll before a start that is
        # only confirmed min_speech_ms later (plus a margin for the resampler and buffering).
        keep_ms = self.config.pre_roll_ms + self.config.min_speech_ms + 200
        self._pre_roll: deque[npt.NDArray[np.int16]] = deque()
        self._pre_roll_samples = 0
        self._pre_roll_keep = round(self.sample_rate * keep_ms / 1000)
        self._captured: list[npt.NDArray[np.int16]] = []
        self._captured_from = 0.0  # stream time of the first captured sample
        self._samples_in = 0

    @property
    def time(self) -> float:
        """Seconds of audio fed since the last reset."""
        return self._samples_in / self.sample_rate

    @property
    def last_speech(self) -> float:
        """Stream time of the current turn's last speech window (a ``speech_pause`` event
        whose ``time`` differs from it is out of date: the caller spoke again)."""
        return self._last_speech_window * WINDOW_SECONDS

    def _ms_to_windows(self, ms: int) -> int:
        return max(1, round(ms / 1000 / WINDOW_SECONDS))

    def feed(self, pcm: npt.NDArray[np.int16]) -> list[EndpointEvent]:
        """Consume one frame (any length) and return what it completed."""
        frame = np.asarray(pcm, dtype=np.int16).reshape(-1)
        self._samples_in += len(frame)
        if self.state == "done":
            return []
        if self.state == "waiting":
            self._pre_roll.append(frame)
            self._pre_roll_samples += len(frame)
            while self._pre_roll_samples - len(self._pre_roll[0]) >= self._pre_roll_keep:
                self._pre_roll_samples -= len(self._pre_roll.popleft())
        else:
            self._captured.append(frame)
        events: list[EndpointEvent] = []
        for prob in self._vad.feed(frame):
            self._window += 1
            event = self._step(float(prob))
            if event is not None:
                events.append(event)
                if self.state == "done":
                    break
        return events

    def _step(self, prob: float) -> EndpointEvent | None:
        cfg = self.config
        now = self._window * WINDOW_SECONDS
        if self.state == "waiting":
            self._run = self._run + 1 if prob >= cfg.threshold else 0
            if self._run >= self._ms_to_windows(cfg.min_speech_ms):
                self.state = "speech"
                self._start_window = self._window - self._run
                self._last_speech_window = self._window
                self._silent = 0
                start = self._start_window * WINDOW_SECONDS
                self._begin_capture(start)
                return EndpointEvent("speech_start", start)
            if now * 1000 >= cfg.no_input_ms:
                self.state = "done"
                return EndpointEvent("no_input", now)
            return None
        if prob >= cfg.threshold or (prob >= cfg.negative_threshold and self._silent == 0):
            self._silent = 0
            self._last_speech_window = self._window
        else:
            self._silent += 1
        start = self._start_window * WINDOW_SECONDS
        if self._silent >= self._ms_to_windows(cfg.end_silence_ms):
            return self._finish("speech_end", start)
        if (self._window - self._start_window) * WINDOW_SECONDS * 1000 >= cfg.max_speech_ms:
            return self._finish("max_speech", start)
        if cfg.early_ms and self._silent == self._ms_to_windows(cfg.early_ms):
            return EndpointEvent("speech_pause", self.last_speech, self._utterance(), start)
        return None

    def _begin_capture(self, start: float) -> None:
        chunks = list(self._pre_roll)
        self._pre_roll.clear()
        buffered = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        buffered_from = self._samples_in / self.sample_rate - len(buffered) / self.sample_rate
        keep_from = max(buffered_from, start - self.config.pre_roll_ms / 1000)
        skip = round((keep_from - buffered_from) * self.sample_rate)
        self._captured = [buffered[max(0, skip) :]]
        self._captured_from = keep_from

    def _utterance(self) -> Audio:
        """The turn's audio up to a little after its last speech window."""
        audio = np.concatenate(self._captured) if self._captured else np.zeros(0, np.int16)
        tail = 0.15  # keep a little after the last speech window for the final consonant
        stop = round((self.last_speech + tail - self._captured_from) * self.sample_rate)
        return Audio(audio[: max(0, stop)].copy(), self.sample_rate)

    def _finish(self, kind: EventKind, start: float) -> EndpointEvent:
        self.state = "done"
        return EndpointEvent(kind, self.last_speech, self._utterance(), start)


class BargeInDetector:
    """Caller speech while a prompt plays: `feed` returns True once, when it starts.

    Stricter than the endpointer (a higher threshold and a longer run), because the line
    may carry an echo of the prompt and the caller's "mm-hm" should not stop it.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        threshold: float = 0.6,
        min_speech_ms: int = 200,
        model_path: str | Path | None = None,
    ) -> None:
        self._vad = SileroVad(sample_rate, model_path)
        self.threshold = threshold
        self._needed = max(1, round(min_speech_ms / 1000 / WINDOW_SECONDS))
        self.reset()

    def reset(self) -> None:
        """Arm for the next prompt."""
        self._vad.reset()
        self._run = 0
        self.triggered = False

    def feed(self, pcm: npt.NDArray[np.int16]) -> bool:
        """True when this frame completes a barge-in (only the first time)."""
        if self.triggered:
            return False
        for prob in self._vad.feed(pcm):
            self._run = self._run + 1 if prob >= self.threshold else 0
            if self._run >= self._needed:
                self.triggered = True
                return True
        return False
