"""Limits on calls out: the hub must never become a free long-distance service.

Every call the hub places through the trunk (a keyed-in callback number, an on-duty
forward, click to dial, an external transfer) goes through ``check_call_out`` first:

- the number must be a valid E.164 number that starts with one of the allowed prefixes
  (``HUB_CALLS_OUT_PREFIXES``, comma separated; empty: the country code of
  ``HUB_DEFAULT_REGION``, i.e. national calls only);
- its type (``phonenumbers.number_type``) must not be one of
  ``HUB_CALLS_OUT_REFUSED_TYPES`` (premium rate and the like by default);
- the inbox's and the agent's allowed calls out today (the organisation's time zone) must
  stay under ``HUB_CALLS_OUT_DAILY_CAP_INBOX`` and ``HUB_CALLS_OUT_DAILY_CAP_AGENT``
  (0: no cap).

Each check is stored as a ``CallOut`` row (the caps count the allowed ones); a refusal is
audited (``hub.audit``) and raised as ``CallOutRefused``, whose ``reason`` the console
shows and whose ``prompt`` the caller hears.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import audit
from hub.routing.work import write_lock
from models import CallOut

if TYPE_CHECKING:
    from hub.services import Services
    from hub.settings import Settings

KINDS = frozenset({"callback", "forward", "dial", "transfer", "consult"})


class CallOutRefused(Exception):
    """The number may not be called; ``reason`` for people, ``prompt`` for callers."""

    def __init__(self, reason: str, prompt: str, *, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.prompt = prompt
        self.status = status


@dataclass(frozen=True, slots=True)
class Policy:
    prefixes: tuple[str, ...]
    refused_types: frozenset[int]
    cap_inbox: int
    cap_agent: int
    region: str
    timezone: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        prefixes = tuple(
            "+" + p.strip().lstrip("+") for p in settings.calls_out_prefixes.split(",") if p.strip()
        )
        if not prefixes:
            code = phonenumbers.country_code_for_region(settings.default_region.upper())
            prefixes = (f"+{code}",) if code else ()
        refused = frozenset(
            getattr(PhoneNumberType, name.strip().upper())
            for name in settings.calls_out_refused_types.split(",")
            if name.strip() and hasattr(PhoneNumberType, name.strip().upper())
        )
        return cls(
            prefixes,
            refused,
            settings.calls_out_daily_cap_inbox,
            settings.calls_out_daily_cap_agent,
            settings.default_region,
            settings.timezone,
        )


_TYPE_WORDS = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.UAN: "a universal access number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal number",
    PhoneNumberType.VOIP: "a VoIP number",
    PhoneNumberType.MOBILE: "a mobile number",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
}


def number_problem(raw: str, policy: Policy) -> tuple[str, str, str]:
    """(E.164, reason, prompt): reason and prompt are empty when the number may be called."""
    text = raw.strip()
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else policy.region)
    except phonenumbers.NumberParseException:
        return "", f"{text!r} is not a phone number.", "That is not a phone number we can call."
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(parsed):
        return e164, f"{e164} is not a valid phone number.", "That number is not valid."
    if policy.prefixes and not e164.startswith(policy.prefixes):
        return (
            e164,
            f"{e164} is outside the allowed prefixes ({', '.join(policy.prefixes)}).",
            "We can only call numbers in this country.",
        )
    kind = phonenumbers.number_type(parsed)
    if kind in policy.refused_types:
        words = _TYPE_WORDS.get(kind, "a number of a refused type")
        return e164, f"{e164} is {words}, which the hub does not call.", f"We cannot call {words}."
    return e164, "", ""


def _day_start(policy: Policy, now: datetime) -> datetime:
    zone = ZoneInfo(policy.timezone)
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(), zone).astimezone(UTC)


async def _used_today(db: AsyncSession, column: object, value: int, since: datetime) -> int:
    query = select(func.count()).where(
        column == value, col(CallOut.allowed).is_(True), CallOut.at >= since
    )
    return int((await db.exec(query)).one())


async def check_call_out(
    services: Services,
    *,
    kind: str,
    number: str,
    inbox_id: int | None = None,
    agent_id: int | None = None,
    interaction_id: int | None = None,
    user_id: int | None = None,
) -> str:
    """The number in E.164 if the hub may call it now (the call is counted), else
    ``CallOutRefused``; both outcomes are stored, a refusal audited."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of call out {kind!r}")
    policy = Policy.from_settings(services.settings)
    e164, reason, prompt = number_problem(number, policy)
    now = datetime.now(UTC)
    async with services.sessionmaker() as db:
        await write_lock(db)  # two calls out at once cannot both take the last one of a cap
        if not reason:
            since = _day_start(policy, now)
            if policy.cap_inbox and inbox_id is not None:
                used = await _used_today(db, CallOut.inbox_id, inbox_id, since)
                if used >= policy.cap_inbox:
                    reason = f"The inbox's daily cap of {policy.cap_inbox} calls out is reached."
                    prompt = "We cannot place more calls today."
            if not reason and policy.cap_agent and agent_id is not None:
                used = await _used_today(db, CallOut.agent_id, agent_id, since)
                if used >= policy.cap_agent:
                    reason = f"Your daily cap of {policy.cap_agent} calls out is reached."
                    prompt = "We cannot place more calls today."
        row = CallOut(
            kind=kind,
            number=(e164 or number.strip())[:32],
            inbox_id=inbox_id,
            agent_id=agent_id,
            interaction_id=interaction_id,
            allowed=not reason,
            reason=reason[:200],
            at=now,
        )
        db.add(row)
        if reason:
            audit.record(
                db,
                user_id=user_id,
                action="call_out.refused",
                entity="call_out",
                entity_id=interaction_id,
                after={
                    "kind": kind,
                    "number": row.number,
                    "reason": reason,
                    "agent_id": agent_id,
                    "inbox_id": inbox_id,
                },
            )
        await db.commit()
    if reason:
        raise CallOutRefused(reason, prompt)
    return e164
