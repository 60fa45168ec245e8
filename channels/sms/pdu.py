"""A sans-IO SMPP 3.4 codec for the PDUs an ESME transceiver needs.

Why our own: we must choose each ``deliver_sm_resp``'s command_status *after* our commit
(0 when stored, a temporary error so the SMSC redelivers when not), and await each
``submit_sm_resp``'s message_id. aiosmpplib sends ``ESME_ROK`` itself after its hook and
acknowledges concatenated parts before they are reassembled; smpp34's client acknowledges
deliver_sm in its Rust core. The smpp34 *server* is what the tests use as the SMSC.

Layouts: header §3.2, bind_transceiver §4.1.5, submit_sm §4.4.1, deliver_sm §4.6.1,
data_sm §4.7.1 (some SMSCs send MOs and receipts that way), TLVs §3.2.4 and §5.3.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

HEADER = struct.Struct(">IIII")
MAX_PDU = 64 * 1024  # far above any legal PDU; a larger length means a broken stream


class Command(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_TRANSMITTER = 0x00000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class Status(IntEnum):
    """The command_status values we send or act on (§5.1.3)."""

    ROK = 0x00000000
    RINVCMDLEN = 0x00000002
    RINVCMDID = 0x00000003
    RSYSERR = 0x00000008
    RBINDFAIL = 0x0000000D
    RTHROTTLED = 0x00000058
    RX_T_APPN = 0x00000064  # "ESME Receiver Temporary App Error": the SMSC retries
    RX_P_APPN = 0x00000065  # "ESME Receiver Permanent App Error": the SMSC drops it


class PduError(ValueError):
    """Bytes that are not a well-formed PDU."""


@dataclass(frozen=True, slots=True)
class Pdu:
    command_id: int
    command_status: int
    sequence: int
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)

    def encode(self) -> bytes:
        return HEADER.pack(HEADER.size + len(self.body), *self._head()) + self.body

    def _head(self) -> tuple[int, int, int]:
        return (self.command_id, self.command_status, self.sequence)


class PduReader:
    """Frames a byte stream into PDUs: ``feed(data)`` returns each complete PDU."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Pdu]:
        self._buffer += data
        out: list[Pdu] = []
        while len(self._buffer) >= HEADER.size:
            length, command_id, status, sequence = HEADER.unpack_from(self._buffer)
            if not HEADER.size <= length <= MAX_PDU:
                raise PduError(f"command_length {length} is out of range")
            if len(self._buffer) < length:
                break
            body = bytes(self._buffer[HEADER.size : length])
            del self._buffer[:length]
            out.append(Pdu(command_id, status, sequence, body))
        return out


def cstring(value: str, max_len: int) -> bytes:
    """A C-Octet String (§3.1) of at most ``max_len`` octets including its NUL."""
    raw = value.encode("latin-1")
    if len(raw) >= max_len:
        raise PduError(f"{value!r} is longer than {max_len - 1} octets")
    return raw + b"\0"


