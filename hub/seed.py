"""Demo data for the embedded default: two queues, skills, five agents, a supervisor, a QA
user and an admin, and the sample dialogs. Passwords are random, kept in
``var/demo-logins.json`` and printed.

Agents and the supervisor get a SIP extension and password for a softphone, and the voice
inbox answers the demo DID with the demo phone menu (General, or Billing after an account
lookup at the hub's own ``/demo/accounts``, ``hub.demo_api``). Loopback is a trusted
gateway by default (``HUB_VOICE_TRUSTED_GATEWAYS``), so SIPp or a local SBC can call the DID
at once."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import ChannelKind
from hub.auth import hash_password
from hub.dialogs import import_library
from models import (
    Agent,
    AgentSkill,
    BusinessHours,
    Disposition,
    Inbox,
    NotReadyReason,
    Queue,
    QueueSkill,
    Role,
    Skill,
    User,
)

ALL_WEEK = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
OFFICE = {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
# Which sample dialog (ivr_dialogs/library) answers which demo inbox; the others go straight
# to routing.
INBOX_DIALOGS: dict[ChannelKind, str] = {ChannelKind.VOICE: "demo_phone_menu"}
DEFAULT_CAPACITY = {"voice": 1, "webchat": 3, "telegram": 3, "sms": 3, "email": 5, "fax": 5}

# username, display name, role, {skill: level}
DEMO_PEOPLE: tuple[tuple[str, str, Role, dict[str, int]], ...] = (
    ("alice", "Alice Martin", Role.AGENT, {"general": 5, "billing": 3}),
    ("bob", "Bob Okafor", Role.AGENT, {"general": 4}),
    ("carol", "Carol Nguyen", Role.AGENT, {"general": 3, "billing": 5}),
    ("dave", "Dave Kowalski", Role.AGENT, {"general": 2, "spanish": 4}),
    ("erin", "Erin Schmidt", Role.AGENT, {"billing": 4, "spanish": 2}),
    ("sam", "Sam Supervisor", Role.SUPERVISOR, {"general": 5, "billing": 5}),
    ("quinn", "Quinn QA", Role.QA, {}),
    ("admin", "Admin", Role.ADMIN, {}),
)


DEMO_DID = "+15550100"  # the voice inbox's number: a gateway sends calls to sip:+15550100@hub
BLOCK_PROMPT = "We are sorry, we cannot take your call. Goodbye."


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str
    role: str
    sip_extension: str = ""
    sip_password: str = ""


def random_password() -> str:
    return secrets.token_urlsafe(9)


async def seed_demo(
    db: AsyncSession,
    password_for: Callable[[str], str] = lambda _u: random_password(),
    hasher: Callable[[str], str] = hash_password,
    sip_password_for: Callable[[str], str] = lambda _u: random_password(),
) -> list[Login]:
    """Create the demo organisation unless users exist already; returns the new logins.

    The sample dialogs are imported, each with one published version, into any database
    that lacks them (a sample added in an upgrade appears too); dialogs admins made or
    changed are left alone. ``hasher`` lets tests reuse (memoize) real argon2 hashes across
    many fresh databases.
    """
    dialogs = await import_library(db)
    if (await db.exec(select(User))).first() is not None:
        await db.commit()
        return []
    always = BusinessHours(name="24/7", timezone="UTC", weekly=ALL_WEEK)
    office = BusinessHours(name="Office hours", timezone="UTC", weekly=OFFICE)
    db.add_all([always, office])
    skills = {name: Skill(name=name) for name in ("general", "billing", "spanish")}
    db.add_all(skills.values())
    await db.flush()
    general = Queue(
        name="General",
        channels=[k.value for k in ChannelKind],
        sla_seconds=30,
        hours_id=always.id,
    )
    billing = Queue(
        name="Billing",
        channels=[k.value for k in ChannelKind],
        priority=1,
        sla_seconds=60,
        strategy="highest_skill",
        hours_id=always.id,
    )
    db.add_all([general, billing])
    await db.flush()
    billing.overflow_queue_id = general.id
    billing.overflow_after_seconds = 300
    db.add_all(
        [
            QueueSkill(queue_id=general.id, skill_id=skills["general"].id, min_level=1),
            QueueSkill(queue_id=billing.id, skill_id=skills["billing"].id, min_level=2),
        ]
    )
    names = {
        ChannelKind.WEBCHAT: "Web chat",
        ChannelKind.EMAIL: "Support email",
        ChannelKind.SMS: "SMS",
        ChannelKind.TELEGRAM: "Telegram",
        ChannelKind.FAX: "Fax",
        ChannelKind.VOICE: "Phone",
    }
    configs = {ChannelKind.VOICE: {"did": DEMO_DID, "block_prompt": BLOCK_PROMPT}}
    db.add_all(
        Inbox(
            name=name,
            kind=kind.value,
            default_queue_id=general.id,
            hours_id=always.id,
            dialog_id=dialogs[INBOX_DIALOGS[kind]].id if kind in INBOX_DIALOGS else None,
            config=configs.get(kind, {}),
        )
        for kind, name in names.items()
    )
    db.add_all(
        Disposition(code=code, label=label)
        for code, label in (
            ("resolved", "Resolved"),
            ("follow_up", "Needs follow-up"),
            ("escalated", "Escalated"),
            ("spam", "Spam / no action"),
        )
    )
    db.add_all(
        NotReadyReason(code=code, label=label)
        for code, label in (
            ("break", "Break"),
            ("lunch", "Lunch"),
            ("training", "Training"),
            ("meeting", "Meeting"),
            ("missed", "Missed an offer"),
        )
    )
    logins: list[Login] = []
    for index, (username, display, role, skill_levels) in enumerate(DEMO_PEOPLE, start=1):
        password = password_for(username)
        user = User(
            username=username,
            display_name=display,
            password_hash=hasher(password),
            role=role,
        )
        db.add(user)
        await db.flush()
        extension = sip_password = ""
        if role in (Role.AGENT, Role.SUPERVISOR):
            extension, sip_password = str(1000 + index), sip_password_for(username)
            agent = Agent(
                user_id=user.id,  # type: ignore[arg-type]
                capacity=dict(DEFAULT_CAPACITY),
                extension=extension,
                sip_password=sip_password,
            )
            db.add(agent)
            await db.flush()
            db.add_all(
                AgentSkill(agent_id=agent.id, skill_id=skills[name].id, level=level)  # type: ignore[arg-type]
                for name, level in skill_levels.items()
            )
        logins.append(Login(username, password, role.value, extension, sip_password))
    await db.commit()
    return logins
