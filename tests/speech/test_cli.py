"""The speech commands of `contacthub`, run as a user would."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from speech.audio import Audio, read_wav, stereo, write_wav
from speech.cli import commands
from speech.dtmf import generate_dtmf
from speech.tts import Synthesizer
from tests.speech.conftest import phone_line

CLI = click.Group("contacthub", commands={c.name: c for c in commands if c.name})


@pytest.fixture
def run(tmp_path: Path, tts_cache: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUB_SPEECH_TTS_CACHE_DIR", str(tts_cache))

    def invoke(*args: str, ok: bool = True) -> str:
        result = CliRunner().invoke(CLI, list(args))
        assert (result.exit_code == 0) is ok, result.output
        return result.output

    return invoke


def test_commands_are_registered() -> None:
    assert {c.name for c in commands} == {"say", "transcribe", "dtmf"}


def test_say_then_transcribe(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("say", "Your order has been confirmed.", "-o", "wide.wav")
    wide = read_wav(tmp_path / "wide.wav")
    assert wide.sample_rate == 22050 and wide.duration > 1
    run("say", "Your order has been confirmed.", "-o", "phone.wav", "--telephony")
    phone = read_wav(tmp_path / "phone.wav")  # a μ-law WAV
    assert phone.sample_rate == 8000 and (phone.frames % 160) == 0
    out = run("transcribe", "phone.wav", "--json")
    transcript = json.loads(out)
    assert "confirmed" in " ".join(s["text"] for s in transcript["segments"]).lower()
    assert transcript["segments"][0]["words"]


def test_transcribe_stereo_labels_speakers(run, tmp_path: Path, synthesizer: Synthesizer) -> None:  # type: ignore[no-untyped-def]
    customer = phone_line(synthesizer.synthesize("I would like a refund."))
    agent = phone_line(synthesizer.synthesize("Of course, one moment."))
    left = Audio(np.concatenate([customer.samples, np.zeros(agent.frames + 8000, np.int16)]), 8000)
    right = Audio(np.concatenate([np.zeros(customer.frames + 8000, np.int16), agent.samples]), 8000)
    write_wav(tmp_path / "call.wav", stereo(left, right))
    lines = run("transcribe", "call.wav", "--stereo").strip().splitlines()
    assert [line.split("] ")[1].split(":")[0] for line in lines] == ["customer", "agent"]


def test_dtmf_detect(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_wav(tmp_path / "keys.wav", Audio(generate_dtmf("0815#*"), 8000))
    assert run("dtmf", "detect", "keys.wav").strip() == "0815#*"
    timed = json.loads(run("dtmf", "detect", "keys.wav", "--json"))
    assert [d["digit"] for d in timed] == list("0815#*")
    assert all(a["time"] < b["time"] for a, b in itertools.pairwise(timed))
    run("dtmf", "generate", "123", "-o", "gen.wav")
    assert run("dtmf", "detect", "gen.wav").strip() == "123"


def test_bad_input_is_a_clean_error(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    out = run("transcribe", "bad.wav", ok=False)
    assert "Error: " in out and "bad.wav" in out and "Traceback" not in out
    out = run("dtmf", "detect", "bad.wav", ok=False)
    assert "WAV" in out
    out = run("say", "Hello <b>there</b>", "-o", "x.wav", ok=False)
    assert "unknown markup" in out
