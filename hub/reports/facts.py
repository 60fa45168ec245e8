"""What one interaction's events add to the report figures: pure, so checked by hand.

An interaction's events are walked in order. Each time it enters a queue from outside the
wait (``→ queued`` from anything but queued or offered) a *queue episode* starts; it is
offered there, in the interval of that event. The episode ends answered (``→ active``),
abandoned (``→ abandoned``), left as a message (``→ voicemail``) or closed unanswered.
All of an episode's figures, handle times included, go to the interval it was offered in
and to the agent who answered it, so each interval's row can be recomputed from the events
of the interactions offered in it.

Handle time per agent segment: talk (or chat) runs from ``→ active`` to ``→ wrap_up`` (or to
a transfer back to a queue, or to ``→ closed``), wrap-up from ``→ wrap_up`` to ``→ closed``.
Hold comes from the call controls' timeline (``ControlEvent`` rows, fed in as ``control:``
events): the customer is on hold from a hold (the console's, or the agent's phone by
re-INVITE) or a consult until its resume, or until the consult is cancelled, completed or
turned into a conference. Hold inside a talk segment counts as hold, not talk. A blind
transfer to an external number is a call control too (the interaction goes to wrap-up, not
back to a queue) and counts as a transfer.

A callback request counts in the queue episode the caller asked in, requested when it is made
and completed when the hub's call back connects.

Self-service: entering the IVR or bot (``→ self_service``); contained when the interaction
then closes without a queue or an agent. An agent starting a contact (``new → active``,
click to dial) is an outbound segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import NamedTuple

from models import WAIT_BINS, InteractionState

S = InteractionState
INTERVAL = timedelta(minutes=15)
_WAITING = (S.QUEUED.value, S.OFFERED.value)
CONTROL = "control:"  # the prefix of a call control fed in among the state changes
# A callback request (``CallbackRequest``) fed in: made, and connected. Both count in the
# queue episode the caller asked in (their place is kept there).
CALLBACK_REQUESTED = "callback:requested"
TRANSFER_OUT = "transfer_out"  # a call control: the agent sent the call out through the trunk
CALLBACK_COMPLETED = "callback:completed"
# What puts the customer on hold, and what takes each reason away again (``ControlKind``s).
HOLD_STARTS = {"hold": "hold", "remote_hold": "remote", "consult": "consult"}
HOLD_ENDS = {
    "resume": "hold",
    "remote_resume": "remote",
    "consult_cancel": "consult",
    "consult_complete": "consult",
    "conference": "consult",
    "drop": "consult",
}
ADDITIVE = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "voicemail",
    "answered_in_sl",
    "sl_counted",
    "wait_answered_seconds",
    "handled",
    "talk_seconds",
    "hold_seconds",
    "wrap_seconds",
    "transfers",
    "outbound",
    "self_service",
    "contained",
    "callbacks_requested",
    "callbacks_completed",
)


_additive = attrgetter(*ADDITIVE)


def bucket_of(moment: datetime) -> datetime:
    """The start of the 15-minute UTC interval holding ``moment``."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def wait_bin(seconds: float) -> int:
    for index, bound in enumerate(WAIT_BINS):
        if seconds < bound:
            return index
    return len(WAIT_BINS)


class Event(NamedTuple):  # a tuple: built once per raw event row, millions in a rebuild
    at: datetime
    from_state: str | None
    to_state: str
    agent_id: int | None
    queue_id: int | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class QueueRule:
    """What a queue's settings decide about its figures."""

    sla_seconds: int = 60
    sl_denominator: str = "answered_abandoned"
    short_abandon_seconds: int = 5


