"""A call's conversation measures, from its labelled, timed segments.

- talk time and share per speaker, from the words' times (merged, so overlapping words of
  one speaker are not counted twice);
- silences: stretches of ``silence_seconds`` or more where nobody speaks, between the
  first and the last word of the call;
- overtalk: a turn that starts while another speaker is talking, and the seconds both talk;
- words per minute of talk, per speaker, and the longest monologue (one speaker's
  consecutive turns with nobody else starting in between);
- sentiment: VADER's compound score (-1 … 1) per segment, and the call's mean in its first
  and last thirds. VADER's lexicon is English only: other languages get no sentiment.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

SENTIMENT_LANGUAGES = ("en",)  # VADER's lexicon, shipped with vaderSentiment
Interval = tuple[int, int]  # milliseconds


@cache
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str, language: str = "en") -> float | None:
    """VADER's compound score of ``text`` (None for a language it does not cover)."""
    if language not in SENTIMENT_LANGUAGES or not text.strip():
        return None
    return round(float(_analyzer().polarity_scores(text)["compound"]), 3)


def _intervals(segment: dict[str, Any]) -> list[Interval]:
    words = segment.get("words") or []
    if words:
        return [(int(w["start_ms"]), max(int(w["end_ms"]), int(w["start_ms"]))) for w in words]
    return [(int(segment["start_ms"]), int(segment["end_ms"]))]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Overlapping or touching intervals joined, in order."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals: Sequence[Interval]) -> int:
    return sum(end - start for start, end in intervals)


def _overlap(a: Sequence[Interval], b: Sequence[Interval]) -> int:
    total, i, j = 0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0, hi - lo)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def _inside(ms: int, intervals: Sequence[Interval]) -> bool:
    return any(start < ms < end for start, end in intervals)


def conversation_metrics(
    segments: Sequence[dict[str, Any]],
    duration_seconds: float,
    *,
    silence_seconds: float = 3.0,
    language: str = "en",
) -> dict[str, Any]:
    """The measures of one call; ``segments`` carry speaker, start_ms, end_ms, text, words
    and (already set) sentiment."""
    ordered = sorted(segments, key=lambda s: (s["start_ms"], s["end_ms"]))
    by_speaker: dict[str, list[Interval]] = {}
    words: dict[str, int] = {}
    for seg in ordered:
        by_speaker.setdefault(seg["speaker"], []).extend(_intervals(seg))
        count = len(seg.get("words") or []) or len(seg["text"].split())
        words[seg["speaker"]] = words.get(seg["speaker"], 0) + count
    talk = {speaker: merge(spans) for speaker, spans in by_speaker.items()}
    talk_ms = {speaker: _length(spans) for speaker, spans in talk.items()}
    total_talk = sum(talk_ms.values())

    speech = merge(span for spans in talk.values() for span in spans)
    gap_ms = int(silence_seconds * 1000)
    silences = [
        {"start_ms": a_end, "end_ms": b_start}
        for (_, a_end), (b_start, _) in itertools.pairwise(speech)
        if b_start - a_end >= gap_ms
    ]

    overtalk_events = 0
    for seg in ordered:
        others = [s for sp, spans in talk.items() if sp != seg["speaker"] for s in spans]
        if _inside(int(seg["start_ms"]), others):
            overtalk_events += 1
    customer = talk.get("customer", [])
    hub_side = merge(s for sp, spans in talk.items() if sp != "customer" for s in spans)

    longest: dict[str, Any] = {"speaker": None, "seconds": 0.0, "start_ms": None}
    run_speaker, run_start, run_end = None, 0, 0
    for seg in [*ordered, None]:
        if seg is not None and seg["speaker"] == run_speaker:
            run_end = max(run_end, int(seg["end_ms"]))
            continue
        if run_speaker is not None and (run_end - run_start) / 1000 > longest["seconds"]:
            longest = {
                "speaker": run_speaker,
                "seconds": round((run_end - run_start) / 1000, 2),
                "start_ms": run_start,
            }
        if seg is not None:
            run_speaker, run_start, run_end = (
                seg["speaker"],
                int(seg["start_ms"]),
                int(seg["end_ms"]),
            )

    return {
        "duration_seconds": round(duration_seconds, 2),
        "talk_seconds": {sp: round(ms / 1000, 2) for sp, ms in sorted(talk_ms.items())},
        "talk_share": {
            sp: round(ms / total_talk, 3) if total_talk else 0.0
            for sp, ms in sorted(talk_ms.items())
        },
        "silence_threshold_seconds": silence_seconds,
        "silences": silences,
        "silence_count": len(silences),
        "silence_seconds": round(sum(s["end_ms"] - s["start_ms"] for s in silences) / 1000, 2),
        "longest_silence_seconds": round(
            max((s["end_ms"] - s["start_ms"] for s in silences), default=0) / 1000, 2
        ),
        "overtalk_count": overtalk_events,
        "overtalk_seconds": round(_overlap(customer, hub_side) / 1000, 2),
        "words_per_minute": {
            sp: round(words.get(sp, 0) / (ms / 60000), 1) if ms else 0.0
            for sp, ms in sorted(talk_ms.items())
        },
        "longest_monologue": longest,
        "sentiment": sentiment_trend(ordered, duration_seconds, language),
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def sentiment_trend(
    segments: Sequence[dict[str, Any]], duration_seconds: float, language: str
) -> dict[str, Any]:
    """Mean sentiment of the first and last third of the call, overall and per speaker."""
    if language not in SENTIMENT_LANGUAGES:
        return {"language": language, "covered": False, "languages": list(SENTIMENT_LANGUAGES)}
    third = duration_seconds * 1000 / 3

    def trend(rows: list[dict[str, Any]]) -> dict[str, float | None]:
        scored = [r for r in rows if r.get("sentiment") is not None]
        mid = [(r, (r["start_ms"] + r["end_ms"]) / 2) for r in scored]
        start = _mean([r["sentiment"] for r, m in mid if m <= third])
        end = _mean([r["sentiment"] for r, m in mid if m >= 2 * third])
        if start is None and scored:  # a short call: its first and last turns
            start = scored[0]["sentiment"]
        if end is None and scored:
            end = scored[-1]["sentiment"]
        return {
            "start": start,
            "end": end,
            "mean": _mean([r["sentiment"] for r in scored]),
        }

    result: dict[str, Any] = {"language": language, "covered": True, **trend(list(segments))}
    for speaker in sorted({s["speaker"] for s in segments}):
        result[speaker] = trend([s for s in segments if s["speaker"] == speaker])
    return result
