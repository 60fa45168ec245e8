"""A stereo call recording built from Piper speech, as the hub's recorder writes one.

Each line of the script is synthesized by Piper (en_US-joe-medium), passed through 8 kHz
G.711 μ-law as it would cross the trunk, and written with ``StereoRecorder`` in 20 ms
frames: the customer on the left channel, the IVR and the agent on the right.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from channels.voice.recorder import FRAME, StereoRecorder
from speech.g711 import ulaw_decode
from speech.tts import Synthesizer

RATE = 8000


@dataclass(frozen=True)
class Line:
    speaker: str  # "customer" (left) or "ivr" / "agent" (right)
    text: str
    pause_after: float = 0.8


@dataclass(frozen=True)
class Placed:
    speaker: str
    text: str
    start: float
    end: float


SCRIPT = [
    Line("ivr", "Thank you for calling Acme. Please hold for the next agent.", 1.0),
    Line("agent", "Hello, this is Dana. How can I help you today?"),
    Line("customer", "Hi. My name is John Smith and I want to update my card."),
    Line("agent", "Sure. What is the new card number?"),
    Line("customer", "It is four one one one, one one one one, one one one one, one one one one."),
    Line("agent", "Thank you. What phone number can we reach you at?"),
    Line("customer", "My number is two one two, five five five, zero one four two.", 3.6),
    Line("agent", "And your email address, please?"),
    Line("customer", "It is john dot smith at example dot com."),
    Line("agent", "Great, you are all set. Have a wonderful day."),
    Line("customer", "Thanks, bye."),
]
AGENT_ANSWERS_AFTER = "ivr"  # the agent's leg is answered once the IVR line has played


def build_call(path: Path, script: list[Line] = SCRIPT, lead: float = 0.5) -> list[Placed]:
    """Write the call to ``path``; returns where each line sits (seconds)."""
    tts = Synthesizer()
    left: list[np.ndarray] = []
    right: list[np.ndarray] = []
    placed: list[Placed] = []
    t = lead
    pad = np.zeros(int(lead * RATE), dtype=np.int16)
    left.append(pad)
    right.append(pad.copy())
    for line in script:
        pcm = ulaw_decode(tts.telephony(line.text, "pcmu"))
        silence = np.zeros_like(pcm)
        gap = np.zeros(int(line.pause_after * RATE), dtype=np.int16)
        if line.speaker == "customer":
            left += [pcm, gap]
            right += [silence, gap.copy()]
        else:
            right += [pcm, gap]
            left += [silence, gap.copy()]
        placed.append(Placed(line.speaker, line.text, t, t + len(pcm) / RATE))
        t += (len(pcm) + len(gap)) / RATE
    lpcm, rpcm = np.concatenate(left), np.concatenate(right)
    recorder = StereoRecorder(path, RATE)
    for i in range(0, len(lpcm) - FRAME + 1, FRAME):
        recorder.write(lpcm[i : i + FRAME], rpcm[i : i + FRAME])
    recorder.close()
    return placed
