"""The inbox's dialog on the web chat: it answers, hands over with its data, and a hub
restart in the middle resumes the session on the version it started with."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from sqlmodel import col, select

from hub.app import create_app
from hub.dialogs import publish, save_version
from hub.services import Services
from hub.settings import Settings
from models import Dialog, DialogVersion, Interaction
from tests.hub.text_dialog_support import (
    account_endpoint,
    assert_billing_path,
    bot_lines,
    handed_over,
    use_demo_dialog,
)
from tests.web.conftest import BASE_URL


@asynccontextmanager
async def running_hub(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """A hub app with its lifespan running in this loop, and a browser-like client."""
    app = create_app(settings)
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    await started.wait()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=20
        ) as client:
            yield client, app.state.services
    finally:
        stop.set()
        await task


async def say(client: httpx.AsyncClient, text: str) -> None:
    await client.get("/chat")  # the visitor cookie and the CSRF token
    response = await client.post(
        "/chat/messages",
        data={"body": text, "source_id": secrets.token_hex(8)},
        headers={"x-csrftoken": client.cookies.get("csrftoken", "")},
    )
    assert response.status_code == 200, response.text


async def latest_chat(services: Services) -> int:
    async with services.sessionmaker() as db:
        query = select(Interaction.id).where(Interaction.channel == "webchat")
        return (await db.exec(query.order_by(col(Interaction.id).desc()))).first()  # type: ignore[return-value]


async def test_a_restart_mid_dialog_resumes_on_the_version_it_started_with(
    web_database_url: str, tmp_path: Path
) -> None:
    with account_endpoint() as lookups:
        settings = Settings(
            var_dir=tmp_path / "var",
            database_url=web_database_url,
            secret_key="test-secret-key-for-web-tests",
            public_url=lookups,  # the dialog's "/demo/accounts/…" lookup
        )
        async with running_hub(settings) as (client, services):
            await use_demo_dialog(services, "webchat")
            await say(client, "hello")
            chat = await latest_chat(services)
            await bot_lines(services, chat, 1)
            page = (await client.get("/chat")).text
            assert "1. General\n2. Billing" in page and "Assistant" in page
            assert "Our assistant is answering" in page
            await say(client, "2")
            await bot_lines(services, chat, 2)
            cookies = dict(client.cookies)

            # Meanwhile an admin publishes a new version with another greeting.
            async with services.sessionmaker() as db:
                dialog = (
                    await db.exec(select(Dialog).where(Dialog.name == "demo_phone_menu"))
                ).one()
                v1 = await db.get(DialogVersion, dialog.published_version_id)
                assert v1 is not None
                v2 = await save_version(
                    db,
                    dialog,
                    v1.source.replace("Thank you for calling Acme.", "Welcome to Acme."),
                    "admin",
                )
                await publish(db, dialog, v2.number)
                await db.commit()

        async with running_hub(settings) as (client, services):  # the hub restarted
            client.cookies.update(cookies)
            await say(client, "123456")
            lines = await bot_lines(services, chat, 3)
            interaction, queue = await handed_over(services, chat)
            assert_billing_path(interaction, queue, lines)
            assert (interaction.data or {})["ivr"]["version"]["number"] == 1

            # A new conversation meets the version published now.
            client.cookies.clear()
            await say(client, "hi again")
            newer = await latest_chat(services)
            assert newer != chat
            (greeting,) = await bot_lines(services, newer, 1)
            assert greeting.startswith("Welcome to Acme.")


async def test_an_unanswered_question_reprompts_then_falls_back_to_a_queue(
    web_database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=web_database_url,
        secret_key="test-secret-key-for-web-tests",
        text_dialog_no_input_seconds=0.3,
    )
    async with running_hub(settings) as (client, services):
        await use_demo_dialog(services, "webchat")
        await say(client, "hello")
        chat = await latest_chat(services)
        lines = await bot_lines(services, chat, 3)
        interaction, queue = await handed_over(services, chat)
    assert lines[1].startswith("Sorry, I did not hear you.")
    assert lines[2] == "Please hold for the next agent."
    assert (interaction.state, queue) == ("queued", "General")
    assert interaction.data["ivr"]["summary"] == [
        "said nothing",
        "said nothing",
        "queued to general",
    ]
