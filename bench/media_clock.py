"""Media clock under a busy console: outbound frame spacing while SSE fans out to 500 tabs.

Starts a real hub process (seeded SQLite, uvicorn, voice on, ``HUB_IVR_ENABLED=0`` so every
call goes straight to its queue and hears music on hold), opens N SSE console streams as
one agent's tabs, and has SIPp place ``--calls`` calls to the demo DID. Every call's SDP
names one RTP receiver in a child process (``tests.channels.voice.rtp_receiver``), which
stamps each packet's arrival in the kernel, so neither SIPp nor this script's own load
shifts the times. Two windows of equal length follow, with every call up:

- ``quiet``: nothing else happens;
- ``busy``: a supervisor messages the agent again and again through the real HTTP action,
  and each message is rendered and written to every tab (the hub's real bus → SSE path)
  before the next is sent.

Per window it prints the inter-arrival of consecutive frames of each call: p50, p99, max,
and the fraction later than 40 ms (a gap over two frames: a jitter buffer of 40 ms runs
dry), plus the frames received against the frames due. It runs twice: media on its own
thread (the default) and ``HUB_VOICE_MEDIA_THREAD=0`` (the clock on the loop that serves
HTTP and SSE, as before), and prints the ratios.

    .venv/bin/python bench/media_clock.py [--calls 50] [--subscribers 500] [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
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
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.console import Subscriber, login, percentile  # noqa: E402
from tests.e2e.hub_process import free_sip_port, hub_server  # noqa: E402

SCENARIO = ROOT / "bench/sipp/listening_caller.xml"
DID = "+15550100"  # the demo voice inbox
LATE_MS = 40.0
MODES = {"media-thread": "1", "hub-loop": "0"}


def emit(**figure: object) -> None:
    print(json.dumps(figure), flush=True)


def spacing(streams: dict[str, list[list[float]]], start: float, end: float) -> dict[str, Any]:
    """Inter-arrival figures of every stream's consecutive frames inside [start, end]."""
    gaps: list[float] = []
    frames = 0
    for packets in streams.values():
        times = sorted(at for at, _seq in packets if start <= at <= end)
        frames += len(times)
        gaps.extend((b - a) * 1000 for a, b in itertools.pairwise(times))
    if not gaps:
        return {"frames": frames}
    return {
        "frames": frames,
        "frames_due": round(len(streams) * (end - start) / 0.020),
        "p50_ms": round(statistics.median(gaps), 2),
        "p99_ms": round(percentile(gaps, 99), 2),
        "max_ms": round(max(gaps), 1),
        "late_fraction": round(sum(g > LATE_MS for g in gaps) / len(gaps), 5),
    }


async def start_receiver() -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.channels.voice.rtp_receiver",
        "--idle",
        "3",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode()
    return proc, int(line.split()[1])


