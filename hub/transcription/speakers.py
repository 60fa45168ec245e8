"""Who spoke on the recording's right channel, from the call legs' timestamps.

The recorder puts the caller on the left and everything the hub sends the caller on the
right: IVR prompts, music on hold, the agent, a supervisor who barges in, an outside party.
A word on the right belongs to the person whose leg was up (answered, not yet ended) when
it was said; outside every such leg the hub itself was talking, so it is the IVR's. A
stretch that repeats one of the dialog's prompts (from the IVR trace) is the IVR's even
inside a leg's window, so a prompt never counts as the agent's words.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from models.transcripts import Speaker

PROMPT_SIMILARITY = 0.8


@dataclass(frozen=True, slots=True)
class LegWindow:
    """A person's leg, in seconds from the start of the recording."""

    kind: str  # a CallLegKind other than customer
    start: float
    end: float  # float("inf") while the leg never ended
    agent_id: int | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class Voice:
    """Who said a word on the right channel."""

    speaker: str
    agent_id: int | None = None
    name: str = ""


IVR = Voice(Speaker.IVR)
_LEG_SPEAKER = {
    "agent": Speaker.AGENT,
    "supervisor": Speaker.SUPERVISOR,
    "external": Speaker.EXTERNAL,
}


def voice_at(seconds: float, windows: list[LegWindow]) -> Voice:
    """The party whose leg was up at ``seconds``: the latest one to answer, else the IVR."""
    up = [w for w in windows if w.start <= seconds < w.end]
    if not up:
        return IVR
    leg = max(up, key=lambda w: w.start)
    return Voice(_LEG_SPEAKER.get(leg.kind, Speaker.EXTERNAL), leg.agent_id, leg.name)


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def is_prompt(text: str, prompts: list[str]) -> bool:
    """True when ``text`` is (nearly) one of the dialog's prompts, or a stretch of one."""
    said = _normal(text)
    if len(said) < 8:
        return False
    for prompt in prompts:
        target = _normal(prompt)
        if not target:
            continue
        if said in target or difflib.SequenceMatcher(None, said, target).ratio() >= (
            PROMPT_SIMILARITY
        ):
            return True
    return False


def ivr_prompts(interaction_data: dict[str, Any] | None) -> list[str]:
    """The prompt texts the dialog played, from ``Interaction.data["ivr"]``."""
    trace = (interaction_data or {}).get("ivr") or {}
    prompts = ((trace.get("voice") or {}).get("prompts")) or []
    return [str(p.get("text") or "") for p in prompts if isinstance(p, dict) and p.get("text")]
