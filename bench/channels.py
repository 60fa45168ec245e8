"""Channel benchmarks: one function per figure, ``main()`` runs them all and prints one JSON
line per figure.

    .venv/bin/python bench/channels.py [--only smpp_mo_ingest] [--messages 2000]

Figures (each area adds its own function and registers it in ``FIGURES``):

- ``smpp_mo_ingest`` (SMS): MO ``deliver_sm`` from a real SMSC (smpp34's server, in this
  process) through our SMPP client into ``IngestService.ingest`` on SQLite (the embedded
  default), each ``deliver_sm_resp`` sent after the commit. Messages/s from the first
  deliver_sm to the last resp, with ``peer_round_trip`` — the same SMSC and client with a
  handler that answers at once, no database — measured in the same run, so ``ratio`` says
  what the commit costs on this machine, and ``ingest_direct`` — the same messages straight
  into ``ingest``, no SMPP — so ``ratio_to_ingest_direct`` says what the adapter costs.
  500 customers, so most messages join an open conversation. Target ≥ 500 messages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import func, select

from channels.base import Address, AddressKind, ChannelKind, InboundMessage
from channels.sms.pdu import ShortMessage, Status
from channels.sms.runtime import first_inbox
from channels.sms.smpp_client import SmppClient, SmppConfig
from hub.db import migrate
from hub.events import make_backend, make_channels_plugin
from hub.seed import seed_demo
from hub.services import Services
from hub.settings import Settings
from models import Message


def emit(**figure: object) -> None:
    print(json.dumps({"bench": "channels", "host": platform.node(), **figure}), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- SMS: SMPP MO ingest ------------------------------------------------------------------


async def _drive_smsc(
    messages: int,
    in_flight: int,
    start_client: Callable[[int], Awaitable[Callable[[], Awaitable[None]]]],
) -> tuple[float, int]:
    """Deliver ``messages`` MOs from smpp34's SMSC to a bound client; (seconds, non-OK)."""
    import smpp34

    port = _free_port()
    server = smpp34.Server(host="127.0.0.1", port=port, system_id="BENCHSMSC")
    await server.start()
    stop_client = await start_client(port)
    try:
        esme = await asyncio.wait_for(server.next(), 10)
        assert isinstance(esme, smpp34.Esme)
        gate = asyncio.Semaphore(in_flight)
        refused = 0

        async def one(i: int) -> None:
            nonlocal refused
            async with gate:
                resp = await esme.deliver_sm(
                    "15550001000",
                    f"Order {i}: where is my parcel? Ref {i * 7919 % 100_003}".encode(),
                    source_addr=f"1555{2000000 + i % 500:07d}",  # 500 customers
                    source_addr_ton=1,
                )
                refused += resp.command_status != 0

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(messages)))
        return time.perf_counter() - started, refused
    finally:
        await stop_client()
        # smpp34 has been seen hanging at shutdown: bound it, and carry on either way.
        with contextlib.suppress(TimeoutError, smpp34.SmppError):
            await asyncio.wait_for(server.stop(), 5)


@contextlib.asynccontextmanager
async def _hub() -> AsyncIterator[tuple[Services, int]]:
    """A migrated, seeded SQLite hub in a temporary folder, and its SMS inbox id."""
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        url = f"sqlite+aiosqlite:///{var / 'hub.sqlite3'}"
        await asyncio.to_thread(migrate, url)
        plugin = make_channels_plugin(make_backend(""))
        await plugin._on_startup()
        services = Services.build(Settings(var_dir=var, database_url=url), plugin)
        services.settings.ensure_dirs()
        try:
            async with services.sessionmaker() as db:
                await seed_demo(db, password_for=lambda u: f"{u}-pass")
            yield services, await first_inbox(services, ChannelKind.SMS)
        finally:
            await services.close()
            await plugin._on_shutdown()


async def smpp_mo_ingest(messages: int = 2000, in_flight: int = 32) -> None:
    from channels.sms.smpp_channel import SmppChannel

    async def bare(_message: ShortMessage) -> int:
        return Status.ROK

    async def start_bare(port: int) -> Callable[[], Awaitable[None]]:
        client = SmppClient(SmppConfig("127.0.0.1", port, "bench", "pw", window=in_flight), bare)
        await client.start()
        return client.stop

    peer_seconds, _ = await _drive_smsc(messages, in_flight, start_bare)
    peer_rate = messages / peer_seconds

    async def ingest_direct(services: Services, inbox_id: int) -> float:
        """The same messages straight into IngestService.ingest: the hub's own cost."""
        gate = asyncio.Semaphore(in_flight)

        async def one(i: int) -> None:
            async with gate:
                await services.ingest.ingest(
                    InboundMessage(
                        inbox_id,
                        ChannelKind.SMS,
                        Address(AddressKind.PHONE, f"+1555{2000000 + i % 500:07d}"),
                        f"Order {i}: where is my parcel?",
                        source_id=f"direct-{i}",
                    )
                )

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(messages)))
        return messages / (time.perf_counter() - started)

    async with _hub() as (services, inbox_id):
        direct_rate = await ingest_direct(services, inbox_id)

    async with _hub() as (services, inbox_id):

        async def start_hub(port: int) -> Callable[[], Awaitable[None]]:
            channel = SmppChannel(
                services.ingest,
                inbox_id,
                SmppConfig("127.0.0.1", port, "bench", "pw", window=in_flight),
            )
            await channel.start()
            return channel.stop

        seconds, refused = await _drive_smsc(messages, in_flight, start_hub)
        async with services.sessionmaker() as db:
            stored = (await db.exec(select(func.count()).select_from(Message))).one()
    rate = messages / seconds
    emit(
        figure="smpp_mo_ingest",
        database="sqlite",
        messages=messages,
        in_flight=in_flight,
        stored=stored,
        refused=refused,
        seconds=round(seconds, 3),
        messages_per_second=round(rate, 1),
        peer_round_trip_per_second=round(peer_rate, 1),
        ratio=round(rate / peer_rate, 3),
        ingest_direct_per_second=round(direct_rate, 1),
        ratio_to_ingest_direct=round(rate / direct_rate, 3),
        target_messages_per_second=500,
        meets_target=rate >= 500 and stored == messages,
    )


FIGURES: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "smpp_mo_ingest": lambda a: smpp_mo_ingest(a.messages),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(FIGURES))
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    for name in args.only or FIGURES:
        asyncio.run(FIGURES[name](args))


if __name__ == "__main__":
    main()
