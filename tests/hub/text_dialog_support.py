"""Shared by the text-dialog tests of each channel: the demo dialog on an inbox, a stand-in
for the account endpoint its lookup calls, and waits on what the dialog did."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlmodel import col, select

from hub.services import Services
from models import Dialog, Inbox, Interaction, Message, Queue, SenderKind

ACCOUNT = {"name": "Ada Lovelace", "plan": "Fibre 500", "balance": 42.5}
# What demo_phone_menu collects on its "2, then an account that exists" path.
BILLING_DATA = {
    "account": "123456",
    "customer": "Ada Lovelace",
    "plan": "Fibre 500",
    "balance": "42.50",
}


@contextmanager
def account_endpoint() -> Iterator[str]:
    """``GET /demo/accounts/123456`` as the hub's demo endpoint answers it; its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path.rstrip("/") == "/demo/accounts/123456"
            body = json.dumps(ACCOUNT if found else {"detail": "no such account"}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def use_demo_dialog(services: Services, kind: str) -> Inbox:
    """The inbox of ``kind`` answered by the seeded demo_phone_menu's published version."""
    async with services.sessionmaker() as db:
        dialog = (await db.exec(select(Dialog).where(Dialog.name == "demo_phone_menu"))).one()
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == kind))).one()
        inbox.dialog_id = dialog.id
        db.add(inbox)
        await db.commit()
        await db.refresh(inbox)
        return inbox


async def bot_lines(services: Services, interaction_id: int, count: int) -> list[str]:
    """The dialog's messages on the interaction, once there are ``count`` of them."""
    lines: list[str] = []
    for _ in range(300):
        async with services.sessionmaker() as db:
            rows = await db.exec(
                select(Message.body)
                .where(
                    Message.interaction_id == interaction_id,
                    Message.sender_kind == SenderKind.BOT,
                )
                .order_by(col(Message.id))
            )
            lines = [body or "" for body in rows.all()]
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(lines)} of {count} dialog messages: {lines}")


async def handed_over(services: Services, interaction_id: int) -> tuple[Interaction, str]:
    """The interaction once the dialog has queued it, and its queue's name."""
    for _ in range(300):
        async with services.sessionmaker() as db:
            interaction = await db.get(Interaction, interaction_id)
            assert interaction is not None
            if interaction.state != "self_service":
                queue = await db.get(Queue, interaction.queue_id)
                return interaction, queue.name if queue else ""
        await asyncio.sleep(0.05)
    raise AssertionError("the dialog never handed the conversation over")


def assert_billing_path(
    interaction: Interaction, queue: str, lines: list[str], *, chose: str = "pressed 2"
) -> None:
    """What every channel must show for "hi", "2" (or "billing"), "123456": the same dialog,
    the same end."""
    assert lines[0].startswith("Thank you for calling Acme.")
    assert lines[0].endswith("1. General\n2. Billing")
    assert lines[1] == "Please key in your account number, then press hash."
    assert lines[2] == "Thank you, Ada Lovelace. Connecting you to billing."
    assert interaction.state == "queued"
    assert queue == "Billing"
    data: dict[str, Any] = interaction.data or {}
    assert {k: data.get(k) for k in BILLING_DATA} == BILLING_DATA
    trace = data["ivr"]
    assert trace["nodes"] == ["main", "ask_account", "lookup_account", "billing_queue"]
    assert trace["summary"] == [chose, "keyed 123456", "queued to billing"]
    assert interaction.required_skills == {"billing": 1}