async def measure(
    base: str, sip_port: int, args: argparse.Namespace, cookie: str, sam: Any, agent_id: int
) -> dict[str, Any]:
    parts = urlsplit(base)
    receiver, tap_port = await start_receiver()
    subs = [
        Subscriber(parts.hostname or "", parts.port or 80, cookie) for _ in range(args.subscribers)
    ]
    for first in range(0, len(subs), 50):  # connect in batches, like tabs opening
        batch = subs[first : first + 50]
        for sub in batch:
            sub.task = asyncio.create_task(sub.run())
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in batch)), 120)
    setup_s = args.calls / args.rate + 3.0
    hold_ms = int((setup_s + 2 * args.window + 4.0) * 1000)
    workdir = Path(tempfile.mkdtemp(prefix="media-clock-sipp-"))
    sipp = await asyncio.create_subprocess_exec(
        "sipp",
        "-sf",
        str(SCENARIO),
        f"127.0.0.1:{sip_port}",
        "-s",
        DID,
        "-key",
        "tap_port",
        str(tap_port),
        "-i",
        "127.0.0.1",
        "-p",
        "0",
        "-m",
        str(args.calls),
        "-l",
        str(args.calls),
        "-r",
        f"{args.rate:g}",
        "-d",
        str(hold_ms),
        "-nostdin",
        "-trace_err",
        "-timeout",
        f"{int(hold_ms / 1000 + setup_s + 60)}s",
        "-timeout_error",
        cwd=workdir,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    csrf = {"x-csrftoken": sam.cookies.get("csrftoken", "")}
    fanouts: list[float] = []
    try:
        await asyncio.sleep(setup_s)
        quiet = (time.time(), time.time() + args.window)
        await asyncio.sleep(args.window)
        busy_start = time.time()
        while time.time() < busy_start + args.window:
            marker = f"m{uuid.uuid4().hex[:12]}"
            for sub in subs:
                sub.expect(marker)
            sent = time.perf_counter()
            response = await asyncio.to_thread(
                sam.post,
                f"/supervisor/agents/{agent_id}/message",
                data={"text": f"bench {marker}"},
                headers=csrf,
            )
            response.raise_for_status()
            await asyncio.wait_for(asyncio.gather(*(s.seen.wait() for s in subs)), 60)
            fanouts.append((max(s.seen_at for s in subs) - sent) * 1000)
        busy = (busy_start, time.time())
        sipp_rc = await sipp.wait()
    finally:
        if sipp.returncode is None:
            sipp.kill()
        for sub in subs:
            sub.close()
        await asyncio.gather(*(s.task for s in subs if s.task), return_exceptions=True)
    out, _ = await asyncio.wait_for(receiver.communicate(), 60)
    streams = json.loads(out.decode() or "{}")
    return {
        "sipp_rc": sipp_rc,
        "streams": len(streams),
        "events": len(fanouts),
        "fanout_ms_p50": round(statistics.median(fanouts), 1) if fanouts else None,
        "quiet": spacing(streams, *quiet),
        "busy": spacing(streams, *busy),
    }


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    sip_port = free_sip_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        hub_server(
            Path(tmp) / "var",
            HUB_IVR_ENABLED="0",
            HUB_VOICE_MEDIA_THREAD=MODES[mode],
            HUB_VOICE_BIND_PORT=str(sip_port),
            HUB_SSE_HEARTBEAT_SECONDS="15",
        ) as (base, process),
    ):
        hub = psutil.Process(process.pid)
        alice, sam = login(base, "alice"), login(base, "sam")
        agent_id = int(
            next(
                line.split("/")[3]
                for line in sam.get("/supervisor").text.split('hx-get="')
                if line.startswith("/supervisor/agents/")
            )
        )
        csrf = {"x-csrftoken": sam.cookies.get("csrftoken", "")}
        # not ready: the calls wait in the queue with music, no offer rings anything
        sam.post(f"/supervisor/agents/{agent_id}/not-ready", data={"reason": "break"}, headers=csrf)
        cookie = "; ".join(f"{k}={v}" for k, v in alice.cookies.items())
        cpu0 = hub.cpu_times()
        result = asyncio.run(measure(base, sip_port, args, cookie, sam, agent_id))
        cpu1 = hub.cpu_times()
        result["hub_cpu_s"] = round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 1)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="call set-up rate (calls/s)")
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per window")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    for mode in args.modes.split(","):
        load = os.getloadavg()[0]
        result = run_mode(mode, args)
        results[mode] = result
        for window in ("quiet", "busy"):
            emit(
                bench="media_clock",
                mode=mode,
                window=window,
                calls=args.calls,
                subscribers=args.subscribers if window == "busy" else 0,
                **result[window],
                streams=result["streams"],
                sipp_rc=result["sipp_rc"],
                **(
                    {"events": result["events"], "fanout_ms_p50": result["fanout_ms_p50"]}
                    if window == "busy"
                    else {}
                ),
                hub_cpu_s=result["hub_cpu_s"],
                load_avg_1m_before=round(load, 1),
                machine=f"{platform.machine()} {psutil.cpu_count()} cpu",
            )
    if {"media-thread", "hub-loop"} <= results.keys():
        old, new = results["hub-loop"]["busy"], results["media-thread"]["busy"]
        for key in ("p99_ms", "max_ms", "late_fraction"):
            if key in old and key in new:
                emit(
                    bench="media_clock",
                    figure=f"busy_{key}_ratio_hub_loop_to_media_thread",
                    hub_loop=old[key],
                    media_thread=new[key],
                    value=round(old[key] / new[key], 1) if new[key] else None,
                )


if __name__ == "__main__":
    main()
