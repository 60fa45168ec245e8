"""Drive one dialog session over a ``Port``; the only place a lookup's HTTP happens.

The interpreter stays sans-IO: this loop turns ``Listen`` into ``port.listen()``, ``Lookup``
into an httpx request (secrets filled in from settings here, never from the YAML), and every
other action into the port method of its kind.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from ivr_dialogs.actions import Listen, Lookup
from ivr_dialogs.events import Event, HangUp, LookupResult
from ivr_dialogs.hours import HoursSpec
from ivr_dialogs.interpreter import DEFAULT_STEP_LIMIT, CallerInfo, Interpreter
from ivr_dialogs.loader import Dialog
from ivr_dialogs.ports import Port, dispatch

Trace = dict[str, Any]
SECRET_ENV_PREFIX = "HUB_DIALOG_SECRET_"  # noqa: S105 (a name prefix, not a secret)
MAX_BODY_BYTES = 1_000_000
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def secrets_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``HUB_DIALOG_SECRET_BILLING_TOKEN=x`` -> ``{"BILLING_TOKEN": "x"}``."""
    source = os.environ if environ is None else environ
    return {
        key.removeprefix(SECRET_ENV_PREFIX): value
        for key, value in source.items()
        if key.startswith(SECRET_ENV_PREFIX)
    }


class MissingSecret(Exception):
    pass


def _fill_secrets(template: str, secrets: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in secrets:
            raise MissingSecret(f"secret {name} is not configured ({SECRET_ENV_PREFIX}{name})")
        return secrets[name]

    return _PLACEHOLDER.sub(one, template)


async def perform_lookup(
    client: httpx.AsyncClient, action: Lookup, secrets: Mapping[str, str]
) -> LookupResult:
    """Make the request; timeouts, transport errors and bad JSON become ``error`` texts."""
    headers = {"Accept": "application/json", **action.headers}
    try:
        for name, value in action.secret_headers.items():
            headers[name] = _fill_secrets(value, secrets)
    except MissingSecret as exc:
        return LookupResult(error=str(exc))
    body = action.body if action.method == "POST" else None
    try:
        async with asyncio.timeout(action.timeout_s):
            response = await client.request(
                action.method,
                action.url,
                headers=headers,
                json=body,
                timeout=httpx.Timeout(action.timeout_s),
            )
    except (TimeoutError, httpx.TimeoutException):
        return LookupResult(error=f"timeout after {action.timeout_s:g} s")
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        return LookupResult(error=f"request failed: {type(exc).__name__}: {exc}")
    if len(response.content) > MAX_BODY_BYTES:
        return LookupResult(response.status_code, error="response body too large")
    if not response.content:
        return LookupResult(response.status_code, None)
    try:
        parsed = json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        if 200 <= response.status_code < 300:
            return LookupResult(response.status_code, error=f"invalid JSON in the response: {exc}")
        parsed = None
    return LookupResult(response.status_code, parsed)


async def run_dialog(
    dialog: Dialog,
    port: Port,
    *,
    http_client: httpx.AsyncClient | None = None,
    secrets: Mapping[str, str] | None = None,
    caller: CallerInfo | Mapping[str, Any] | None = None,
    now: datetime | None = None,
    business_hours: HoursSpec = None,
    language: str | None = None,
    step_limit: int = DEFAULT_STEP_LIMIT,
    lookups: Mapping[str, LookupResult] | None = None,
    start_at: str | None = None,
) -> Trace:
    """Run a session to its end and return its trace.

    ``lookups`` answers lookup nodes by id without HTTP (the simulator's stand-ins); any other
    lookup uses ``http_client`` (one is made and closed here if none is given).
    ``start_at`` starts at that node of the main flow (``Interpreter``).
    """
    interpreter = Interpreter(
        dialog,
        caller,
        now,
        business_hours,
        language=language,
        step_limit=step_limit,
        start_at=start_at,
    )
    clients: list[httpx.AsyncClient] = []  # one made here if a lookup needs it
    actions = interpreter.start()
    try:
        while actions:
            event: Event | None = None
            try:
                event = await _carry_out(actions, port, http_client, secrets, lookups, clients)
            except (ConnectionError, EOFError):
                event = HangUp()  # the caller is gone (call dropped, chat closed)
            if event is None or interpreter.done:
                break
            actions = interpreter.feed(event)
    finally:
        for client in clients:
            await client.aclose()
    return interpreter.trace


async def _carry_out(
    actions: list[Any],
    port: Port,
    http_client: httpx.AsyncClient | None,
    secrets: Mapping[str, str] | None,
    lookups: Mapping[str, LookupResult] | None,
    clients: list[httpx.AsyncClient],
) -> Event | None:
    """Run one batch of actions; the event the last one waited for, if any."""
    event: Event | None = None
    for action in actions:
        if isinstance(action, Listen):
            event = await port.listen(action)
        elif isinstance(action, Lookup):
            stub = (lookups or {}).get(action.node)
            if stub is not None:
                event = stub
            else:
                client = http_client
                if client is None:
                    if not clients:
                        clients.append(httpx.AsyncClient())
                    client = clients[0]
                event = await perform_lookup(client, action, secrets or {})
        else:
            await dispatch(port, action)
    return event
