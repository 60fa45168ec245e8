"""Our SMPP 3.4 codec against smpp34's independent (Rust) codec, byte for byte."""

from __future__ import annotations

import pytest
import smpp34

from channels.sms import pdu
from channels.sms.pdu import Command, PduReader, ShortMessage


def test_submit_sm_decodes_in_smpp34() -> None:
    message = ShortMessage(
        "12345",
        "15551234567",
        b"\x05\x00\x03\x07\x02\x01\x04\x16",
        source_addr_ton=3,
        dest_addr_ton=1,
        dest_addr_npi=1,
        esm_class=0x40,
        registered_delivery=1,
        data_coding=8,
        tlvs={0x0204: b"\x00\x2a"},
    )
    wire = pdu.submit_sm(77, message).encode()
    theirs = smpp34.decode(wire)
    assert isinstance(theirs, smpp34.SubmitSm)
    assert theirs.sequence_number == 77
    assert (theirs.source_addr, theirs.destination_addr) == ("12345", "15551234567")
    assert (theirs.source_addr_ton, theirs.dest_addr_ton, theirs.dest_addr_npi) == (3, 1, 1)
    assert (theirs.esm_class, theirs.data_coding, theirs.registered_delivery) == (0x40, 8, 1)
    assert theirs.short_message == message.short_message
    assert [(t.tag, t.value) for t in theirs.tlvs] == [(0x0204, b"\x00\x2a")]


def test_deliver_sm_from_smpp34_decodes_here() -> None:
    theirs = smpp34.DeliverSm(
        "447700900123",
        "1000",
        b"id:abc stat:DELIVRD",
        source_addr_ton=1,
        esm_class=0x04,
        data_coding=0,
        tlvs=[smpp34.Tlv(0x001E, b"abc\0"), smpp34.Tlv(0x0427, b"\x02")],
        sequence_number=9,
    )
    (ours,) = PduReader().feed(theirs.encode())
    assert (ours.command_id, ours.sequence) == (Command.DELIVER_SM, 9)
    message = ShortMessage.decode_body(ours.body)
    assert message.source_addr == "447700900123"
    assert message.source_addr_ton == 1
    assert message.esm_class == 0x04
    assert message.short_message == b"id:abc stat:DELIVRD"
    assert message.tlvs == {0x001E: b"abc\0", 0x0427: b"\x02"}


def test_reader_frames_split_and_coalesced_bytes() -> None:
    a = pdu.Pdu(Command.ENQUIRE_LINK, 0, 1).encode()
    b = pdu.submit_sm(2, ShortMessage("1", "2", b"x")).encode()
    reader = PduReader()
    stream = a + b
    got = []
    for i in range(0, len(stream), 5):
        got += reader.feed(stream[i : i + 5])
    assert [(p.command_id, p.sequence) for p in got] == [
        (Command.ENQUIRE_LINK, 1),
        (Command.SUBMIT_SM, 2),
    ]


def test_reader_rejects_an_impossible_length() -> None:
    with pytest.raises(pdu.PduError):
        PduReader().feed(b"\x00\x00\x00\x03" + b"\0" * 12)


def test_truncated_body_is_an_error() -> None:
    with pytest.raises(pdu.PduError):
        ShortMessage.decode_body(b"\0\x01\x01123")


def test_deliver_sm_resp_has_an_empty_message_id() -> None:
    request = pdu.Pdu(Command.DELIVER_SM, 0, 5, b"")
    resp = pdu.response(request, pdu.Status.RX_T_APPN)
    assert resp.encode() == bytes.fromhex("0000001180000005000000640000000500")


def test_bind_transceiver_layout() -> None:
    wire = pdu.bind_transceiver(1, "hub", "secret").encode()
    assert wire[4:8] == bytes.fromhex("00000009")
    assert wire[16:] == b"hub\0secret\0\0\x34\0\0\0"


def test_overlong_fields_are_refused() -> None:
    with pytest.raises(pdu.PduError):
        pdu.bind_transceiver(1, "x" * 16, "pw")
    with pytest.raises(pdu.PduError):
        ShortMessage("1", "2", b"x" * 255).encode_body()
