"""Fax fixtures: the hub's services (SQLite + PostgreSQL) with the fax channel started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels.fax.runtime import FaxRuntime, start_fax
from channels.fax.settings import FaxSettings
from hub.channel_runtime import stop_channels
from hub.services import Services
from tests.hub.conftest import channels_plugin, database_url, services  # noqa: F401
from tests.support import require_tool


@pytest.fixture
async def fax_runtime(
    services: Services,  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[FaxRuntime]:
    require_tool("tesseract")
    settings = FaxSettings(
        spool_dir=tmp_path / "fax-in",
        outgoing_dir=tmp_path / "fax-out",
        upload_secret="s3cret",
        ocr_workers=2,
    )
    runtime = await start_fax(services, settings)
    assert runtime.watcher is not None
    await runtime.watcher.stop()  # tests call scan() themselves, one pass at a time
    try:
        yield runtime
    finally:
        await services.outbox.close()
        await stop_channels(services)
