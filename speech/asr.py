"""Speech recognition: the `Recognizer` protocol, its faster-whisper engine and plain results.

Two uses, two paths through the same model:

- IVR utterances (`transcribe_utterance`): a few seconds after endpointing, where latency is
  what the caller feels. Whisper's encoder normally runs on a 30 s window whatever the audio
  length; here the mel features are padded only to the next 5 s step past the speech (the
  "reduced audio context" of whisper.cpp's ``audio_ctx``), which makes a 2 s utterance about
  5× cheaper. Expected phrases (`hints`) are given to the decoder as the previous-text prompt,
  and the closest one is reported.
- Recordings for QA (`transcribe`, `transcribe_stereo`): faster-whisper's own long-form
  `transcribe`, with segment and word timestamps. A stereo call has one party per channel,
  so each channel is transcribed alone and every segment knows its speaker.

Models load lazily, once per process per (model, device, compute type).
"""

from __future__ import annotations

import difflib
import math
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from speech.audio import Audio, AudioError, pcm_to_float, split_stereo
from speech.settings import SpeechSettings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = [
    "Recognizer",
    "Segment",
    "Transcript",
    "Utterance",
    "WhisperRecognizer",
    "Word",
    "closest_hint",
    "hint_score",
]

WHISPER_RATE = 16_000
_FRAMES_PER_SECOND = 100  # Whisper's mel hop is 10 ms
_MIN_CONTEXT_FRAMES = 1000  # reduced audio context: at least 10 s (shorter ones loop)…
_CONTEXT_STEP_FRAMES = 500  # …growing in 5 s steps…
_FULL_CONTEXT_FRAMES = 3000  # …up to Whisper's native 30 s window
_NO_SPEECH_THRESHOLD = 0.6  # Whisper's own rule: silent if no-speech is likely…
_LOGPROB_THRESHOLD = -1.0  # …and the text is improbable
_HINT_MIN_SIMILARITY = 0.6
_COMPRESSION_RATIO_THRESHOLD = 2.4  # Whisper's test for repetitive (looping) output
TURN_GAP_SECONDS = 1.0  # a pause this long between words starts a new segment


@dataclass(frozen=True, slots=True)
class Word:
    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of speech; times are seconds from the start of the recording."""

    start: float
    end: float
    text: str
    speaker: str | None = None
    words: tuple[Word, ...] = ()
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class Transcript:
    segments: list[Segment]
    duration: float
    language: str = "en"

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)


@dataclass(frozen=True, slots=True)
class Utterance:
    """What a caller said in one turn; `hint` is the expected phrase it matched, if any."""

    text: str
    confidence: float
    duration: float
    hint: str | None = None
    no_speech_probability: float = 0.0


@runtime_checkable
class Recognizer(Protocol):
    """What the IVR and QA need from an ASR engine."""

    def transcribe_utterance(
        self, audio: Audio, hints: Sequence[str] | None = None
    ) -> Utterance: ...

    def transcribe(self, audio: Audio, word_timestamps: bool = True) -> Transcript: ...

    def transcribe_stereo(
        self, audio: Audio, speakers: tuple[str, str] = ("customer", "agent")
    ) -> Transcript: ...


def normalize_phrase(text: str) -> str:
    """Lower case, no punctuation, single spaces: for comparing phrases."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def closest_hint(text: str, hints: Sequence[str] | None) -> str | None:
    """The expected phrase the text is closest to, if it is close enough to count."""
    if not hints or not text.strip():
        return None
    said = normalize_phrase(text)
    scored = [(difflib.SequenceMatcher(None, said, normalize_phrase(h)).ratio(), h) for h in hints]
    contained = [
        h for h in hints if normalize_phrase(h) and f" {normalize_phrase(h)} " in f" {said} "
    ]
    if contained:  # "uh, order status please" says the hint "order status"
        return max(contained, key=len)
    score, best = max((max(score, _best_span_similarity(said, h)), h) for score, h in scored)
    return best if score >= _HINT_MIN_SIMILARITY else None