def _addressing(c: _Cursor) -> dict[str, Any]:
    """service_type and both addresses, the common head of submit_sm, deliver_sm and
    data_sm bodies (SMPP 3.4 §4.4.1, §4.6.1, §4.7.1)."""
    return {
        "service_type": c.cstring(),
        "source_addr_ton": c.u8(),
        "source_addr_npi": c.u8(),
        "source_addr": c.cstring(),
        "dest_addr_ton": c.u8(),
        "dest_addr_npi": c.u8(),
        "destination_addr": c.cstring(),
    }


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def cstring(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise PduError("C-Octet String without its NUL")
        value = self.data[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise PduError("PDU body is truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def octets(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise PduError("PDU body is truncated")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def tlvs(self) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        while self.pos < len(self.data):
            tag, length = struct.unpack(">HH", self.octets(4))
            out[tag] = self.octets(length)
        return out


def encode_tlvs(tlvs: dict[int, bytes]) -> bytes:
    return b"".join(struct.pack(">HH", tag, len(v)) + v for tag, v in tlvs.items())


def bind_transceiver(
    sequence: int, system_id: str, password: str, system_type: str = "", address_range: str = ""
) -> Pdu:
    body = (
        cstring(system_id, 16)
        + cstring(password, 9)
        + cstring(system_type, 13)
        + bytes((0x34, 0, 0))  # interface_version 3.4, addr_ton, addr_npi
        + cstring(address_range, 41)
    )
    return Pdu(Command.BIND_TRANSCEIVER, 0, sequence, body)


@dataclass(frozen=True, slots=True)
class ShortMessage:
    """The shared body of submit_sm and deliver_sm (§4.4.1, §4.6.1)."""

    source_addr: str
    destination_addr: str
    short_message: bytes = b""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    registered_delivery: int = 0
    data_coding: int = 0
    service_type: str = ""
    tlvs: dict[int, bytes] = field(default_factory=dict)

    def encode_body(self) -> bytes:
        if len(self.short_message) > 254:
            raise PduError("short_message is longer than 254 octets; use message_payload")
        return (
            cstring(self.service_type, 6)
            + bytes((self.source_addr_ton, self.source_addr_npi))
            + cstring(self.source_addr, 21)
            + bytes((self.dest_addr_ton, self.dest_addr_npi))
            + cstring(self.destination_addr, 21)
            + bytes((self.esm_class, self.protocol_id, self.priority_flag))
            + b"\0\0"  # schedule_delivery_time, validity_period: immediate, SMSC default
            + bytes((self.registered_delivery, 0, self.data_coding, 0, len(self.short_message)))
            + self.short_message
            + encode_tlvs(self.tlvs)
        )

    @classmethod
    def decode_body(cls, body: bytes) -> ShortMessage:
        c = _Cursor(body)
        addressing = _addressing(c)
        esm_class, protocol_id, priority = c.u8(), c.u8(), c.u8()
        c.cstring()  # schedule_delivery_time
        c.cstring()  # validity_period
        registered, _replace, data_coding, _default_id = c.u8(), c.u8(), c.u8(), c.u8()
        short_message = c.octets(c.u8())
        return cls(
            **addressing,
            short_message=short_message,
            esm_class=esm_class,
            protocol_id=protocol_id,
            priority_flag=priority,
            registered_delivery=registered,
            data_coding=data_coding,
            tlvs=c.tlvs(),
        )

    @classmethod
    def decode_data_sm(cls, body: bytes) -> ShortMessage:
        """data_sm (§4.7.1): no short_message; the text is the message_payload TLV."""
        c = _Cursor(body)
        addressing = _addressing(c)
        esm_class, registered, data_coding = c.u8(), c.u8(), c.u8()
        return cls(
            **addressing,
            esm_class=esm_class,
            registered_delivery=registered,
            data_coding=data_coding,
            tlvs=c.tlvs(),
        )

    def encode_data_sm_body(self) -> bytes:
        """The data_sm layout, short_message carried as message_payload (for tests/peers)."""
        tlvs = dict(self.tlvs)
        if self.short_message:
            tlvs[0x0424] = self.short_message
        return (
            cstring(self.service_type, 6)
            + bytes((self.source_addr_ton, self.source_addr_npi))
            + cstring(self.source_addr, 65)
            + bytes((self.dest_addr_ton, self.dest_addr_npi))
            + cstring(self.destination_addr, 65)
            + bytes((self.esm_class, self.registered_delivery, self.data_coding))
            + encode_tlvs(tlvs)
        )

    @property
    def payload(self) -> bytes:
        """short_message, or the message_payload TLV (0x0424, §5.3.2.32) when it is empty."""
        return self.short_message or self.tlvs.get(0x0424, b"")


def submit_sm(sequence: int, message: ShortMessage) -> Pdu:
    return Pdu(Command.SUBMIT_SM, 0, sequence, message.encode_body())


def response(request: Pdu, status: int = Status.ROK, body: bytes = b"") -> Pdu:
    """The response to ``request``; deliver_sm_resp's and data_sm_resp's body is an empty
    message_id (§4.6.2, §4.7.2)."""
    if request.command_id in (Command.DELIVER_SM, Command.DATA_SM) and not body:
        body = b"\0"
    return Pdu(request.command_id | 0x80000000, status, request.sequence, body)


def generic_nack(sequence: int, status: int) -> Pdu:
    return Pdu(Command.GENERIC_NACK, status, sequence)


def response_message_id(pdu: Pdu) -> str:
    """The message_id of a submit_sm_resp or the system_id of a bind resp."""
    if not pdu.body:
        return ""
    return _Cursor(pdu.body).cstring()
