"""The interactive simulator: talk to a dialog in a terminal (or through a pipe in tests).

Type digits (``2``, ``123456#``) or a phrase; an empty line is silence (no input); end of
input is a hang-up. Lookups go to the real URLs (secrets from ``HUB_DIALOG_SECRET_*``) unless
a stand-in answer is given per lookup node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from ivr_dialogs.events import LookupResult
from ivr_dialogs.hours import HoursSpec
from ivr_dialogs.interpreter import CallerInfo
from ivr_dialogs.loader import Dialog
from ivr_dialogs.ports import TextPort
from ivr_dialogs.runner import Trace, run_dialog


async def simulate(
    dialog: Dialog,
    *,
    read_line: Callable[[], str],
    write: Callable[[str], None],
    caller: CallerInfo | Mapping[str, Any] | None = None,
    now: datetime | None = None,
    business_hours: HoursSpec = None,
    language: str | None = None,
    secrets: Mapping[str, str] | None = None,
    lookups: Mapping[str, LookupResult] | None = None,
    hints: bool = True,
    echo: bool = False,
    http_client: httpx.AsyncClient | None = None,
) -> Trace:
    """Run one session with prompts written as ``dialog> ...`` and lines read as input.

    ``read_line`` blocks (it runs in a thread) and returns ``""`` at end of input.
    """

    async def send(text: str) -> None:
        write(text if text.startswith("[") else f"dialog> {text}")

    async def receive(wait_s: float | None) -> str | None:
        line = await asyncio.to_thread(read_line)
        if line == "":
            raise EOFError
        line = line.rstrip("\r\n")
        if echo:
            write(f"you> {line}")
        return line

    port = TextPort(send, receive, hints=hints, timeouts=False)
    return await run_dialog(
        dialog,
        port,
        http_client=http_client,
        secrets=secrets,
        caller=caller,
        now=now,
        business_hours=business_hours,
        language=language,
        lookups=lookups,
    )