@dataclass(slots=True)
class Fact:
    """What one episode (or one self-service or outbound contact) adds to one row."""

    bucket: datetime
    queue_id: int | None
    channel: str
    inbox_id: int | None
    agent_id: int | None = None
    wait_max_seconds: float = 0.0
    answered_hist: list[int] = field(default_factory=lambda: [0] * (len(WAIT_BINS) + 1))
    abandoned_hist: list[int] = field(default_factory=lambda: [0] * (len(WAIT_BINS) + 1))
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    voicemail: int = 0
    answered_in_sl: int = 0
    sl_counted: int = 0
    wait_answered_seconds: float = 0.0
    handled: int = 0
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0
    wrap_seconds: float = 0.0
    transfers: int = 0
    outbound: int = 0
    self_service: int = 0
    contained: int = 0
    callbacks_requested: int = 0
    callbacks_completed: int = 0

    @property
    def key(self) -> tuple:
        return (self.bucket, self.queue_id, self.channel, self.inbox_id, self.agent_id)


def _seconds(start: datetime, end: datetime) -> float:
    if (start.tzinfo is None) is (end.tzinfo is None):  # both naive UTC (SQLite), or aware
        return max(0.0, (end - start).total_seconds())
    return max(0.0, (_utc(end) - _utc(start)).total_seconds())


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def interaction_facts(
    channel: str,
    inbox_id: int | None,
    events: Sequence[Event],
    rules: dict[int, QueueRule],
) -> list[Fact]:
    """The facts of one interaction, from its events in order (``at``, then id)."""
    from hub.service_level import counted

    facts: list[Fact] = []
    episode: Fact | None = None  # the open queue episode
    start: datetime | None = None
    segment: Fact | None = None  # the fact an agent's handle time goes to
    talk_from: datetime | None = None
    wrap_from: datetime | None = None
    bot: Fact | None = None  # a self-service entry not yet routed
    callback: Fact | None = None  # the episode a callback was requested in
    holding: set[str] = set()  # why the customer is on hold now
    held_since: datetime | None = None
    held = 0.0  # seconds on hold in the current talk

    def close_episode() -> None:
        nonlocal episode
        if episode is not None:
            rule = rules.get(episode.queue_id or 0, QueueRule())
            episode.sl_counted = counted(
                rule.sl_denominator,
                answered=episode.answered,
                abandoned=episode.abandoned,
                short_abandoned=episode.short_abandoned,
                offered=episode.answered + episode.abandoned + episode.voicemail,
            )
        episode = None

    def end_talk(at: datetime) -> None:
        nonlocal talk_from, held_since, held
        if held_since is not None:
            held += _seconds(held_since, at)
        if segment is not None and talk_from is not None:
            segment.hold_seconds += held
            segment.talk_seconds += max(0.0, _seconds(talk_from, at) - held)
        talk_from = held_since = None
        held = 0.0
        holding.clear()

    for ev in events:
        to, frm = ev.to_state, ev.from_state
        if to == CALLBACK_REQUESTED:
            callback = episode
            if callback is not None:
                callback.callbacks_requested += 1
        elif to == CALLBACK_COMPLETED:
            if callback is not None:
                callback.callbacks_completed += 1
        elif to.startswith(CONTROL):
            kind = to.removeprefix(CONTROL)
            if talk_from is None:
                continue  # no talk to hold (a control after the agent left, say)
            if kind == TRANSFER_OUT:
                if segment is not None:
                    segment.transfers += 1
            elif kind in HOLD_STARTS:
                if not holding:
                    held_since = ev.at
                holding.add(HOLD_STARTS[kind])
            elif kind in HOLD_ENDS and HOLD_ENDS[kind] in holding:
                holding.discard(HOLD_ENDS[kind])
                if not holding and held_since is not None:
                    held += _seconds(held_since, ev.at)
                    held_since = None
        elif to == S.SELF_SERVICE:
            bot = Fact(bucket_of(ev.at), ev.queue_id, channel, inbox_id, self_service=1)
            facts.append(bot)
        elif to == S.QUEUED and frm not in _WAITING:
            bot = None
            if frm == S.ACTIVE:  # back to a queue from an agent: a transfer
                end_talk(ev.at)
                if segment is not None:
                    segment.transfers += 1
                    segment.handled += 1
                    segment = None
            close_episode()
            start = ev.at
            episode = Fact(bucket_of(ev.at), ev.queue_id, channel, inbox_id, offered=1)
            facts.append(episode)
        elif to == S.ACTIVE:
            bot = None
            if episode is not None and frm in _WAITING and start is not None:
                wait = _seconds(start, ev.at)
                rule = rules.get(episode.queue_id or 0, QueueRule())
                episode.answered = 1
                episode.agent_id = ev.agent_id
                episode.wait_answered_seconds = wait
                episode.wait_max_seconds = wait
                episode.answered_in_sl = int(wait <= rule.sla_seconds)
                episode.answered_hist[wait_bin(wait)] += 1
                segment = episode
                close_episode()
            else:  # click to dial, or a left message picked up
                close_episode()
                segment = Fact(bucket_of(ev.at), ev.queue_id, channel, inbox_id, ev.agent_id)
                segment.outbound = int(frm == S.NEW)
                facts.append(segment)
            talk_from = ev.at
        elif to == S.ABANDONED:
            if episode is not None and frm in _WAITING and start is not None:
                wait = _seconds(start, ev.at)
                rule = rules.get(episode.queue_id or 0, QueueRule())
                episode.abandoned = 1
                episode.short_abandoned = int(wait <= rule.short_abandon_seconds)
                episode.wait_max_seconds = wait
                episode.abandoned_hist[wait_bin(wait)] += 1
                close_episode()
            bot = None
        elif to == S.VOICEMAIL:
            if episode is not None:
                episode.voicemail = 1
                if start is not None:
                    episode.wait_max_seconds = _seconds(start, ev.at)
                close_episode()
            bot = None
        elif to == S.WRAP_UP:
            end_talk(ev.at)
            wrap_from = ev.at
        elif to == S.CLOSED:
            if frm == S.WRAP_UP and wrap_from is not None and segment is not None:
                segment.wrap_seconds += _seconds(wrap_from, ev.at)
                segment.handled += 1
                segment = None
            elif frm == S.ACTIVE and segment is not None:
                end_talk(ev.at)
                segment.handled += 1
                segment = None
            elif bot is not None and frm in (S.SELF_SERVICE, S.NEW):
                bot.contained = 1
            close_episode()
            bot = None
            wrap_from = None
    close_episode()
    return facts


