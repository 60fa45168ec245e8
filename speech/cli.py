"""`contacthub say`, `contacthub transcribe` and `contacthub dtmf …`: the speech layer by hand.

Loaded by ``hub.cli``; models load only when a command runs, so `contacthub --help` is fast.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
import numpy as np

from speech.audio import AudioError, g711_wav_bytes, read_wav, write_wav
from speech.settings import SpeechSettings

__all__ = ["commands"]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes):02d}:{secs:05.2f}"


def _read(path: Path):  # type: ignore[no-untyped-def]
    try:
        return read_wav(path)
    except AudioError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc


@click.command("say")
@click.argument("text")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--telephony", is_flag=True, help="8 kHz G.711 WAV, as a phone call carries it.")
@click.option("--codec", type=click.Choice(["pcmu", "pcma"]), default="pcmu", show_default=True)
@click.option("--voice", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def say(text: str, output: Path, telephony: bool, codec: str, voice: Path | None) -> None:
    """Speak TEXT with Piper into a WAV file (markup: <digits>, <spell>, <pause 300ms>)."""
    from speech.markup import MarkupError
    from speech.tts import Synthesizer

    synth = Synthesizer(voice=voice, settings=SpeechSettings.from_env())
    try:
        if telephony:
            payload = synth.telephony(text, codec)  # type: ignore[arg-type]
            output.write_bytes(g711_wav_bytes(payload, codec))
            seconds, rate = len(payload) / 8000, 8000
        else:
            audio = synth.synthesize(text)
            write_wav(output, audio)
            seconds, rate = audio.duration, audio.sample_rate
    except MarkupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{output}: {seconds:.2f} s at {rate} Hz" + (f" {codec}" if telephony else ""))


@click.command("transcribe")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--stereo", is_flag=True, help="One speaker per channel: customer left, agent right.")
@click.option("--json", "as_json", is_flag=True, help="Segments and words as JSON.")
@click.option("--speakers", default="customer,agent", show_default=True)
def transcribe(file: Path, stereo: bool, as_json: bool, speakers: str) -> None:
    """Transcribe a WAV recording with faster-whisper (offline)."""
    from speech.asr import WhisperRecognizer

    audio = _read(file)
    recognizer = WhisperRecognizer(settings=SpeechSettings.from_env())
    try:
        if stereo:
            left, right = (s.strip() for s in speakers.split(",", 1))
            transcript = recognizer.transcribe_stereo(audio, speakers=(left, right))
        else:
            transcript = recognizer.transcribe(audio)
    except AudioError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    if as_json:
        click.echo(json.dumps(asdict(transcript), ensure_ascii=False, indent=2))
        return
    for seg in transcript.segments:
        who = f"{seg.speaker}: " if seg.speaker else ""
        click.echo(f"[{_clock(seg.start)} - {_clock(seg.end)}] {who}{seg.text}")


@click.group("dtmf")
def dtmf() -> None:
    """In-band DTMF tones (ITU-T Q.23/Q.24)."""


@dtmf.command("detect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Each digit with the time its tone ended.")
def detect(file: Path, as_json: bool) -> None:
    """Print the DTMF digits heard in a WAV file (each channel mixed; any sample rate)."""
    from speech.dtmf import DtmfDetector

    audio = _read(file)
    pcm = audio.mono().resampled(8000).samples
    detector = DtmfDetector(sample_rate=8000)
    found: list[tuple[float, str]] = []
    for start in range(0, len(pcm), 160):
        for digit in detector.feed(pcm[start : start + 160]):
            found.append((round((start + 160) / 8000, 2), digit))
    found += [(round(len(pcm) / 8000, 2), d) for d in detector.flush()]
    if as_json:
        click.echo(json.dumps([{"digit": d, "time": t} for t, d in found]))
    else:
        click.echo("".join(d for _, d in found))


@dtmf.command("generate")
@click.argument("digits")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--tone-ms", default=100, show_default=True)
@click.option("--gap-ms", default=60, show_default=True)
def generate(digits: str, output: Path, tone_ms: int, gap_ms: int) -> None:
    """Write DIGITS as DTMF tones to an 8 kHz WAV file."""
    from speech.audio import Audio
    from speech.dtmf import generate_dtmf

    try:
        pcm = generate_dtmf(digits, tone_ms=tone_ms, gap_ms=gap_ms)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    write_wav(output, Audio(np.asarray(pcm, dtype=np.int16), 8000))
    click.echo(f"{output}: {len(pcm) / 8000:.2f} s")


commands: list[click.Command] = [say, transcribe, dtmf]
