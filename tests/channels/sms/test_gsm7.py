"""GSM 03.38 alphabet (TS 23.038 §6.2.1): what a handset will show is what we sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.sms import gsm7

GSM_CHARS = st.sampled_from(sorted({*gsm7.BASIC} - {"\x1b"} | set(gsm7.EXTENSION)))


def test_basic_table_positions_match_the_standard() -> None:
    assert gsm7.encode("@") == b"\x00"
    assert gsm7.encode("£$") == b"\x01\x02"
    assert gsm7.encode("A") == b"\x41"
    assert gsm7.encode("é") == b"\x05"
    assert gsm7.encode("à") == b"\x7f"
    assert gsm7.encode("¤") == b"\x24"  # not "$": a classic trap


def test_extension_characters_cost_two_septets() -> None:
    assert gsm7.encode("€") == b"\x1b\x65"
    assert gsm7.encode("[~]") == b"\x1b\x3c\x1b\x3d\x1b\x3e"
    assert gsm7.septet_length("a€{") == 5


def test_characters_outside_the_alphabet_are_refused() -> None:
    assert not gsm7.is_gsm7("ж")
    with pytest.raises(gsm7.NotGsm7):
        gsm7.encode("smile 🙂")


def test_unknown_escape_falls_back_to_the_basic_character() -> None:
    assert gsm7.decode(b"\x1b\x41") == "A"


@given(st.lists(GSM_CHARS, max_size=300).map("".join))
def test_encode_decode_round_trip(text: str) -> None:
    assert gsm7.decode(gsm7.encode(text)) == text


def test_packing_matches_the_spec_example() -> None:
    # TS 23.038 §6.1.2.1.1 worked example: "hellohello" packs to E8329BFD4697D9EC37.
    assert gsm7.pack(gsm7.encode("hellohello")).hex().upper() == "E8329BFD4697D9EC37"


@given(st.lists(GSM_CHARS, min_size=1, max_size=200).map("".join), st.integers(0, 6))
def test_pack_unpack_round_trip_with_fill_bits(text: str, fill: int) -> None:
    septets = gsm7.encode(text)
    assert gsm7.unpack(gsm7.pack(septets, fill), len(septets), fill) == septets
