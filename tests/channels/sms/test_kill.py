"""Exactly once across a crash: the hub process is killed (SIGKILL) while the SMSC is
delivering; a restarted hub gets every MO that had no OK resp again, and each MO is stored
exactly once (committed-but-unacknowledged ones dedupe on their source_id)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import smpp34
from sqlmodel import col, select

from hub.services import Services
from models import Direction, Message
from tests.channels.sms.conftest import Smsc

ROOT = Path(__file__).resolve().parents[3]
MESSAGES = 120


async def start_hub(services: Services, smsc: Smsc, var: Path) -> subprocess.Popen[bytes]:
    """Start the hub process and wait until it says it is ready (imports are slow on a
    busy machine), so the SMSC's wait for the bind is only about the bind."""
    env = {
        **os.environ,
        "HUB_DATABASE_URL": services.settings.resolved_database_url,
        "HUB_VAR_DIR": str(var),
        "HUB_SMS_SMPP_HOST": "127.0.0.1",
        "HUB_SMS_SMPP_PORT": str(smsc.port),
        "HUB_SMS_SMPP_SYSTEM_ID": "hub",
        "HUB_SMS_SMPP_PASSWORD": "pw",
    }
    hub = subprocess.Popen(
        [sys.executable, "-m", "tests.channels.sms.hub_process"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
    )
    assert hub.stdout is not None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(hub.stdout.readline), 120)
        assert line.strip() == b"ready", line
    except BaseException:
        hub.kill()
        hub.wait(10)
        raise
    return hub


async def deliver(esme: smpp34.Esme, i: int, patience: float = 10.0) -> bool:
    """True when the hub answered OK (the SMSC then forgets the MO). smpp34 does not fail
    a pending deliver_sm when the link drops, so ``patience`` bounds the wait."""
    try:
        resp = await asyncio.wait_for(
            esme.deliver_sm(
                "15550001000",
                f"message number {i}".encode(),
                source_addr=f"1555{3000000 + i % 7:07d}",
                source_addr_ton=1,
            ),
            patience,
        )
    except (TimeoutError, smpp34.SmppError, RuntimeError, OSError):
        return False
    return resp.command_status == 0


async def test_killed_hub_loses_nothing_and_stores_once(
    services: Services, smsc: Smsc, tmp_path: Path
) -> None:
    hub = await start_hub(services, smsc, tmp_path / "var")
    try:
        esme = await smsc.esme()
        acked: set[int] = set()
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with gate:
                if await deliver(esme, i, patience=3.0):
                    acked.add(i)
                    if len(acked) == MESSAGES // 3:
                        os.kill(hub.pid, signal.SIGKILL)  # mid-stream, resps in flight

        await asyncio.gather(*(one(i) for i in range(MESSAGES)))
        hub.wait(10)
        assert 0 < len(acked) < MESSAGES

        # The SMSC redelivers what it has no OK resp for, to a restarted hub.
        hub = await start_hub(services, smsc, tmp_path / "var")
        esme = await smsc.esme()
        for i in sorted(set(range(MESSAGES)) - acked):
            assert await deliver(esme, i), f"message {i} refused after restart"
    finally:
        hub.kill()
        hub.wait(10)

    async with services.sessionmaker() as db:
        bodies = (
            await db.exec(
                select(Message.body)
                .where(Message.direction == Direction.INBOUND)
                .order_by(col(Message.id))
            )
        ).all()
    assert sorted(bodies) == sorted(f"message number {i}" for i in range(MESSAGES))
