"""The heavy part of transcription, in worker processes of lower OS priority.

The hub process runs the IVR's speech and every call's 20 ms media clock; a thread inside it
cannot be given a lower priority, and Whisper would take the cores from them. So a job's
handler hands the recording to a ``TranscriptionPool``: a process pool whose workers lower
their own priority when they start (``SCHED_IDLE`` where Linux offers it: they run only on
otherwise idle CPU time; and a higher nice value in any case), and whose size bounds how many
recordings are worked on at once. Each worker loads the Whisper model once and keeps it.

``analyse_recording`` is what a worker does with one recording: both channels transcribed
with word timings, the right channel's words labelled by who was on the line, one redaction
batch for the whole transcript, the redacted audio copy, and the metrics. It returns plain
data; the hub process stores it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.transcription.speakers import LegWindow, Voice, is_prompt, voice_at
from models.transcripts import Speaker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """What a worker needs to know about one recording (plain data: it is pickled)."""

    path: str  # the stereo WAV as recorded
    redacted_path: str  # where the redacted copy goes
    windows: list[LegWindow] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)  # the IVR's prompt texts
    margin_ms: int = 250
    silence_seconds: float = 3.0
    region: str = "US"


# ---------------------------------------------------------------------- in the worker


def lower_priority(nice: int, idle: bool) -> None:
    """Called in each worker as it starts: the scheduler prefers every other process."""
    if idle and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError as exc:  # not on this kernel: nice alone still lowers it
            log.warning("transcription worker: SCHED_IDLE refused: %s", exc)
    if nice > 0:
        os.nice(nice)


def priority() -> dict[str, Any]:
    """This process's nice value and scheduling policy (what the worker runs at)."""
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    return {
        "pid": os.getpid(),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "policy": policy,
        "idle": policy == getattr(os, "SCHED_IDLE", -1),
    }


_RECOGNIZER: Any = None


def _recognizer() -> Any:
    """The Whisper recognizer of this process, loaded on first use and kept."""
    global _RECOGNIZER
    if _RECOGNIZER is None:
        from speech.asr import WhisperRecognizer
        from speech.settings import SpeechSettings

        _RECOGNIZER = WhisperRecognizer(settings=SpeechSettings.from_env())
    return _RECOGNIZER


def _words(segment: Any) -> list[dict[str, Any]]:
    if segment.words:
        return [
            {"w": w.text, "start_ms": round(w.start * 1000), "end_ms": round(w.end * 1000)}
            for w in segment.words
            if w.text
        ]
    return [
        {
            "w": segment.text,
            "start_ms": round(segment.start * 1000),
            "end_ms": round(segment.end * 1000),
        }
    ]


def _segment(
    speaker: str, words: list[dict[str, Any]], voice: Voice | None = None
) -> dict[str, Any]:
    return {
        "speaker": speaker,
        "agent_id": voice.agent_id if voice else None,
        "agent_name": voice.name if voice else "",
        "start_ms": words[0]["start_ms"],
        "end_ms": max(w["end_ms"] for w in words),
        "text": " ".join(w["w"] for w in words),
        "words": words,
    }


def label_right_channel(
    segments: list[Any], windows: list[LegWindow], prompts: list[str]
) -> list[dict[str, Any]]:
    """The hub side's segments split where the person on the line changes, each labelled."""
    labelled: list[dict[str, Any]] = []
    for seg in segments:
        run: list[dict[str, Any]] = []
        run_voice: Voice | None = None
        for word in _words(seg):
            voice = voice_at((word["start_ms"] + word["end_ms"]) / 2000, windows)
            if run and voice != run_voice:
                labelled.append(_segment(run_voice.speaker, run, run_voice))  # type: ignore[union-attr]
                run = []
            run.append(word)
            run_voice = voice
        if run and run_voice is not None:
            labelled.append(_segment(run_voice.speaker, run, run_voice))
    for seg in labelled:  # a dialog prompt is the IVR's, whoever's leg was up
        if seg["speaker"] != Speaker.IVR and is_prompt(seg["text"], prompts):
            seg.update(speaker=str(Speaker.IVR), agent_id=None, agent_name="")
    return labelled


