"""The async runner over a TextPort, with lookups against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from ivr_dialogs import LookupResult
from ivr_dialogs.ports import Port, TextPort
from ivr_dialogs.runner import run_dialog, secrets_from_env
from tests.ivr_dialogs.helpers import MONDAY_10AM, dialog


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CrmServer:
    """A tiny HTTP/1.1 server: /ok answers JSON, /slow never answers in time, /bad is not JSON."""

    port: int = 0
    requests: list[Seen] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(Seen(method, target, headers, body))
        path = target.split("?")[0]
        if path.startswith("/slow"):
            await asyncio.sleep(5)
            status, payload = 200, b"{}"
        elif path.startswith("/bad"):
            status, payload = 200, b"{'balance': oops"
        elif path.startswith("/missing"):
            status, payload = 404, b'{"error": "no such account"}'
        else:
            account = path.rsplit("/", 1)[-1]
            status = 200
            payload = json.dumps(
                {"account": account, "balance": {"amount": 42.5, "currency": "USD"}}
            ).encode()
        reason = {200: "OK", 404: "Not Found"}[status]
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        try:
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def crm() -> AsyncIterator[CrmServer]:
    server = CrmServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        await listener.wait_closed()


def balance_dialog(port: int, path: str, timeout_s: float = 2) -> str:
    return f"""
dialog: balance
start: account
nodes:
  account:
    type: ask
    expect: digits
    var: account
    min_length: 4
    max_length: 8
    prompt: Account number?
    no_input: {{retries: 1, fallback: failed}}
    no_match: {{retries: 1, fallback: failed}}
    next: fetch
  fetch:
    type: lookup
    method: POST
    url: "http://127.0.0.1:{port}/{path}/{{{{ account }}}}"
    secret_headers: {{Authorization: "Bearer ${{CRM_TOKEN}}"}}
    body: {{account: "{{{{ account }}}}", caller: "{{{{ caller.number }}}}"}}
    timeout_s: {timeout_s}
    map: {{balance: balance.amount, currency: balance.currency}}
    next: tell
    on_error: failed
  tell:
    type: hangup
    prompt: "Your balance is {{{{ money(balance) }}}} {{{{ currency }}}}."
  failed:
    type: queue
    queue: billing
    prompt: "Sorry ({{{{ lookup_error }}}})."
    data: {{account: "{{{{ account }}}}"}}
