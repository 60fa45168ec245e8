"""Which parts of a recording's audio are silenced for what the text redaction took out."""

from __future__ import annotations

from hub.transcription.audio_redaction import BRIDGE_MS, bridge_gaps


def test_a_number_split_by_a_pause_is_silenced_across_the_pause() -> None:
    # "two one two, five five five" | "zero one four two": two segments, two [PHONE]s
    spans = [(0, 26_180, 27_660), (0, 24_330, 25_100)]
    assert bridge_gaps(spans, words=[(0, 23_840, 24_300)]) == [(0, 24_330, 27_660)]


def test_a_gap_with_a_kept_word_or_too_long_stays() -> None:
    spans = [(0, 1_000, 2_000), (0, 2_900, 3_500)]
    assert bridge_gaps(spans, words=[(0, 2_300, 2_600)]) == sorted(spans)  # "and then"
    far = [(0, 1_000, 2_000), (0, 2_001 + BRIDGE_MS, 4_000 + BRIDGE_MS)]
    assert bridge_gaps(far, words=[]) == far


def test_spans_on_the_other_channel_are_never_joined() -> None:
    spans = [(0, 1_000, 2_000), (1, 2_500, 3_000)]
    assert bridge_gaps(spans, words=[(0, 2_100, 2_400)]) == spans
    assert bridge_gaps([(0, 1_000, 2_000), (1, 2_100, 2_400), (0, 2_500, 3_000)], []) == [
        (0, 1_000, 3_000),
        (1, 2_100, 2_400),
    ]
