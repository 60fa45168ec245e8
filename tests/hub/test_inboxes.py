"""Saving inboxes: secrets are write-only, links are checked, changes are audited without
secret values and announced on the bus (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlmodel import col, select

from hub.inbox_config import InboxConfigError, form_values
from hub.inboxes import CONFIG_TOPIC, INBOX_EVENT, InboxLinks, announce, save_inbox, set_active
from hub.services import Services
from models import AuditEntry, Inbox, Queue


def _links(name: str, queue_id: int | None = None, active: bool = True) -> InboxLinks:
    return InboxLinks(
        name=name, default_queue_id=queue_id, hours_id=None, dialog_id=None, active=active
    )


async def _audits(services: Services, inbox_id: int) -> list[AuditEntry]:
    async with services.sessionmaker() as db:
        rows = await db.exec(
            select(AuditEntry)
            .where(AuditEntry.entity == "inbox", AuditEntry.entity_id == str(inbox_id))
            .order_by(col(AuditEntry.id))
        )
        return list(rows.all())


async def test_secrets_are_write_only_and_never_audited(services: Services) -> None:
    async with services.sessionmaker() as db:
        queue = (await db.exec(select(Queue))).first()
        inbox = await save_inbox(
            db,
            user_id=None,
            inbox_id=None,
            kind="sms",
            links=_links("Carrier A", queue.id),
            form={
                "provider": "smpp",
                "smpp_host": "smsc.example",
                "smpp_port": "2776",
                "smpp_system_id": "hub",
                "smpp_password": "s3cret-pw",
            },
        )
    assert inbox.config["smpp_password"] == "s3cret-pw"
    assert inbox.config["smpp_port"] == 2776
    assert form_values("sms", inbox.config)["smpp_password"] == "(set)"

    # a blank secret keeps the stored one; a blank plain field falls back to the environment
    async with services.sessionmaker() as db:
        inbox = await save_inbox(
            db,
            user_id=None,
            inbox_id=inbox.id,
            kind="sms",
            links=_links("Carrier A", queue.id),
            form={"provider": "smpp", "smpp_host": "smsc2.example", "smpp_password": ""},
        )
    assert inbox.config["smpp_password"] == "s3cret-pw"
    assert inbox.config["smpp_host"] == "smsc2.example"
    assert "smpp_port" not in inbox.config and "smpp_system_id" not in inbox.config

    async with services.sessionmaker() as db:
        inbox = await save_inbox(
            db,
            user_id=None,
            inbox_id=inbox.id,
            kind="sms",
            links=_links("Carrier A", queue.id),
            form={"provider": "smpp", "smpp_host": "smsc2.example", "clear_smpp_password": "on"},
        )
    assert "smpp_password" not in inbox.config

    entries = await _audits(services, inbox.id)
    assert [e.action for e in entries] == ["create", "update", "update"]
    assert "s3cret-pw" not in json.dumps([[e.before, e.after] for e in entries])
    assert entries[0].after["config"]["smpp_password"] == "(set)"
    assert entries[1].before["config"]["smpp_host"] == "smsc.example"


async def test_bad_values_and_links_are_refused_by_name(services: Services) -> None:
    async with services.sessionmaker() as db:
        for form, links, why in (
            ({"smpp_port": "http"}, _links("X"), "SMPP port"),
            ({"smpp_port": "70000"}, _links("X"), "not a port"),
            ({"smpp_host": "smsc example"}, _links("X"), "SMPP host"),
            ({}, _links("X", queue_id=99999), "Default queue #99999"),
            ({}, _links("Support email"), "already called"),  # the seed's mailbox
            ({}, _links(""), "Name is required"),
        ):
            with pytest.raises(InboxConfigError, match=why):
                await save_inbox(
                    db, user_id=None, inbox_id=None, kind="sms", links=links, form=form
                )
        with pytest.raises(InboxConfigError, match="not a phone number"):
            await save_inbox(
                db,
                user_id=None,
                inbox_id=None,
                kind="voice",
                links=_links("V"),
                form={"dids": "abc"},
            )
    async with services.sessionmaker() as db:
        assert (await db.exec(select(Inbox).where(Inbox.name == "X"))).first() is None


async def test_voice_dids_keep_unedited_keys_and_deactivation_is_audited(
    services: Services,
) -> None:
    async with services.sessionmaker() as db:
        voice = (await db.exec(select(Inbox).where(Inbox.kind == "voice"))).first()
        seeded_did = voice.config["did"]
        assert form_values("voice", voice.config)["dids"].splitlines() == [seeded_did]
        voice = await save_inbox(
            db,
            user_id=None,
            inbox_id=voice.id,
            kind="voice",
            links=_links(voice.name, voice.default_queue_id),
            form={"dids": f"{seeded_did}\n+1 555-0100"},
        )
    assert voice.config["dids"] == [seeded_did, "+15550100"]
    assert "did" not in voice.config
    assert voice.config.get("block_prompt")  # a key the page does not edit is kept
    async with services.sessionmaker() as db:
        voice = await set_active(db, user_id=None, inbox_id=voice.id, active=False)
    assert voice.active is False
    assert [e.action for e in await _audits(services, voice.id)][-1] == "deactivate"


async def test_a_save_is_announced_on_the_config_topic(services: Services) -> None:
    async with services.sessionmaker() as db:
        inbox = (await db.exec(select(Inbox).where(Inbox.kind == "telegram"))).first()
    async with services.bus.subscribe([CONFIG_TOPIC]) as events:
        await asyncio.sleep(0.05)
        await announce(services.bus, inbox)
        event = await asyncio.wait_for(anext(aiter(events)), 5)
    assert (event.name, event.data) == (INBOX_EVENT, {"inbox_id": inbox.id, "kind": "telegram"})
