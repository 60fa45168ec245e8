"""RFC 4733 event reception: repeated digits count, redundant end packets do not."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from channels.voice.telephone_events import TelephoneEventReceiver, encode_event

PCAPS = Path("/usr/share/sip-tester")


def rtp_packets(pcap: Path) -> list[tuple[int, bool, bytes]]:
    """(timestamp, marker, payload) of each RTP packet in a classic pcap (Ethernet/IPv4)."""
    data = pcap.read_bytes()
    out = []
    offset = 24
    while offset + 16 <= len(data):
        incl = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        ihl = (frame[14] & 0x0F) * 4
        rtp = frame[14 + ihl + 8 :]
        out.append((struct.unpack_from("!I", rtp, 4)[0], bool(rtp[1] & 0x80), rtp[12:]))
    return out


def feed(receiver: TelephoneEventReceiver, packets: list[tuple[int, bool, bytes]]) -> str:
    return "".join(d for ts, m, p in packets if (d := receiver.on_packet(ts, m, p)))


def test_same_digit_twice_with_the_same_timestamp_is_two_digits() -> None:
    pcap = PCAPS / "dtmf_2833_1.pcap"
    if not pcap.exists():
        pytest.skip("sip-tester pcaps are not installed")
    packets = rtp_packets(pcap)
    assert len({ts for ts, _, _ in packets}) == 1  # one event, three redundant ends
    receiver = TelephoneEventReceiver()
    assert feed(receiver, packets) == "1"
    assert feed(receiver, packets) == "1"  # the replay: same timestamp, a new event


def test_redundant_end_packets_are_one_digit() -> None:
    receiver = TelephoneEventReceiver()
    packets = [(800, True, encode_event("5", False, 160))]
    packets += [(800, False, encode_event("5", False, d)) for d in (320, 480)]
    packets += [(800, False, encode_event("5", True, 640))] * 3
    packets += [(2400, True, encode_event("#", False, 160))]
    packets += [(2400, False, encode_event("#", True, 320))] * 3
    assert feed(receiver, packets) == "5#"


def test_short_payload_is_ignored() -> None:
    assert TelephoneEventReceiver().on_packet(1, True, b"\x01") is None
