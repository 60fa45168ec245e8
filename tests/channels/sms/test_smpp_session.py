"""Session upkeep: a dead link is noticed by enquire_link and the client binds again."""

from __future__ import annotations

import asyncio
import contextlib

from channels.sms.pdu import Command, Pdu, PduReader, ShortMessage, Status, response
from channels.sms.smpp_client import SmppClient, SmppConfig, backoff_delay


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 0.5, 60) for n in range(9)] == [
        0.5, 1, 2, 4, 8, 16, 32, 60, 60,
    ]  # fmt: skip
    assert backoff_delay(10_000, 0.5, 60) == 60


class HungSmsc:
    """An SMSC that accepts binds and then goes silent (a half-dead TCP link): it answers
    bind_transceiver and nothing else, the failure enquire_link exists to catch."""

    def __init__(self) -> None:
        self.binds = 0
        self.enquire_links = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = PduReader()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                for pdu in framer.feed(data):
                    if pdu.command_id == Command.BIND_TRANSCEIVER:
                        self.binds += 1
                        writer.write(response(pdu, Status.ROK, b"HUNG\0").encode())
                    elif pdu.command_id == Command.ENQUIRE_LINK:
                        self.enquire_links += 1  # and no enquire_link_resp
        writer.close()


async def test_unanswered_enquire_link_ends_the_session_and_the_client_rebinds() -> None:
    smsc = HungSmsc()
    port = await smsc.start()

    async def refuse(_m: ShortMessage) -> int:
        return Status.RX_T_APPN

    client = SmppClient(
        SmppConfig(
            "127.0.0.1",
            port,
            "hub",
            "pw",
            enquire_link_seconds=0.1,
            response_timeout=0.3,
            reconnect_min_seconds=0.05,
        ),
        refuse,
    )
    await client.start()
    try:
        for _ in range(100):
            if client.binds >= 2:
                break
            await asyncio.sleep(0.05)
        assert smsc.enquire_links >= 1
        assert client.binds >= 2 and smsc.binds >= 2
    finally:
        await client.stop()
        assert smsc.server is not None
        smsc.server.close()


async def test_bind_refused_is_retried_with_backoff_and_reported() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = PduReader()
        while data := await reader.read(4096):
            for pdu in framer.feed(data):
                writer.write(response(pdu, Status.RBINDFAIL).encode())
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def never(_m: ShortMessage) -> int:
        return Status.ROK

    client = SmppClient(
        SmppConfig("127.0.0.1", port, "hub", "wrong", reconnect_min_seconds=0.05), never
    )
    await client.start()
    try:
        for _ in range(100):
            if client.last_error:
                break
            await asyncio.sleep(0.05)
        assert client.binds == 0
        assert "bind_transceiver refused: 0x0000000d" in (client.last_error or "")
    finally:
        await client.stop()
        server.close()


class DataSmSmsc:
    """An SMSC that delivers one MO as data_sm (§4.7) after the bind, as some do, and
    records the data_sm_resp status."""

    def __init__(self, message: ShortMessage) -> None:
        self.message = message
        self.statuses: asyncio.Queue[int] = asyncio.Queue()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = PduReader()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                for pdu in framer.feed(data):
                    if pdu.command_id == Command.BIND_TRANSCEIVER:
                        writer.write(response(pdu, Status.ROK, b"DATASMSC\0").encode())
                        body = self.message.encode_data_sm_body()
                        writer.write(Pdu(Command.DATA_SM, 0, 7, body).encode())
                    elif pdu.command_id == Command.DATA_SM_RESP:
                        await self.statuses.put(pdu.command_status)
                    elif not pdu.is_response:
                        writer.write(response(pdu).encode())
        writer.close()


async def test_mo_delivered_as_data_sm_reaches_the_handler() -> None:
    text = "Сообщение через data_sm"
    smsc = DataSmSmsc(
        ShortMessage("447700900123", "1000", text.encode("utf-16-be"), 1, data_coding=8)
    )
    server = await asyncio.start_server(smsc.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    received: list[ShortMessage] = []

    async def handler(message: ShortMessage) -> int:
        received.append(message)
        return Status.ROK

    client = SmppClient(SmppConfig("127.0.0.1", port, "hub", "pw"), handler)
    await client.start()
    try:
        assert await asyncio.wait_for(smsc.statuses.get(), 10) == Status.ROK
        (message,) = received
        assert message.source_addr == "447700900123" and message.source_addr_ton == 1
        assert message.payload.decode("utf-16-be") == text
    finally:
        await client.stop()
        server.close()
