"""Session upkeep: a dead link is noticed by enquire_link and the client binds again."""

from __future__ import annotations

import asyncio
import contextlib

from channels.sms.pdu import Command, PduReader, ShortMessage, Status, response
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