"""


def scripted_port(*lines: str) -> tuple[TextPort, list[str]]:
    """A TextPort whose user types ``lines``, then closes the chat."""
    pending = list(lines)
    shown: list[str] = []

    async def send(text: str) -> None:
        shown.append(text)

    async def receive(timeout: float | None) -> str | None:
        if not pending:
            raise EOFError
        return pending.pop(0)

    return TextPort(send, receive), shown


async def test_lookup_success_fills_variables_and_sends_the_secret(crm: CrmServer) -> None:
    port, shown = scripted_port("123456#")
    assert isinstance(port, Port)
    async with httpx.AsyncClient() as client:
        trace = await run_dialog(
            dialog(balance_dialog(crm.port, "accounts")),
            port,
            http_client=client,
            secrets={"CRM_TOKEN": "s3cret"},
            caller={"number": "+15550100"},
            now=MONDAY_10AM,
        )
    assert shown == ["Account number?", "Your balance is 42.50 USD.", "[end: completed]"]
    assert trace["outcome"] == "hangup"
    assert trace["variables"]["balance"] == 42.5
    (request,) = crm.requests
    assert (request.method, request.path) == ("POST", "/accounts/123456")
    assert request.headers["authorization"] == "Bearer s3cret"
    assert json.loads(request.body) == {"account": "123456", "caller": "+15550100"}
    assert "s3cret" not in json.dumps(trace)


async def test_lookup_timeout_takes_the_error_branch(crm: CrmServer) -> None:
    port, shown = scripted_port("123456#")
    trace = await run_dialog(
        dialog(balance_dialog(crm.port, "slow", timeout_s=0.3)),
        port,
        secrets={"CRM_TOKEN": "x"},
    )
    assert trace["outcome"] == "queued"
    assert shown[1] == "Sorry (timeout after 0.3 s)."
    assert trace["handoff"]["data"] == {"account": "123456"}


async def test_lookup_bad_json_takes_the_error_branch(crm: CrmServer) -> None:
    port, shown = scripted_port("123456#")
    trace = await run_dialog(
        dialog(balance_dialog(crm.port, "bad")), port, secrets={"CRM_TOKEN": "x"}
    )
    assert trace["outcome"] == "queued"
    assert shown[1].startswith("Sorry (invalid JSON in the response")


async def test_lookup_http_error_and_missing_secret(crm: CrmServer) -> None:
    port, shown = scripted_port("123456#")
    await run_dialog(dialog(balance_dialog(crm.port, "missing")), port, secrets={"CRM_TOKEN": "x"})
    assert shown[1] == "Sorry (HTTP status 404)."
    port, shown = scripted_port("123456#")
    before = len(crm.requests)
    await run_dialog(dialog(balance_dialog(crm.port, "accounts")), port, secrets={})
    assert shown[1] == "Sorry (secret CRM_TOKEN is not configured (HUB_DIALOG_SECRET_CRM_TOKEN))."
    assert len(crm.requests) == before  # nothing was sent without the secret


async def test_connection_refused_is_an_error_branch_too() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    free_port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    port, shown = scripted_port("123456#")
    await run_dialog(
        dialog(balance_dialog(free_port, "accounts")), port, secrets={"CRM_TOKEN": "x"}
    )
    assert shown[1].startswith("Sorry (request failed: ConnectError")


async def test_stubbed_lookups_and_closing_the_chat() -> None:
    port, shown = scripted_port("1234#")
    trace = await run_dialog(
        dialog(balance_dialog(9, "accounts")),
        port,
        lookups={"fetch": LookupResult(200, {"balance": {"amount": 1, "currency": "EUR"}})},
    )
    assert shown[1] == "Your balance is 1.00 EUR."
    port, shown = scripted_port()
    trace = await run_dialog(dialog(balance_dialog(9, "accounts")), port)
    assert trace["outcome"] == "caller_hangup"


def test_secrets_come_from_hub_dialog_secret_variables() -> None:
    env = {"HUB_DIALOG_SECRET_CRM_TOKEN": "abc", "HUB_OTHER": "x"}
    assert secrets_from_env(env) == {"CRM_TOKEN": "abc"}


async def test_a_survey_over_a_text_port_records_answers_and_the_handoff() -> None:
    from pathlib import Path

    from ivr_dialogs import load_dialog

    survey = load_dialog(
        Path(__file__).parents[2] / "ivr_dialogs" / "library" / "satisfaction_survey.yaml"
    )
    port, shown = scripted_port("yes", "1", "no", "agent", "2#", "rude agent", "yes")
    trace = await run_dialog(survey, port, caller={"number": "+15550142"}, now=MONDAY_10AM)
    assert [(a.question, a.value) for a in port.answers] == [
        ("satisfaction", 1),
        ("resolved", False),
        ("what_went_wrong", "agent"),
        ("recommend", 2),
        ("comment", "rude agent"),
    ]
    assert trace["outcome"] == "callback"
    assert port.handoff is not None and port.handoff.queue == "supervisors"  # type: ignore[union-attr]
    assert ("caller", "rude agent") in port.transcript
    assert shown[-1] == "[callback to +15550142 from queue supervisors]"


async def test_a_dropped_connection_while_speaking_ends_the_session_as_a_hang_up() -> None:
    async def send(text: str) -> None:
        raise ConnectionResetError("call dropped")

    async def receive(wait_s: float | None) -> str | None:
        return "1234#"

    trace = await run_dialog(
        dialog(balance_dialog(9, "accounts")),
        TextPort(send, receive),
        lookups={"fetch": LookupResult(200, {"balance": {"amount": 1, "currency": "EUR"}})},
    )
    assert trace["outcome"] == "caller_hangup"
    assert trace["nodes"] == ["account"]
