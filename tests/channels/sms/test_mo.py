"""MO decoding, reassembly and the idempotency key, fed as SMPP bodies."""

from __future__ import annotations

import time
from pathlib import Path

from channels.sms.mo import DedupeWindow, PartSpool, Reassembler, decode_text
from channels.sms.pdu import ShortMessage
from channels.sms.udh import concat_header


def part(ref: int, total: int, seq: int, text: str, source: str = "15551234567") -> ShortMessage:
    return ShortMessage(
        source,
        "1000",
        concat_header(ref, total, seq) + text.encode("utf-16-be"),
        source_addr_ton=1,
        esm_class=0x40,
        data_coding=8,
    )


def test_decodes_each_data_coding() -> None:
    assert decode_text(b"\x1b\x65 5", 0)[0] == "€ 5"
    assert decode_text("café".encode("latin-1"), 3)[0] == "café"
    assert decode_text("Привет 🙂".encode("utf-16-be"), 8)[0] == "Привет 🙂"
    text, problems = decode_text(b"\xe9t\xe9", 0)
    assert text == "été" and problems


def test_international_ton_gets_a_plus() -> None:
    mo = Reassembler(PartSpool()).feed(ShortMessage("447700900123", "1000", b"hi", 1))
    assert mo is not None and mo.source == "+447700900123"


def test_parts_in_any_order_reassemble(tmp_path: Path) -> None:
    r = Reassembler(PartSpool(tmp_path))
    assert r.feed(part(5, 3, 3, "three")) is None
    assert r.feed(part(5, 3, 1, "one ")) is None
    mo = r.feed(part(5, 3, 2, "two "))
    assert mo is not None
    assert mo.text == "one two three" and mo.parts == 3
    # the spooled parts stay on disk until the commit says so
    assert any(tmp_path.iterdir())
    r.finished(mo)
    assert not any(tmp_path.iterdir())


def test_spooled_parts_survive_a_restart(tmp_path: Path) -> None:
    assert Reassembler(PartSpool(tmp_path)).feed(part(9, 2, 1, "before ")) is None
    mo = Reassembler(PartSpool(tmp_path)).feed(part(9, 2, 2, "after"))
    assert mo is not None and mo.text == "before after"


def test_same_ref_from_two_senders_does_not_mix() -> None:
    r = Reassembler(PartSpool())
    assert r.feed(part(1, 2, 1, "A1", source="111")) is None
    assert r.feed(part(1, 2, 2, "B2", source="222")) is None
    mo = r.feed(part(1, 2, 2, "A2", source="111"))
    assert mo is not None and mo.text == "A1A2"


def test_redelivery_keeps_its_source_id_and_a_later_repeat_does_not() -> None:
    now = [1000.0]
    window = DedupeWindow(600, clock=lambda: now[0])
    r = Reassembler(PartSpool())
    yes = ShortMessage("15551234567", "1000", b"Yes", 1)
    first = window.source_id(r.feed(yes))  # type: ignore[arg-type]
    now[0] += 590  # a redelivery, even across a window boundary
    assert window.source_id(r.feed(yes)) == first  # type: ignore[arg-type]
    now[0] += 3600  # the customer says "Yes" again an hour later
    assert window.source_id(r.feed(yes)) != first  # type: ignore[arg-type]


def test_an_smsc_message_id_wins() -> None:
    mo = Reassembler(PartSpool()).feed(
        ShortMessage("1555", "1000", b"hi", tlvs={0x001E: b"SMSC-77\0"})
    )
    assert mo is not None
    assert DedupeWindow().source_id(mo) == "smsc:SMSC-77"


def test_journal_keeps_first_seen_across_a_restart(tmp_path: Path) -> None:
    now = [1199.0]  # just before a window boundary (600 s windows)
    journal = tmp_path / "mo-seen.journal"
    yes = ShortMessage("15551234567", "1000", b"Yes", 1)
    mo = Reassembler(PartSpool()).feed(yes)
    assert mo is not None
    before = DedupeWindow(600, clock=lambda: now[0], journal=journal).source_id(mo)
    now[0] = 1203.0  # the process died; the SMSC redelivers after the boundary
    after = DedupeWindow(600, clock=lambda: now[0], journal=journal).source_id(mo)
    assert after == before
    now[0] = 1199.0 + 601  # an hour-later repeat is still a new message
    assert DedupeWindow(600, clock=lambda: now[0], journal=journal).source_id(mo) != before


def test_stale_parts_expire(tmp_path: Path) -> None:
    spool = PartSpool(tmp_path, max_age_seconds=60)
    Reassembler(spool).feed(part(3, 2, 1, "lonely"))
    assert spool.expire(now=time.time() + 30) == 0
    assert spool.expire(now=time.time() + 120) == 1
    assert not any(p.is_dir() for p in tmp_path.iterdir())
