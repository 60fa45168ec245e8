"""Delivery receipts (SMPP 3.4 Appendix B, §5.3.2.12/35) and UDH parsing (TS 23.040)."""

from __future__ import annotations

import pytest

from channels.base import DeliveryStatus
from channels.sms import dlr, udh

KANNEL_STYLE = (
    b"id:0123456789 sub:001 dlvrd:001 submit date:2405011200 done date:2405011201 "
    b"stat:DELIVRD err:000 text:Hello world"
)


def test_receipt_text_fields() -> None:
    fields = dlr.parse_text(KANNEL_STYLE.decode())
    assert fields["id"] == "0123456789"
    assert fields["submit date"] == "2405011200"
    assert fields["done date"] == "2405011201"
    assert fields["stat"] == "DELIVRD"
    assert fields["text"] == "Hello world"


def test_receipt_from_text() -> None:
    receipt = dlr.parse(KANNEL_STYLE, {})
    assert receipt.message_id == "0123456789"
    assert receipt.status is DeliveryStatus.DELIVERED
    assert receipt.error is None


def test_receipt_tlvs_win_over_text() -> None:
    tlvs = {dlr.TAG_RECEIPTED_MESSAGE_ID: b"ab12\0", dlr.TAG_MESSAGE_STATE: bytes([5])}
    receipt = dlr.parse(b"id:other stat:DELIVRD err:034", tlvs)
    assert receipt.message_id == "ab12"
    assert receipt.status is DeliveryStatus.FAILED
    assert receipt.detail == "UNDELIV err:034"


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("ENROUTE", DeliveryStatus.SENT),
        ("ACCEPTD", DeliveryStatus.SENT),
        ("EXPIRED", DeliveryStatus.FAILED),
        ("REJECTD", DeliveryStatus.FAILED),
        ("UNKNOWN", None),
    ],
)
def test_receipt_states(stat: str, status: DeliveryStatus | None) -> None:
    assert dlr.parse(f"id:7 stat:{stat}".encode(), {}).status is status


def test_receipt_without_id_is_refused() -> None:
    with pytest.raises(dlr.NotAReceipt):
        dlr.parse(b"stat:DELIVRD", {})


def test_esm_class_receipt_bits() -> None:
    assert dlr.is_receipt(0x04, {})
    assert dlr.is_receipt(0x20, {})
    assert not dlr.is_receipt(0x40, {})  # UDHI only: a concatenated MO
    assert not dlr.is_receipt(0x00, {})


def test_concat_8bit_and_16bit() -> None:
    assert udh.parse_concat(bytes([5, 0, 3, 9, 3, 2])) == udh.Concat(9, 3, 2)
    assert udh.parse_concat(bytes([6, 8, 4, 0x12, 0x34, 2, 1])) == udh.Concat(0x1234, 2, 1)


def test_other_elements_are_skipped() -> None:
    # a port element (IEI 0x05) before the concat element
    header = bytes([11, 5, 4, 0x0B, 0x84, 0x23, 0xF0, 0, 3, 7, 2, 2])
    assert udh.parse_concat(header) == udh.Concat(7, 2, 2)


def test_truncated_udh_is_an_error() -> None:
    with pytest.raises(udh.UdhError):
        udh.split_udh(bytes([9, 0, 3]))
    with pytest.raises(udh.UdhError):
        udh.parse_concat(bytes([5, 0, 9, 1]))


def test_part_number_out_of_range_is_ignored() -> None:
    assert udh.parse_concat(bytes([5, 0, 3, 1, 2, 3])) is None
