"""A Piper-spoken stereo call, built once per session (the models load once)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.transcription.worker import TranscriptionPool
from tests.hub.transcription.call_audio import SCRIPT, Line, Placed, build_call


@pytest.fixture(scope="session")
def spoken_call(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Placed]]:
    path = tmp_path_factory.mktemp("qa-call") / "call.wav"
    return path, build_call(path, SCRIPT)


@pytest.fixture(scope="session")
def short_call(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Placed]]:
    path = tmp_path_factory.mktemp("qa-short") / "short.wav"
    script = [
        Line("agent", "Hello, thanks for calling. How can I help?"),
        Line("customer", "I would like to check my order, please."),
    ]
    return path, build_call(path, script)


@pytest.fixture(scope="session")
def transcription_pool() -> Iterator[TranscriptionPool]:
    """One niced worker for the session's in-process tests: Whisper loads in it once."""
    pool = TranscriptionPool(workers=1, nice=5, idle=False)
    yield pool
    asyncio.run(pool.close())
