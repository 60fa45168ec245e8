"""Speech IVR bench: callers answer a menu by voice, through a real running hub.

``contacthub run`` (temp var dir, demo seed) answers the demo DID with a bench dialog,
``bench_speech_menu``: a menu ("Say general or billing.") whose answers lead to a short
reply ("You chose general.") and back to the menu, so one call answers again and again.
All its prompts are fixed, so the hub renders them at start (``speech.prompts.PromptCache``)
and every next prompt is cached.

Each caller is one SIPp call playing its own pcap: "General, please." or "Billing, please."
said by Piper (synthesized here beforehand, 8 kHz A-law RTP), at Poisson times of one answer
per 8 s on
average (exponential gaps; an answer that would start while the caller is still talking
starts 1 s after it), silence in between. Callers start at random within the first 8 s.

The hub's IVR trace (``interaction.data["ivr"]["voice"]``, ``channels.voice.ivr_port``)
records, on the prompt that follows each spoken turn, ``turn_to_prompt_ms``: from the
endpointer's end-of-speech decision to that prompt being handed to the media clock (a
cached prompt's first frame leaves on the next 20 ms tick). The bench reads the stored
traces after the calls and prints, per level of concurrent callers, the p50/p95/max of it,
Whisper's share (``asr_ms``: the wait for the recognition once the turn has ended; one begun
at the caller's last pause, ``HUB_IVR_EARLY_ASR_MS``, may be done by then), how many turns
were heard and recognized; then the largest level whose p95 is within the target (400 ms).

    .venv/bin/python bench/speech_ivr.py                       # 10,20,30 callers, 60 s each
    .venv/bin/python bench/speech_ivr.py --levels 20,30,40 --seconds 90
    .venv/bin/python bench/speech_ivr.py --levels 20 --hub-env HUB_IVR_EARLY_ASR_MS=0  # without
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from voice import children_cpu_s, emit  # noqa: E402
from voice_hub import DID, Hub, LagProbe, pct, sipp  # noqa: E402

RATE = 8000
ANSWERS = ("General, please.", "Billing, please.")
TARGET_MS = 400.0
# An answer that would start while the caller still talks waits this long after the last
# one ends: longer than the endpointer's end of turn (700 ms), so the two stay two turns.
GAP_AFTER_S = 1.0
DIALOG = """\
dialog: bench_speech_menu
description: The speech IVR bench (bench/speech_ivr.py). A menu answered by voice, again and again.
languages: [en]
start: main

nodes:
  main:
    type: menu
    prompt: Say general or billing.
    timeout_s: 60
    options:
      - digit: "1"
        phrases: [general]
        next: chose_general
      - digit: "2"
        phrases: [billing]
        next: chose_billing
    no_input:
      retries: 1
      prompts: [Please say general or billing.]
      fallback: goodbye
    no_match:
      retries: 1
      prompts: ["Sorry, I did not get that. Say general or billing."]
      fallback: main

  chose_general:
    type: say
    text: You chose general.
    barge_in: true
    next: main

  chose_billing:
    type: say
    text: You chose billing.
    barge_in: true
    next: main

  goodbye:
    type: hangup
    prompt: Goodbye.
