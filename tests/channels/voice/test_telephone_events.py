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
    return "".join(receiver.on_packet(ts, m, p) for ts, m, p in packets)


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
    assert TelephoneEventReceiver().on_packet(1, True, b"\x01") == ""


def press(digit: str, timestamp: int, ends: int = 3) -> list[tuple[int, bool, bytes]]:
    """One key as a sender sends it: a marker packet, two more, then ``ends`` end packets."""
    packets = [(timestamp, True, encode_event(digit, False, 160))]
    packets += [(timestamp, False, encode_event(digit, False, d)) for d in (320, 480)]
    return packets + [(timestamp, False, encode_event(digit, True, 640))] * ends


def test_a_key_whose_end_packets_were_lost_counts_once_the_next_key_begins() -> None:
    """CI: SIPp, starved, began its next key's pcap before the last one had sent its end
    packets, and the IVR heard 12456 for 123456."""
    receiver = TelephoneEventReceiver()
    assert feed(receiver, press("2", 800)) == "2"
    assert feed(receiver, press("3", 1600, ends=0)) == ""  # nothing ends it yet
    assert receiver.on_packet(2400, True, encode_event("4", False, 160)) == "3"
    assert feed(receiver, press("4", 2400)[1:]) == "4"


def test_a_late_packet_of_a_reported_key_does_not_count_again() -> None:
    receiver = TelephoneEventReceiver()
    first, second = press("7", 800), press("8", 1600)
    # reordered: the first key's last end packet comes after the second key began
    packets = first[:-1] + second[:2] + first[-1:] + second[2:]
    assert feed(receiver, packets) == "78"
    # a straggler cut short (no end), then the next key: the straggler is not reported
    assert feed(receiver, [(800, False, encode_event("7", False, 480)), *press("9", 2400)]) == "9"
