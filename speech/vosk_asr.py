"""Vosk (Kaldi) recognition: streaming partial results and grammar-constrained menus.

Vosk is optional: the `vosk` package and a model directory (``HUB_SPEECH_VOSK_MODEL_DIR``)
are both needed, and without them `VoskRecognizer` raises `VoskUnavailable` with the reason,
while the rest of the hub runs on Whisper. Its strengths are what Whisper lacks: results while
the caller is still speaking, and a grammar (a list of phrases) that keeps a menu's answer
inside the menu.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from speech.asr import Segment, Transcript, Utterance, Word, closest_hint, stereo_transcript
from speech.audio import Audio, AudioError, StreamResampler
from speech.settings import SpeechSettings

__all__ = ["StreamResult", "VoskRecognizer", "VoskStream", "VoskUnavailable"]

VOSK_RATE = 16_000
_CHUNK = 4000  # samples fed per call when recognizing a whole recording (0.25 s)

_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


class VoskUnavailable(RuntimeError):
    """Vosk cannot run here: the package or the model directory is missing."""


def _load_model(model_dir: Path) -> Any:
    with _MODELS_LOCK:
        model = _MODELS.get(str(model_dir))
        if model is None:
            try:
                import vosk
            except ImportError as exc:
                raise VoskUnavailable("the vosk package is not installed (extra 'vosk')") from exc
            if not (model_dir / "am").is_dir() and not (model_dir / "conf").is_dir():
                raise VoskUnavailable(f"no Vosk model in {model_dir}")
            vosk.SetLogLevel(-1)
            model = vosk.Model(str(model_dir))
            _MODELS[str(model_dir)] = model
        return model


def _words(result: dict[str, Any]) -> tuple[Word, ...]:
    return tuple(
        Word(round(w["start"], 3), round(w["end"], 3), w["word"], float(w.get("conf", 1.0)))
        for w in result.get("result", ())
    )


def best_phrase(words: Sequence[Word], phrases: Sequence[str]) -> str | None:
    """The grammar phrase heard with the most confidence.

    Vosk's grammar lets phrases follow each other, so a stray low-confidence word can trail
    the answer ("주문 상태 아니요"); score each phrase by the confidence of its words where they
    occur in order, and keep the best.
    """
    said = [w.text for w in words]
    best: tuple[float, str] | None = None
    for phrase in phrases:
        parts = phrase.split()
        for i in range(len(said) - len(parts) + 1):
            if said[i : i + len(parts)] == parts:
                score = sum(w.probability for w in words[i : i + len(parts)])
                if best is None or score > best[0]:
                    best = (score, phrase)
    return best[1] if best else None


def _utterance(result: dict[str, Any], duration: float, hints: Sequence[str] | None) -> Utterance:
    words = _words(result)
    text = result.get("text", "").strip()
    confidence = float(np.mean([w.probability for w in words])) if words else 0.0
    hint = best_phrase(words, hints) if hints else None
    return Utterance(text, confidence, duration, hint or closest_hint(text, hints))


def _pcm16k(audio: Audio) -> bytes:
    if audio.frames == 0:
        raise AudioError("no audio to recognize")
    return audio.mono().resampled(VOSK_RATE).samples.astype("<i2").tobytes()


@dataclass(frozen=True, slots=True)
class StreamResult:
    """`partial` while the caller speaks (when it changed); `final` when Vosk ends a phrase."""

    partial: str | None = None
    final: Utterance | None = None


def _kaldi(model: Any, hints: Sequence[str] | None, words: bool = True) -> Any:
    """A Kaldi recognizer at 16 kHz; with hints, a grammar (JSON, UTF-8 as is: Vosk does
    not decode ``\\u`` escapes, so Korean phrases would otherwise never match)."""
    import vosk

    if hints:
        rec = vosk.KaldiRecognizer(model, VOSK_RATE, json.dumps(list(hints), ensure_ascii=False))
    else:
        rec = vosk.KaldiRecognizer(model, VOSK_RATE)
    rec.SetWords(words)
    return rec


def _run_all(rec: Any, data: bytes) -> list[dict[str, Any]]:
    """Feed a whole recording; every phrase Vosk finalized, then the rest."""
    results = []
    step = _CHUNK * 2
    for start in range(0, len(data), step):
        if rec.AcceptWaveform(data[start : start + step]):
            results.append(json.loads(rec.Result()))
    results.append(json.loads(rec.FinalResult()))
    return results


class VoskStream:
    """Streaming recognition of one call leg: feed frames, get partial and final results."""

    def __init__(self, model: Any, sample_rate: int, hints: Sequence[str] | None = None) -> None:
        self.hints = list(hints) if hints else None
        self._rec = _kaldi(model, self.hints)
        self._resampler = StreamResampler(sample_rate, VOSK_RATE)
        self._last_partial = ""
        self._samples = 0
        self.sample_rate = sample_rate

    def feed(self, pcm: npt.NDArray[np.int16]) -> StreamResult:
        """Consume a frame; report a new partial text or a finished phrase."""
        self._samples += len(pcm)
        data = self._resampler.feed(np.asarray(pcm, dtype=np.int16)).astype("<i2").tobytes()
        if self._rec.AcceptWaveform(data):
            self._last_partial = ""
            result = json.loads(self._rec.Result())
            return StreamResult(
                final=_utterance(result, self._samples / self.sample_rate, self.hints)
            )
        partial = json.loads(self._rec.PartialResult()).get("partial", "")
        if partial and partial != self._last_partial:
            self._last_partial = partial
            return StreamResult(partial=partial)
        return StreamResult()

    def finish(self) -> Utterance:
        """End of input: the final result for what is left."""
        tail = self._resampler.feed(np.zeros(0, dtype=np.int16), last=True)
        self._rec.AcceptWaveform(tail.astype("<i2").tobytes())
        result = json.loads(self._rec.FinalResult())
        return _utterance(result, self._samples / self.sample_rate, self.hints)


class VoskRecognizer:
    """A `Recognizer` on Vosk; hints become a grammar that constrains the result."""

    def __init__(
        self, model_dir: str | Path | None = None, settings: SpeechSettings | None = None
    ) -> None:
        settings = settings or SpeechSettings.from_env()
        chosen = model_dir or settings.vosk_model_dir
        if chosen is None:
            raise VoskUnavailable("no Vosk model directory (set HUB_SPEECH_VOSK_MODEL_DIR)")
        self.model_dir = Path(chosen)

    @property
    def model(self) -> Any:
        return _load_model(self.model_dir)

    def stream(self, sample_rate: int = 8000, hints: Sequence[str] | None = None) -> VoskStream:
        """A streaming session for one caller turn (or a whole call leg)."""
        return VoskStream(self.model, sample_rate, hints)

    def transcribe_utterance(self, audio: Audio, hints: Sequence[str] | None = None) -> Utterance:
        """One turn; with `hints`, only those phrases can be recognized."""
        results = _run_all(_kaldi(self.model, hints), _pcm16k(audio))
        merged = {
            "text": " ".join(r.get("text", "") for r in results).strip(),
            "result": [w for r in results for w in r.get("result", ())],
        }
        return _utterance(merged, audio.duration, hints)

    def transcribe(self, audio: Audio, word_timestamps: bool = True) -> Transcript:
        """A recording, one segment per phrase Vosk finalizes, with word times."""
        segments = []
        for result in _run_all(_kaldi(self.model, None), _pcm16k(audio)):
            text = result.get("text", "").strip()
            words = _words(result)
            if not text or not words:
                continue
            confidence = float(np.mean([w.probability for w in words]))
            kept = words if word_timestamps else ()
            segments.append(Segment(words[0].start, words[-1].end, text, None, kept, confidence))
        return Transcript(segments, audio.duration, "")

    def transcribe_stereo(
        self, audio: Audio, speakers: tuple[str, str] = ("customer", "agent")
    ) -> Transcript:
        return stereo_transcript(self, audio, speakers)
