"""Segmenting (TS 23.040 §9.2.3.24.1): what the customer's phone reassembles, and what the
console's segment counter shows before the agent presses send."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from channels.sms import segments, udh
from channels.sms.segments import Encoding, build_parts, describe, segment_count, split


def test_single_message_limits() -> None:
    assert segment_count("") == 0
    assert segment_count("a" * 160) == 1
    assert segment_count("a" * 161) == 2
    assert segment_count("ж" * 70) == 1
    assert segment_count("ж" * 71) == 2


def test_concatenated_limits() -> None:
    assert segment_count("a" * 306) == 2
    assert segment_count("a" * 307) == 3
    assert segment_count("ж" * 134) == 2
    assert segment_count("ж" * 135) == 3


def test_one_non_gsm_character_switches_the_whole_text_to_ucs2() -> None:
    info = describe("Hello Zoë, café ok? ✓")
    assert info.encoding is Encoding.UCS2
    assert info.non_gsm_chars == ("ë", "✓")
    assert describe("Hello café").encoding is Encoding.GSM7  # é is GSM-7


def test_extension_character_is_not_split_from_its_escape() -> None:
    text = "a" * 152 + "€" + "b" * 10
    parts = split(text)
    assert parts[0] == "a" * 152
    assert parts[1].startswith("€")


def test_emoji_surrogate_pair_is_not_split() -> None:
    text = "ж" * 66 + "🙂" + "ж" * 10
    parts = split(text)
    assert parts[0] == "ж" * 66
    assert parts[1].startswith("🙂")


def test_counter_reports_what_is_left() -> None:
    info = describe("a" * 170)
    assert (info.segments, info.per_segment, info.remaining) == (2, 153, 153 * 2 - 170)
    assert describe("€").units == 2


@given(st.text(min_size=1, max_size=1200))
def test_parts_fit_140_octets_and_reassemble(text: str) -> None:
    ref = 42
    parts = build_parts(text, ref)
    encoding = segments.choose_encoding(text)
    assert len(parts) == segment_count(text)
    pieces = []
    for seq, part in enumerate(parts, start=1):
        assert part.data_coding == encoding.data_coding
        data = part.short_message
        if len(parts) > 1:
            assert part.esm_class & udh.ESM_UDHI
            header, data = udh.split_udh(data)
            assert udh.parse_concat(header) == udh.Concat(ref, len(parts), seq)
        if encoding is Encoding.UCS2:
            assert len(part.short_message) <= 140
        else:  # unpacked septets: the SMSC packs 153 septets + UDH into 140 octets
            assert len(data) <= (153 if len(parts) > 1 else 160)
        pieces.append(data)
    joined = b"".join(pieces)
    if encoding is Encoding.UCS2:
        assert joined.decode("utf-16-be") == text
    else:
        from channels.sms import gsm7

        assert gsm7.decode(joined) == text