def add_into(total: Fact, fact: Fact) -> None:
    """Sum ``fact`` into ``total`` (the same row key)."""
    for name, mine, other in zip(ADDITIVE, _additive(total), _additive(fact), strict=True):
        setattr(total, name, mine + other)
    total.wait_max_seconds = max(total.wait_max_seconds, fact.wait_max_seconds)
    for index, count in enumerate(fact.answered_hist):
        total.answered_hist[index] += count
    for index, count in enumerate(fact.abandoned_hist):
        total.abandoned_hist[index] += count


def copy_of(fact: Fact, *, agent: bool = True) -> Fact:
    """A new ``Fact`` with the same figures (keyed without the agent unless ``agent``): the
    same as summing ``fact`` into a zero row, in one step."""
    return Fact(
        fact.bucket,
        fact.queue_id,
        fact.channel,
        fact.inbox_id,
        fact.agent_id if agent else None,
        fact.wait_max_seconds,
        list(fact.answered_hist),
        list(fact.abandoned_hist),
        **dict(zip(ADDITIVE, _additive(fact), strict=True)),
    )


def aggregate(facts: Iterable[Fact], *, agent: bool = True) -> dict[tuple, Fact]:
    """Facts summed per row key (interval, queue, channel, inbox, and agent unless not
    ``agent``), each row's facts added in the order they come."""
    rows: dict[tuple, Fact] = {}
    for fact in facts:
        key = (fact.bucket, fact.queue_id, fact.channel, fact.inbox_id)
        if agent:
            key += (fact.agent_id,)
        total = rows.get(key)
        if total is None:
            rows[key] = copy_of(fact, agent=agent)
        else:
            add_into(total, fact)
    return rows
