"""Speech benchmarks: transcription speed, utterance latency, TTS first frame, memory.

Prints one JSON line per figure. Targets (issue 3):

- transcription of a 60 s recording: the pipeline (`WhisperRecognizer.transcribe`) against a
  raw `WhisperModel.transcribe` with the same options in the same run; ratio >= 0.9;
- utterance latency, end of speech to transcript, for a 2 s utterance: p95 <= 300 ms;
- TTS time to the first 20 ms telephony frame: cold <= 250 ms, cached <= 5 ms;
- process RSS with both models (Whisper, Piper) loaded.

Runs alternate pipeline and raw and keep the best wall time of each, so a busy machine hurts
both alike. The recordings are Piper speech, so nothing needs to be downloaded.

    .venv/bin/python bench/speech.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speech.asr import WhisperRecognizer
from speech.audio import Audio, pcm_to_float, resample
from speech.dtmf import DtmfDetector, generate_dtmf
from speech.g711 import ulaw_decode, ulaw_encode
from speech.pool import RecognizerPool
from speech.tts import Synthesizer
from speech.vad import EndpointConfig, Endpointer
from speech.wer import word_error_rate

PROCESS = psutil.Process()
SCRIPT = [
    "Thank you for calling Contact Hub, my name is Sarah, how can I help you today?",
    "Hi Sarah, I ordered a pair of headphones last week and they have not arrived yet.",
    "I am sorry to hear that. Can you give me your order number, please?",
    "Sure, it is four four seven one nine zero two.",
    "Thank you. I can see the order was shipped on Monday from our warehouse in Denver.",
    "The tracking shows a delay at the regional depot because of the storm.",
    "Okay, so when do you think it will get here?",
    "It should arrive by Thursday. If it does not, I will send a replacement for free.",
    "That sounds fair. Can I also change the delivery address to my office?",
    "Of course. Please tell me the new address, including the zip code.",
    "It is twelve Market Street, suite four hundred, San Francisco, nine four one zero five.",
    "Got it. I have updated the address, and you will receive a confirmation email shortly.",
    "Is there anything else I can help you with today?",
    "No, that is all. Thank you for your help.",
    "You are welcome. Have a great day, and thank you for calling.",
]
IVR = [
    ("Press one for sales, or two for support.", "Press one for sales, or two for support."),
    ("Your account number is <digits>4 4 7 1 9 0 2</digits>.", "Your account number is 4471902."),
    ("Your current balance is 120 dollars.", "Your current balance is 120 dollars."),
    ("Please hold while I transfer you to Sarah Johnson.", ""),
    ("Hello Michael Brown, your appointment is confirmed for Tuesday.", ""),
    ("The total amount due is 45 dollars.", ""),
    ("Please say or enter your five digit zip code.", ""),
    ("Your confirmation code is <digits>8 3 5 2</digits>.", "Your confirmation code is 8352."),
    ("To speak with an agent, press zero.", ""),
    ("Thank you for calling. Goodbye.", ""),
]


def emit(figure: str, value: float, unit: str, **extra: object) -> None:
    record = {"bench": "speech", "figure": figure, "value": round(value, 3), "unit": unit}
    print(json.dumps({**record, **extra}), flush=True)


def rss_mb() -> float:
    return PROCESS.memory_info().rss / 2**20


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def recording(synth: Synthesizer, seconds: float) -> Audio:
    """A `seconds`-long two-voice-style conversation at 16 kHz (sentences with pauses)."""
    parts: list[np.ndarray] = []
    total = 0
    rate = 16000
    while total < seconds * rate:
        for line in SCRIPT:
            audio = synth.synthesize(line)
            pcm = resample(audio.samples, audio.sample_rate, rate)
            parts += [pcm, np.zeros(int(0.6 * rate), np.int16)]
            total += len(pcm) + int(0.6 * rate)
    return Audio(np.concatenate(parts)[: int(seconds * rate)], rate)


def bench_transcription(rec: WhisperRecognizer, audio: Audio, runs: int) -> None:
    model = rec.model
    samples = pcm_to_float(audio.samples)
    options = {
        "beam_size": rec.beam_size,
        "word_timestamps": True,
        "vad_filter": True,
        "condition_on_previous_text": False,
    }

    def timed(work) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        return time.perf_counter() - wall, time.process_time() - cpu

    def raw() -> None:
        segments, _ = model.transcribe(samples, **options)
        list(segments)

    def pipeline() -> None:
        rec.transcribe(audio, word_timestamps=True)

    raw()  # warm-up: first call pays for lazy initialisation
    times: dict[str, list[tuple[float, float]]] = {"raw": [], "pipe": []}
    for i in range(runs):
        order = [("pipe", pipeline), ("raw", raw)] if i % 2 else [("raw", raw), ("pipe", pipeline)]
        for name, work in order:
            times[name].append(timed(work))
    pipe_wall, raw_wall = min(t[0] for t in times["pipe"]), min(t[0] for t in times["raw"])
    pipe_cpu, raw_cpu = min(t[1] for t in times["pipe"]), min(t[1] for t in times["raw"])
    pipe_rt, raw_rt = audio.duration / pipe_wall, audio.duration / raw_wall
    emit("transcribe_60s_pipeline_x_realtime", pipe_rt, "x", seconds=round(pipe_wall, 2))
    emit("transcribe_60s_raw_x_realtime", raw_rt, "x", seconds=round(raw_wall, 2))
    emit("transcribe_pipeline_vs_raw", pipe_rt / raw_rt, "ratio", target=">= 0.9", runs=runs)
    emit(
        "transcribe_pipeline_vs_raw_cpu",
        raw_cpu / pipe_cpu,
        "ratio",
        pipeline_cpu_s=round(pipe_cpu, 2),
        raw_cpu_s=round(raw_cpu, 2),
    )


async def bench_utterance_latency(rec: WhisperRecognizer, synth: Synthesizer, runs: int) -> None:
    """End of speech (the frame that completes the silence timeout) to transcript in hand."""
    said = synth.synthesize("I would like to check the status of my order.")
    phone = resample(said.samples, said.sample_rate, 8000)
    loud = np.nonzero(np.abs(phone.astype(np.int32)) > 500)[0]
    speech = phone[loud[0] : loud[0] + 16000]  # exactly 2 s of speech
    stream = np.concatenate([np.zeros(8000, np.int16), speech, np.zeros(16000, np.int16)])
    latencies, cpu_ms, texts = [], [], []
    async with RecognizerPool(rec, workers=1, queue_size=4) as pool:
        await pool.transcribe_utterance(Audio(speech, 8000))  # warm-up
        for _ in range(runs):
            endpointer = Endpointer(8000, EndpointConfig(end_silence_ms=500))
            for start in range(0, len(stream), 160):
                frame = stream[start : start + 160]
                began, began_cpu = time.perf_counter(), time.process_time()
                events = endpointer.feed(frame)
                ended = [e for e in events if e.kind == "speech_end"]
                if ended:
                    utterance = await pool.transcribe_utterance(ended[0].utterance)
                    latencies.append((time.perf_counter() - began) * 1000)
                    cpu_ms.append((time.process_time() - began_cpu) * 1000)
                    texts.append(utterance.text)
                    break
    emit(
        "utterance_latency_p50",
        percentile(latencies, 50),
        "ms",
        utterance_s=2.0,
        silence_timeout_ms=500,
        note="after the silence timeout; 8 kHz input",
    )
    emit("utterance_latency_p95", percentile(latencies, 95), "ms", target="<= 300", runs=runs)
    emit("utterance_cpu_p50", statistics.median(cpu_ms), "ms", note="CPU time, all threads")
    emit("utterance_example", 0, "text", text=texts[-1])


async def bench_tts_first_frame(synth: Synthesizer, runs: int) -> None:
    cold_cpu: list[float] = []

    async def first_frame(text: str) -> float:
        start, cpu = time.perf_counter(), time.process_time()
        stream = synth.stream_telephony(text, "pcmu")
        await anext(stream)
        elapsed = (time.perf_counter() - start) * 1000
        cold_cpu.append((time.process_time() - cpu) * 1000)
        await stream.aclose()
        return elapsed

    cold, cached = [], []
    stamp = int(time.time())
    for i in range(runs):
        text = (  # a first sentence of typical length (about 2 s), unique per run
            f"Your ticket is <digits>{(stamp + i) % 10000:04d}</digits>. "
            "An agent will call you back within one business day."
        )
        cold.append(await first_frame(text))
        cached.append(await first_frame(text))
    emit("tts_first_frame_cold_p50", statistics.median(cold), "ms", target="<= 250")
    emit("tts_first_frame_cold_p95", percentile(cold, 95), "ms", runs=runs)
    emit("tts_first_frame_cold_cpu_p50", statistics.median(cold_cpu[::2]), "ms")
    emit("tts_first_frame_cached_p50", statistics.median(cached), "ms", target="<= 5")
    emit("tts_first_frame_cached_p95", percentile(cached, 95), "ms", runs=runs)


def bench_wer(rec: WhisperRecognizer, synth: Synthesizer) -> None:
    full, phone = [], []
    for prompt, heard in IVR:
        audio = synth.synthesize(prompt)
        reference = heard or prompt
        full.append((reference, rec.transcribe_utterance(audio).text))
        narrow = resample(audio.samples, audio.sample_rate, 8000)
        line = Audio(ulaw_decode(ulaw_encode(narrow)), 8000)
        phone.append((reference, rec.transcribe_utterance(line).text))
    emit("ivr_wer_full_band", word_error_rate(full), "ratio", sentences=len(IVR))
    emit("ivr_wer_8k_ulaw", word_error_rate(phone), "ratio", sentences=len(IVR))


def bench_dsp() -> None:
    keys = generate_dtmf("123A456B789C*0#D" * 8)
    start = time.perf_counter()
    detector = DtmfDetector()
    for i in range(0, len(keys), 160):
        detector.feed(keys[i : i + 160])
    emit("dtmf_detect_x_realtime", len(keys) / 8000 / (time.perf_counter() - start), "x")
    noise = np.random.default_rng(0).normal(0, 500, 8000 * 30).astype(np.int16)
    endpointer = Endpointer(8000, EndpointConfig(no_input_ms=10**9))
    start = time.perf_counter()
    for i in range(0, len(noise), 160):
        endpointer.feed(noise[i : i + 160])
    emit("vad_x_realtime", 30 / (time.perf_counter() - start), "x", frame_ms=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--vosk", type=Path, help="also load this Vosk model and report RSS")
    args = parser.parse_args()
    runs = 2 if args.quick else 5
    emit(
        "machine",
        os.cpu_count() or 0,
        "cores",
        python=platform.python_version(),
        load_average=[round(x, 2) for x in os.getloadavg()],
    )
    base = rss_mb()
    with tempfile.TemporaryDirectory() as cache:
        synth = Synthesizer(cache_dir=cache)
        start = time.perf_counter()
        synth.load()
        emit("tts_model_load", time.perf_counter() - start, "s")
        rec = WhisperRecognizer()
        start = time.perf_counter()
        _ = rec.model
        emit("asr_model_load", time.perf_counter() - start, "s")
        synth.warm_up()
        rec.warm_up()
        emit("rss_both_models", rss_mb(), "MiB", before_models=round(base, 1))

        asyncio.run(bench_tts_first_frame(synth, 5 if args.quick else 10))
        asyncio.run(bench_utterance_latency(rec, synth, 10 if args.quick else 20))
        bench_wer(rec, synth)
        bench_dsp()
        bench_transcription(rec, recording(synth, 60.0), runs)
        emit("rss_after_runs", rss_mb(), "MiB")
        if args.vosk:
            from speech.vosk_asr import VoskRecognizer

            start = time.perf_counter()
            _ = VoskRecognizer(args.vosk).model
            emit("vosk_model_load", time.perf_counter() - start, "s", model=args.vosk.name)
            emit("rss_with_vosk", rss_mb(), "MiB")


if __name__ == "__main__":
    main()