def redact_words(seg: dict[str, Any], spans: list[Any]) -> list[tuple[int, int]]:
    """Replace the words each span covers (char offsets into ``seg["text"]``) by one word,
    the span's placeholder, timed from its first word's start to its last word's end; those
    times are returned for the audio, so the pauses inside a spoken number go silent too."""
    placeholders: dict[int, dict[str, Any]] = {}
    kept: list[dict[str, Any]] = []
    offset = 0
    for word in seg["words"]:
        lo, hi = offset, offset + len(word["w"])
        offset = hi + 1
        number = next(
            (n for n, span in enumerate(spans) if span.start < hi and lo < span.end), None
        )
        if number is None:
            kept.append(word)
        elif number in placeholders:
            holder = placeholders[number]
            holder["end_ms"] = max(holder["end_ms"], word["end_ms"])
        else:
            placeholders[number] = holder = {**word, "w": f"[{spans[number].kind}]"}
            kept.append(holder)
    seg["words"] = kept
    return [(w["start_ms"], w["end_ms"]) for w in placeholders.values()]


def analyse_recording(request: Request) -> dict[str, Any]:
    """Transcribe, label, redact (text and audio) and measure one stereo recording."""
    from hub.qa.redaction import redact_batch
    from hub.transcription.audio_redaction import (
        CUSTOMER_CHANNEL,
        HUB_CHANNEL,
        bridge_gaps,
        silence_spans,
    )
    from hub.transcription.metrics import conversation_metrics, sentiment
    from speech.audio import read_wav, split_stereo

    audio = read_wav(request.path)
    left, right = split_stereo(audio)
    recognizer = _recognizer()
    segments: list[dict[str, Any]] = []
    if left.frames and left.samples.any():
        for seg in recognizer.transcribe(left, word_timestamps=True).segments:
            segments.append(_segment(str(Speaker.CUSTOMER), _words(seg)))
    if right.frames and right.samples.any():
        found = recognizer.transcribe(right, word_timestamps=True).segments
        segments.extend(label_right_channel(list(found), request.windows, request.prompts))
    segments.sort(key=lambda s: (s["start_ms"], s["end_ms"]))

    redacted = redact_batch(
        [s["text"] for s in segments],
        region=request.region,
        speakers=[s["speaker"] for s in segments],
    )
    mute: list[tuple[int, int, int]] = []
    kept: list[tuple[int, int, int]] = []  # the words left as said, as (channel, start, end)
    entities: dict[str, int] = {}
    for seg, result in zip(segments, redacted, strict=True):
        seg["original_text"] = seg["text"]
        seg["text"] = result.text
        channel = CUSTOMER_CHANNEL if seg["speaker"] == Speaker.CUSTOMER else HUB_CHANNEL
        said = {id(word) for word in seg["words"]}
        for start, end in redact_words(seg, result.spans):
            mute.append((channel, start, end))
        kept.extend((channel, w["start_ms"], w["end_ms"]) for w in seg["words"] if id(w) in said)
        for span in result.spans:
            entities[str(span.kind)] = entities.get(str(span.kind), 0) + 1
        seg["sentiment"] = sentiment(seg["text"])
    silenced = silence_spans(
        Path(request.path), Path(request.redacted_path), bridge_gaps(mute, kept), request.margin_ms
    )
    metrics = conversation_metrics(
        segments, audio.duration, silence_seconds=request.silence_seconds
    )
    metrics["redaction"] = {
        "entities": entities,
        "silenced": [{"channel": c, "start_ms": a, "end_ms": b} for c, a, b in silenced],
        "margin_ms": request.margin_ms,
    }
    return {"segments": segments, "metrics": metrics, "duration": audio.duration, "language": "en"}


# ---------------------------------------------------------------------- in the hub process


class TranscriptionPool:
    """``workers`` niced processes: at most that many recordings are worked on at once, the
    rest wait in the pool's queue (their jobs keep their leases meanwhile)."""

    def __init__(self, workers: int = 1, nice: int = 10, idle: bool = True) -> None:
        if workers < 1:
            raise ValueError("the transcription pool needs at least one worker")
        self.workers = workers
        self.nice = nice
        self.idle = idle
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),  # no copy of the hub's loop
                initializer=lower_priority,
                initargs=(self.nice, self.idle),
            )
        return self._executor

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` in a worker; a worker that died is replaced for the next call."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool(), fn, *args)
        except BrokenProcessPool:
            self._drop()
            raise

    async def analyse(self, request: Request) -> dict[str, Any]:
        return await self.call(analyse_recording, request)

    def _drop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            with contextlib.suppress(Exception):
                executor.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