def hint_score(text: str, hint: str) -> float:
    """How well what was said matches an expected phrase, 0..1: 1.0 when the phrase is said
    word for word, else the similarity `closest_hint` judged it by."""
    said, target = normalize_phrase(text), normalize_phrase(hint)
    if not said or not target:
        return 0.0
    if f" {target} " in f" {said} ":
        return 1.0
    whole = difflib.SequenceMatcher(None, said, target).ratio()
    return max(whole, _best_span_similarity(said, hint))


def _best_span_similarity(said: str, hint: str) -> float:
    """How close the hint is to the best-matching run of words the caller said, so a
    misheard hint inside a sentence still counts ("bill and please" → "billing"). Only for
    hints of five letters or more: a short one ("no") would match too much ("I don't know").
    """
    target = normalize_phrase(hint)
    if len(target) < 5:
        return 0.0
    words, n = said.split(), len(target.split())
    spans = {" ".join(words[i : i + k]) for k in (n, n + 1) for i in range(len(words) - k + 1)}
    return max((difflib.SequenceMatcher(None, s, target).ratio() for s in spans), default=0.0)


def stereo_transcript(
    recognizer: Recognizer, audio: Audio, speakers: tuple[str, str]
) -> Transcript:
    """Per-channel transcription merged in time order, each segment labelled by channel."""
    left, right = split_stereo(audio)
    merged: list[Segment] = []
    for channel, speaker in zip((left, right), speakers, strict=True):
        for seg in recognizer.transcribe(channel, word_timestamps=True).segments:
            merged.append(Segment(seg.start, seg.end, seg.text, speaker, seg.words, seg.confidence))
    merged.sort(key=lambda s: (s.start, s.end))
    return Transcript(merged, audio.duration)