"""


# --------------------------------------------------------------------------- the callers


def synthesize_answers() -> dict[str, np.ndarray]:
    """Each answer said by Piper, at 8 kHz."""
    from speech.audio import resample
    from speech.tts import Synthesizer

    synth = Synthesizer()
    out = {}
    for text in ANSWERS:
        said = synth.synthesize(text)
        out[text] = resample(said.samples, said.sample_rate, RATE).astype(np.int16)
    return out


def caller_audio(
    voices: dict[str, np.ndarray], seconds: float, mean_gap: float, rng: random.Random
) -> tuple[np.ndarray, int]:
    """A caller's side of the call: answers at Poisson times, silence between.
    Returns the audio and the number of answers in it."""
    total = int(seconds * RATE)
    audio = np.zeros(total, np.int16)
    t = rng.uniform(2.0, 2.0 + mean_gap)  # the menu starts playing at the answer
    free_at = 0.0
    count = 0
    while True:
        start = max(t, free_at + GAP_AFTER_S)
        voice = voices[ANSWERS[count % len(ANSWERS)]]
        begin = int(start * RATE)
        if begin + len(voice) + RATE > total:
            break
        audio[begin : begin + len(voice)] = voice
        free_at = start + len(voice) / RATE
        count += 1
        t += rng.expovariate(1.0 / mean_gap)
    return audio, count


def write_pcap(path: Path, pcm: np.ndarray) -> None:
    from speech.g711 import alaw_encode
    from tests.e2e.test_voice_ivr import rtp_pcap

    rtp_pcap(path, alaw_encode(pcm))


# --------------------------------------------------------------------------- the hub


async def use_bench_dialog(url: str) -> None:
    """The bench dialog, published, answers the demo phone inbox."""
    from sqlmodel import select

    from hub.db import make_engine, make_sessionmaker
    from hub.dialogs import create_dialog
    from models import Inbox

    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        dialog = await create_dialog(db, DIALOG, "bench")
        if dialog.published_version_id is None:
            raise RuntimeError("the bench dialog did not publish")
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == "voice"))).one()
        inbox.dialog_id = dialog.id
        db.add(inbox)
        await db.commit()
    await engine.dispose()


class SpeechHub(Hub):
    def __init__(self, var: Path, env: dict[str, str]) -> None:
        from tests.e2e.hub_process import seed_database

        var.mkdir(parents=True)
        seed_database(var / "hub.sqlite3")
        asyncio.run(use_bench_dialog(f"sqlite+aiosqlite:///{var / 'hub.sqlite3'}"))
        super().__init__(var, {}, (40000, 42000), seeded=True, env=env)


async def wait_prompts_rendered(hub: Hub, within: float = 300.0) -> None:
    """The hub renders the published dialog's five prompts (under var/prompts) once its
    speech engines are loaded: wait for them, so no caller waits for the engines."""
    deadline = time.monotonic() + within
    prompts = hub.var / "prompts"
    while not prompts.is_dir() or sum(1 for p in prompts.rglob("*") if p.is_file()) < 6:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the hub's IVR prompts were not rendered ({hub.var}/run.log)")
        await asyncio.sleep(0.5)
    await asyncio.sleep(2.0)  # the last one is being written


# --------------------------------------------------------------------------- a level


async def level(
    hub: Hub,
    workdir: Path,
    callers: int,
    seconds: float,
    mean_gap: float,
    voices: dict[str, np.ndarray],
    rng: random.Random,
) -> dict[str, Any]:
    after = hub.last_interaction()
    sent = 0
    folders = []
    for index in range(callers):
        folder = workdir / f"level{callers}" / f"caller{index}"
        folder.mkdir(parents=True)
        (folder / "pcap").symlink_to("/usr/share/sip-tester")
        pcm, count = caller_audio(voices, seconds, mean_gap, rng)
        sent += count
        write_pcap(folder / "answers.pcap", pcm)
        folders.append(folder)
    probe = LagProbe(hub.base)
    probe.start()
    cpu0, sipp_cpu0, wall0 = hub.cpu_s(), children_cpu_s(), time.monotonic()

    async def one(index: int, folder: Path) -> int:
        await asyncio.sleep(rng.uniform(0, mean_gap))  # callers arrive over the first gap
        proc = await sipp(
            folder,
            "speech_caller.xml",
            hub.target,
            "-s",
            DID,
            "-key",
            "caller",
            f"+1212555{index:04d}",
            "-p",
            "0",
            "-mp",
            str(10000 + 20 * index),
            "-m",
            "1",
            "-d",
            str(int(seconds * 1000 + 500)),
            "-timeout",
            f"{int(seconds + 120)}s",
            "-timeout_error",
            log="caller",
        )
        return await proc.wait()

    codes = await asyncio.gather(*(one(i, f) for i, f in enumerate(folders)))
    lag = await probe.stop()
    hub_cpu, sipp_cpu = hub.cpu_s() - cpu0, children_cpu_s() - sipp_cpu0
    wall = time.monotonic() - wall0
    await hub.settle(after)
    await asyncio.sleep(1.0)  # the trace is stored once the dialog has ended
    rows = hub.query(
        "SELECT json_extract(data, '$.ivr.voice') FROM interaction WHERE id > ?"
        " AND channel = 'voice'",
        after,
    )
    waits: list[float] = []
    cached_waits = 0
    asr: list[float] = []
    chosen = early = 0
    for (raw,) in rows:
        voice = json.loads(raw) if raw else {}
        for prompt in voice.get("prompts", []):
            if "turn_to_prompt_ms" in prompt:
                waits.append(prompt["turn_to_prompt_ms"])
                cached_waits += bool(prompt.get("cached"))
        for rec in voice.get("recognitions", []):
            if "asr_ms" in rec:
                asr.append(rec["asr_ms"])
            chosen += rec.get("chosen") in ("general", "billing")
            early += bool(rec.get("early"))
    p95 = pct(waits, 0.95)
    return {
        "figure": "level",
        "callers": callers,
        "answers_per_caller_per_s": round(1 / mean_gap, 4),
        "seconds_per_caller": seconds,
        "answers_sent": sent,
        "turns_measured": len(waits),
        "next_prompt_cached": cached_waits,
        "recognized_as_said_word": chosen,
        "sipp_failed": sum(1 for c in codes if c != 0),
        "interactions": len(rows),
        "turn_to_prompt_ms_p50": pct(waits, 0.5),
        "turn_to_prompt_ms_p95": p95,
        "turn_to_prompt_ms_max": round(max(waits), 1) if waits else None,
        "asr_ms_p50": pct(asr, 0.5),
        "asr_ms_p95": pct(asr, 0.95),
        "recognitions_begun_at_a_pause": early,
        "hub_cpu_s": round(hub_cpu, 2),
        "sipp_cpu_s": round(sipp_cpu, 2),
        "wall_s": round(wall, 1),
        **lag,
        "holds": bool(waits) and p95 is not None and p95 <= TARGET_MS,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="10,20,30", help="concurrent callers to try")
    parser.add_argument("--seconds", type=float, default=60.0, help="each caller's call")
    parser.add_argument("--mean-gap", type=float, default=8.0, help="s between answers")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--all-levels", action="store_true", help="run every level, even after one fails"
    )
    parser.add_argument("--note", default="", help="machine conditions, for the record")
    parser.add_argument(
        "--hub-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the hub, e.g. HUB_IVR_EARLY_ASR_MS=0 (repeatable)",
    )
    args = parser.parse_args()
    hub_env = dict(item.split("=", 1) for item in args.hub_env)
    levels = [int(x) for x in args.levels.split(",")]
    rng = random.Random(args.seed)
    emit(
        figure="conditions",
        date=datetime.now().astimezone().isoformat(timespec="seconds"),
        cpus=os.cpu_count(),
        loadavg_1_5_15=[round(x, 2) for x in os.getloadavg()],
        note=args.note,
        levels=levels,
        seconds_per_caller=args.seconds,
        mean_gap_s=args.mean_gap,
        target_p95_ms=TARGET_MS,
        hub_env=hub_env,
    )
    voices = await asyncio.to_thread(synthesize_answers)
    best = 0
    with tempfile.TemporaryDirectory(prefix="speech-ivr-bench-") as tmp:
        workdir = Path(tempfile.mkdtemp(prefix="speech-ivr-bench-")) if args.keep else Path(tmp)
        if args.keep:
            emit(figure="workdir", path=str(workdir))
        hub = await asyncio.to_thread(SpeechHub, workdir / "hub", hub_env)
        try:
            await wait_prompts_rendered(hub)
            for callers in levels:
                result = await level(
                    hub, workdir, callers, args.seconds, args.mean_gap, voices, rng
                )
                emit(**result)
                if result["holds"]:
                    best = max(best, callers)
                elif not args.all_levels:
                    break
        finally:
            await asyncio.to_thread(hub.stop)
    emit(
        figure="speech_ivr_max_callers",
        value=best,
        unit="callers",
        target_p95_ms=TARGET_MS,
        target_callers=20,
    )
    emit(figure="conditions_end", loadavg_1_5_15=[round(x, 2) for x in os.getloadavg()])


if __name__ == "__main__":
    asyncio.run(main())
