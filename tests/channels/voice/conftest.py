"""Fixtures for the voice channel: a started SipEndpoint on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from channels.voice.settings import VoiceSettings
from channels.voice.sip_endpoint import CallHandler, SipEndpoint
from tests.ports import rtp_range
from tests.support import require_tool

EndpointFactory = Callable[..., "AsyncIterator[SipEndpoint]"]


@pytest.fixture
def sipp() -> str:
    return require_tool("sipp")


@pytest.fixture
async def make_endpoint(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """``await make_endpoint(on_call, **settings)`` → a started endpoint; stopped after."""
    started: list[SipEndpoint] = []

    async def make(on_call: CallHandler | None = None, **overrides: object) -> SipEndpoint:
        low, high = rtp_range()
        values: dict[str, object] = {
            "bind_port": 0,
            "rtp_port_min": low,
            "rtp_port_max": high,
            "recordings_dir": tmp_path / "recordings",
        }
        values.update(overrides)
        endpoint = SipEndpoint(VoiceSettings(**values), on_call=on_call)  # type: ignore[arg-type]
        await endpoint.start()
        started.append(endpoint)
        return endpoint

    yield make
    for endpoint in started:
        await endpoint.stop()
