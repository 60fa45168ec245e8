"""Console SSE fan-out: N concurrent tab streams receive one published event.

Starts a real hub process (seeded SQLite in a temp dir, uvicorn), opens N SSE streams as
one agent (raw asyncio HTTP clients, so the client side stays cheap), then triggers events
through real HTTP actions and measures, per subscriber, the time from sending the action to
the event's data line arriving:

- ``supervisor-message``: a supervisor messages the agent; every tab renders a pop-up
  (no database work per tab);
- ``presence``: a supervisor forces the agent not-ready; every tab opens its own DB session
  and re-renders the presence partial (the heavier, realistic path).

The same rounds with 1 subscriber run first, as the in-run baseline. Prints one JSON line
per figure, plus the hub's RSS before and with the streams open. Target: p95 <= 100 ms for
500 subscribers.

    .venv/bin/python bench/console.py [--subscribers 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psutil

from hub.services import GC_THRESHOLDS
from tests.e2e.hub_process import hub_server


def emit(**figure: object) -> None:
    print(json.dumps(figure), flush=True)


def login(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": f"{username}-pass",
            "_csrf_token": client.cookies.get("csrftoken", ""),
        },
    )
    if response.status_code != 303:
        raise RuntimeError(f"login as {username} failed: {response.status_code}")
    return client


class Subscriber:
    """One tab's stream over a raw socket; records when a data line holds the marker."""

    def __init__(self, host: str, port: int, cookie: str) -> None:
        self.host, self.port, self.cookie = host, port, cookie
        self.ready = asyncio.Event()
        self.marker: bytes | None = None
        self.seen: asyncio.Event = asyncio.Event()
        self.seen_at = 0.0
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None

    def expect(self, marker: str) -> None:
        self.marker = marker.encode()
        self.seen = asyncio.Event()

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        self.writer = writer
        writer.write(
            (
                "GET /events?view=console HTTP/1.1\r\n"
                f"Host: {self.host}:{self.port}\r\n"
                "Accept: text/event-stream\r\n"
                f"Cookie: {self.cookie}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream refused: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"event: presence"):
                self.ready.set()  # the sync burst ends with the presence partial
            if self.marker is not None and self.marker in line and not self.seen.is_set():
                self.seen_at = time.perf_counter()
                self.seen.set()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.task is not None:
            self.task.cancel()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


_REASONS = itertools.cycle(["break", "meeting"])  # each round must change the presence


async def measure(
    base: str,
    subscribers: int,
    rounds: int,
    agent_cookie: str,
    sam: httpx.Client,
    agent_id: int,
    hub: psutil.Process,
) -> tuple[dict[str, list[float]], dict[str, list[float]], int]:
    """Latencies per event kind, and the hub's RSS while the streams are open."""
    parts = urlsplit(base)
    subs = [
        Subscriber(parts.hostname or "", parts.port or 80, agent_cookie) for _ in range(subscribers)
    ]
    for batch_start in range(0, subscribers, 50):  # connect in batches, like tabs opening
        batch = subs[batch_start : batch_start + 50]
        for sub in batch:
            sub.task = asyncio.create_task(sub.run())
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in batch)), 120)
    # The client's own collector must not stall the measurement (500 parsers in one
    # process): the same settings the hub uses for itself.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    csrf = {"x-csrftoken": sam.cookies.get("csrftoken", "")}
    results: dict[str, list[float]] = {"supervisor-message": [], "presence": []}
    cpu: dict[str, list[float]] = {kind: [] for kind in results}
    rss = 0
    try:
        for _round in range(rounds):
            for kind in results:
                marker = f"m{uuid.uuid4().hex[:12]}"
                reason = next(_REASONS) if kind == "presence" else ""
                if kind == "presence":
                    for sub in subs:
                        sub.expect(f"({reason})")
                else:
                    for sub in subs:
                        sub.expect(marker)
                hub_cpu = hub.cpu_times()
                start = time.perf_counter()
                if kind == "presence":
                    response = await asyncio.to_thread(
                        sam.post,
                        f"/supervisor/agents/{agent_id}/not-ready",
                        data={"reason": reason},
                        headers=csrf,
                    )
                else:
                    response = await asyncio.to_thread(
                        sam.post,
                        f"/supervisor/agents/{agent_id}/message",
                        data={"text": f"bench {marker}"},
                        headers=csrf,
                    )
                response.raise_for_status()
                try:
                    await asyncio.wait_for(asyncio.gather(*(s.seen.wait() for s in subs)), 60)
                except TimeoutError:
                    raise RuntimeError(f"{kind}: not every stream got the event") from None
                results[kind].extend((s.seen_at - start) * 1000 for s in subs)
                after = hub.cpu_times()
                cpu[kind].append((after.user + after.system - hub_cpu.user - hub_cpu.system) * 1000)
                await asyncio.sleep(0.3)
        rss = hub.memory_info().rss
    finally:
        for sub in subs:
            sub.close()
        await asyncio.gather(*(s.task for s in subs if s.task), return_exceptions=True)
    return results, cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        hub_server(Path(tmp) / "var", HUB_SSE_HEARTBEAT_SECONDS="15") as (base, process),
    ):
        hub = psutil.Process(process.pid)
        alice = login(base, "alice")
        sam = login(base, "sam")
        agent_id = int(
            next(
                line.split("/")[3]
                for line in sam.get("/supervisor").text.split('hx-get="')
                if line.startswith("/supervisor/agents/")
            )
        )
        cookie = "; ".join(f"{k}={v}" for k, v in alice.cookies.items())
        rss_idle = hub.memory_info().rss
        emit(
            bench="console.sse",
            figure="hub_rss_idle_mb",
            value=round(rss_idle / 2**20, 1),
            machine=f"{platform.machine()} {psutil.cpu_count()} cpu",
        )
        for count in (1, args.subscribers):
            results, cpu, rss = asyncio.run(
                measure(base, count, args.rounds, cookie, sam, agent_id, hub)
            )
            for kind, values in results.items():
                emit(
                    bench="console.sse",
                    event=kind,
                    subscribers=count,
                    samples=len(values),
                    p50_ms=round(statistics.median(values), 1),
                    p95_ms=round(percentile(values, 95), 1),
                    max_ms=round(max(values), 1),
                    hub_cpu_ms_per_event=round(statistics.median(cpu[kind]), 1),
                    target_p95_ms=100,
                    load_avg_1m=round(os.getloadavg()[0], 1),
                )
            emit(
                bench="console.sse",
                figure="hub_rss_with_streams_mb",
                subscribers=count,
                value=round(rss / 2**20, 1),
                per_stream_kb=round((rss - rss_idle) / 1024 / count, 1),
            )


if __name__ == "__main__":
    main()
