"""Dialogs in the hub's database: the seeded samples, immutable versions, one published per
dialog, and the inbox's published dialog as the call service and text channels load it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hub import dialogs
from hub.seed import seed_demo
from hub.services import Services
from ivr_dialogs import CallerInfo, Digits, Interpreter, Queue, Say, VersionError
from models import Dialog, DialogKind, DialogVersion, Inbox, ValidationStatus
from tests.support import cached_hash, demo_password

LIBRARY = Path(__file__).parents[2] / "ivr_dialogs" / "library"


def library_sources() -> dict[str, str]:
    """Each sample's dialog name (its ``dialog:`` line) and YAML text."""
    found = {}
    for path in sorted(LIBRARY.glob("*.yaml")):
        source = path.read_text()
        name = next(line for line in source.splitlines() if line.startswith("dialog:"))
        found[name.split(":", 1)[1].strip()] = source
    return found


async def inbox_named(services: Services, name: str) -> Inbox:
    async with services.sessionmaker() as db:
        return (await db.exec(select(Inbox).where(Inbox.name == name))).one()


async def test_seed_imports_the_library_with_one_published_version_each(services: Services):
    samples = library_sources()
    async with services.sessionmaker() as db:
        stored = (await db.exec(select(Dialog).order_by(col(Dialog.name)))).all()
        versions = (await db.exec(select(DialogVersion))).all()
    assert sorted(samples) == [d.name for d in stored] and len(samples) >= 4
    assert len(versions) == len(stored)  # one version each
    for dialog in stored:
        (version,) = [v for v in versions if v.dialog_id == dialog.id]
        assert dialog.published_version_id == version.id
        assert (version.number, version.created_by) == (1, "seed")
        assert version.source == samples[dialog.name]  # the file, as written
        assert (version.validation, version.problems) == (ValidationStatus.VALID, [])
    kinds = {d.name: d.kind for d in stored}
    assert kinds["main_menu"] == DialogKind.INBOUND
    assert kinds["satisfaction_survey"] == DialogKind.SURVEY
    assert kinds["arrears_reminder"] == DialogKind.OUTBOUND


async def test_the_phone_inbox_answers_with_its_published_dialog(services: Services):
    phone = await inbox_named(services, "Phone")
    chat = await inbox_named(services, "Web chat")
    async with services.sessionmaker() as db:
        published = await dialogs.published_dialog(db, phone.id)  # type: ignore[arg-type]
        none = await dialogs.published_dialog(db, chat.id)  # type: ignore[arg-type]
        menu = (await db.exec(select(Dialog).where(Dialog.name == "demo_phone_menu"))).one()
    assert none is None  # no dialog: chats go straight to routing
    assert published is not None
    assert (published.name, published.number) == ("demo_phone_menu", 1)
    assert published.dialog_id == phone.dialog_id == menu.id
    assert published.version_id == menu.published_version_id
    # What the call service does with it: run it. "1" leads to the General queue.
    session = Interpreter(published.dialog, CallerInfo(number="+15551230001"))
    actions = session.start()
    assert any(isinstance(a, Say) and "press 2 or say billing" in a.text for a in actions)
    actions = session.feed(Digits("1"))
    assert any(isinstance(a, Queue) and a.name == "general" for a in actions)


async def test_versions_are_immutable_and_only_a_valid_one_is_published(services: Services):
    phone = await inbox_named(services, "Phone")
    async with services.sessionmaker() as db:
        dialog = (await db.exec(select(Dialog).where(Dialog.name == "main_menu"))).one()
        row = await db.get(Inbox, phone.id)
        assert row is not None
        row.dialog_id = dialog.id  # an admin points the phone line at the main menu
        db.add(row)
        original = library_sources()["main_menu"]
        same = await dialogs.save_version(db, dialog, original, "admin")
        assert same.number == 1  # an unchanged source adds no version
        greeting = original.replace(
            "Thank you for calling Acme Telecom.", "Welcome to Acme Telecom."
        )
        assert greeting != original
        v2 = await dialogs.save_version(db, dialog, greeting, "admin", note="new greeting")
        assert (v2.number, v2.validation) == (2, ValidationStatus.VALID)
        assert dialog.published_version_id == same.id  # saved is not published
        await dialogs.publish(db, dialog, 2)
        await db.commit()
        live = await dialogs.published_dialog(db, phone.id)  # type: ignore[arg-type]
        assert live is not None and (live.number, live.version_id) == (2, v2.id)
        assert live.dialog.source == greeting

        broken = greeting.replace("fallback: agent_queue", "fallback: agent_queu", 1)
        v3 = await dialogs.save_version(db, dialog, broken, "admin")
        assert v3.validation == ValidationStatus.INVALID
        assert any("no node named 'agent_queu'" in p for p in v3.problems)
        with pytest.raises(VersionError) as refused:
            await dialogs.publish(db, dialog, 3)
        assert any("agent_queu" in p for p in refused.value.problems)
        back = await dialogs.rollback(db, dialog, 1, "admin")
        await db.commit()
        assert (back.number, back.note, back.source) == (4, "rollback to version 1", original)
        live = await dialogs.published_dialog(db, phone.id)  # type: ignore[arg-type]
        assert live is not None and live.number == 4
        history = await dialogs.history_of(db, dialog)
        assert [v.number for v in history.versions] == [1, 2, 3, 4]
        assert "+      en: Welcome to Acme Telecom.\n" in history.diff(1, 2)

    async with services.sessionmaker() as db:  # seeding again leaves the admin's work alone
        assert await seed_demo(db, password_for=demo_password, hasher=cached_hash) == []
        dialog = (await db.exec(select(Dialog).where(Dialog.name == "main_menu"))).one()
        count = len((await db.exec(select(DialogVersion))).all())
    assert dialog.published_version_id == back.id
    assert count == len(library_sources()) + 3


async def test_a_dialog_cannot_publish_another_dialogs_version(services: Services):
    async with services.sessionmaker() as db:
        menu = (await db.exec(select(Dialog).where(Dialog.name == "main_menu"))).one()
        survey = (await db.exec(select(Dialog).where(Dialog.name == "satisfaction_survey"))).one()
        menu.published_version_id = survey.published_version_id
        db.add(menu)
        with pytest.raises(IntegrityError):
            await db.commit()