def looks_looped(text: str, tokens: int, budget: int) -> bool:
    """Signs of Whisper's decoding loop: the token budget (nearly) used up, text that
    compresses too well, a phrase of two or more words said twice in a row, one word three
    times ("No? No? No?" for "No.") or the whole answer twice ("Billing. Billing.", which
    menu hints invite). A caller who really said "no, no, no" costs only a second decode,
    which hears it again."""
    if tokens >= budget // 2 or _compression_ratio(text) > _COMPRESSION_RATIO_THRESHOLD:
        return True
    words = normalize_phrase(text).split()
    if any(a == b == c for a, b, c in zip(words, words[1:], words[2:], strict=False)):
        return True
    half = len(words) // 2
    if words and words[:half] * 2 == words:  # the whole answer twice: "Billing. Billing."
        return True
    return any(
        words[i : i + k] == words[i + k : i + 2 * k]
        for k in range(2, len(words) // 2 + 1)
        for i in range(len(words) - 2 * k + 1)
    )


def _compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _secs(value: float) -> float:
    return round(float(value), 3)


def _speech_regions(samples: np.ndarray) -> list[tuple[float, float]]:
    """Where Silero VAD hears speech, in seconds (padded a little, as speech fades out)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(
        samples, VadOptions(min_silence_duration_ms=300, speech_pad_ms=150)
    )
    return [(c["start"] / WHISPER_RATE, c["end"] / WHISPER_RATE) for c in found]


def _clamp_to_speech(
    words: tuple[Word, ...], regions: list[tuple[float, float]]
) -> tuple[Word, ...]:
    """Whisper often stretches a turn's last word to the end of its window; cut words off at
    the end of the speech region they start in."""
    clamped = []
    for word in words:
        inside = [end for start, end in regions if start - 0.2 <= word.start <= end]
        end = min(word.end, inside[0]) if inside else word.end
        clamped.append(Word(word.start, max(end, word.start), word.text, word.probability))
    return tuple(clamped)


def _split_at_pauses(segment: Segment, gap: float = TURN_GAP_SECONDS) -> list[Segment]:
    """Whisper may join two turns across a long silence; split where the words pause."""
    words = segment.words
    cuts = [i for i in range(1, len(words)) if words[i].start - words[i - 1].end >= gap]
    if not cuts:
        return [segment]
    pieces = []
    for lo, hi in zip([0, *cuts], [*cuts, len(words)], strict=True):
        part = words[lo:hi]
        text = " ".join(w.text for w in part)
        pieces.append(
            Segment(part[0].start, part[-1].end, text, segment.speaker, part, segment.confidence)
        )
    return pieces


def _to_whisper_input(audio: Audio) -> np.ndarray:
    if audio.frames == 0:
        raise AudioError("no audio to recognize")
    return pcm_to_float(audio.mono().resampled(WHISPER_RATE).samples)


_MODELS: dict[tuple[str, str, str, int, int], WhisperModel] = {}
_MODELS_LOCK = threading.Lock()


def load_whisper(
    model_dir: Path, device: str, compute_type: str, cpu_threads: int, workers: int = 1
) -> WhisperModel:
    """A CTranslate2 Whisper model from a local directory, shared by the whole process.

    `workers` is CTranslate2's number of parallel model replicas: calls from more threads
    than that wait inside CTranslate2, so it should match the recognizer pool's workers.
    """
    key = (str(model_dir), device, compute_type, cpu_threads, workers)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from faster_whisper import WhisperModel

            if not (model_dir / "model.bin").is_file():
                raise FileNotFoundError(f"no CTranslate2 Whisper model (model.bin) in {model_dir}")
            model = WhisperModel(
                str(model_dir),
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                num_workers=workers,
                local_files_only=True,
            )
            _MODELS[key] = model
        return model


class WhisperRecognizer:
    """faster-whisper: IVR utterances, and recordings with segment and word timestamps."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        device: str | None = None,
        compute_type: str | None = None,
        cpu_threads: int | None = None,
        language: str | None = None,
        beam_size: int = 5,
        settings: SpeechSettings | None = None,
    ) -> None:
        settings = settings or SpeechSettings.from_env()
        self.model_dir = Path(model_dir) if model_dir else settings.resolved_whisper_model()
        self.device = device or settings.device
        self.compute_type = compute_type or settings.compute_type
        self.cpu_threads = settings.cpu_threads if cpu_threads is None else cpu_threads
        self.language = language or settings.language
        self.beam_size = beam_size  # for recordings; utterances decode greedily for latency
        self.workers = settings.asr_workers

    @property
    def model(self) -> WhisperModel:
        """The loaded model (loads it on first use)."""
        return load_whisper(
            self.model_dir, self.device, self.compute_type, self.cpu_threads, self.workers
        )

    def warm_up(self) -> None:
        """Load the model and run one tiny decode, so the first caller does not pay for it."""
        self.transcribe_utterance(Audio(np.zeros(WHISPER_RATE // 2, dtype=np.int16), WHISPER_RATE))

    # -------------------------------------------------------------------------- IVR

    def transcribe_utterance(self, audio: Audio, hints: Sequence[str] | None = None) -> Utterance:
        """One caller turn, decoded greedily over a reduced audio context."""
        samples = _to_whisper_input(audio)
        if len(samples) > WHISPER_RATE * 28:  # too long for one window: use the long form
            text = self.transcribe(audio, word_timestamps=False).text
            return Utterance(text, 1.0 if text else 0.0, audio.duration, closest_hint(text, hints))
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_ctranslate2_storage

        model = self.model
        tokenizer = Tokenizer(
            model.hf_tokenizer,
            model.model.is_multilingual,
            task="transcribe",
            language=self.language if model.model.is_multilingual else "en",
        )
        features = model.feature_extractor(samples)
        speech_frames = min(features.shape[-1], _FULL_CONTEXT_FRAMES)
        steps = math.ceil((speech_frames + _FRAMES_PER_SECOND) / _CONTEXT_STEP_FRAMES)
        context = min(_FULL_CONTEXT_FRAMES, max(_MIN_CONTEXT_FRAMES, steps * _CONTEXT_STEP_FRAMES))
        prompt: list[int] = []
        if hints:
            hint_tokens = tokenizer.encode(" " + ", ".join(h.strip() for h in hints if h.strip()))
            prompt = [tokenizer.sot_prev, *hint_tokens[-(model.max_length // 2 - 1) :]]
        prompt += [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        # Speech runs at 2-4 words a second; a budget far above that stops a decoding loop.
        # CTranslate2's max_length counts the prompt too: hints must not eat the budget (a
        # short "Billing." with five menu options as hints once asked for a length <= 0).
        budget = min(model.max_length - len(prompt), 16 + int(audio.duration * 12))
        max_length = len(prompt) + budget

        def decode(frames: int) -> tuple[list[int], float, float]:
            padded = np.zeros((features.shape[0], frames), dtype=np.float32)
            padded[:, :speech_frames] = features[:, :speech_frames]
            result = model.model.generate(
                get_ctranslate2_storage(padded[np.newaxis]),
                [prompt],
                beam_size=1,
                max_length=max_length,
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=[-1],
            )[0]
            ids = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
            score = float(result.scores[0]) if result.scores else 0.0
            return ids, score, float(result.no_speech_prob)

        tokens, logprob, no_speech = decode(context)
        text = tokenizer.decode(tokens).strip()
        if context < _FULL_CONTEXT_FRAMES and looks_looped(text, len(tokens), budget):
            # a repetition loop: decode again over Whisper's native 30 s window
            tokens, logprob, no_speech = decode(_FULL_CONTEXT_FRAMES)
            text = tokenizer.decode(tokens).strip()
        if not tokens or (no_speech > _NO_SPEECH_THRESHOLD and logprob < _LOGPROB_THRESHOLD):
            return Utterance("", 0.0, audio.duration, None, no_speech)
        return Utterance(
            text, math.exp(logprob), audio.duration, closest_hint(text, hints), no_speech
        )

    # -------------------------------------------------------------------------- QA

    def transcribe(
        self, audio: Audio, word_timestamps: bool = True, vad_filter: bool = True
    ) -> Transcript:
        """A whole recording: segments with times, words with times (mono; stereo is mixed).

        `vad_filter` skips silence with Silero VAD first, which keeps Whisper from inventing
        text in long quiet stretches, as a one-party channel of a call has.
        """
        samples = _to_whisper_input(audio)
        raw_segments, info = self.model.transcribe(
            samples,
            language=self.language if self.model.model.is_multilingual else None,
            beam_size=self.beam_size,
            word_timestamps=word_timestamps,
            vad_filter=vad_filter,
            condition_on_previous_text=False,
        )
        regions = _speech_regions(samples) if vad_filter and word_timestamps else None
        segments: list[Segment] = []
        for s in raw_segments:
            if not s.text.strip():
                continue
            words = tuple(
                Word(
                    round(float(w.start), 3),
                    round(float(w.end), 3),
                    w.word.strip(),
                    float(w.probability),
                )
                for w in (s.words or ())
            )
            if regions:
                words = _clamp_to_speech(words, regions)
            start = words[0].start if words else float(s.start)
            end = words[-1].end if words else float(s.end)
            segment = Segment(
                round(start, 3), round(end, 3), s.text.strip(), None, words, math.exp(s.avg_logprob)
            )
            segments.extend(_split_at_pauses(segment))
        return Transcript(segments, audio.duration, info.language)

    def transcribe_stereo(
        self, audio: Audio, speakers: tuple[str, str] = ("customer", "agent")
    ) -> Transcript:
        """A two-channel call: each channel on its own, merged in time order by speaker."""
        return stereo_transcript(self, audio, speakers)


def __getattr__(name: str) -> object:
    """`speech.asr.VoskRecognizer` without importing Vosk unless it is asked for."""
    if name in ("VoskRecognizer", "VoskUnavailable"):
        from speech import vosk_asr

        return getattr(vosk_asr, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
