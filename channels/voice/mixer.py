"""Conference mixing with per-member audibility, sans-IO.

One :class:`Conference` serves a two-party bridge, a three-way call and the supervisor
modes:

- ``FULL``: hears everyone, heard by everyone (a party; a barging supervisor);
- ``LISTEN``: hears everyone, heard by nobody (silent monitoring);
- ``WHISPER``: hears everyone, heard only by its ``target`` (coaching the agent).

A member never hears itself. Sums are taken in int32 and clipped to int16.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

K = TypeVar("K")
Pcm = npt.NDArray[np.int16]


class Role(StrEnum):
    FULL = "full"
    LISTEN = "listen"
    WHISPER = "whisper"


@dataclass(slots=True)
class Member(Generic[K]):
    role: Role = Role.FULL
    target: K | None = None  # whom a WHISPER member is heard by


@dataclass(slots=True, eq=False)  # identity: conferences are kept in sets
class Conference(Generic[K]):
    members: dict[K, Member[K]] = field(default_factory=dict)

    def add(self, key: K, role: Role = Role.FULL, target: K | None = None) -> None:
        if role is Role.WHISPER and target is None:
            raise ValueError("a whisper needs the member it is heard by")
        self.members[key] = Member(role, target)

    def remove(self, key: K) -> None:
        self.members.pop(key, None)
        for m in self.members.values():
            if m.target == key:
                m.role, m.target = Role.LISTEN, None

    def __contains__(self, key: object) -> bool:
        return key in self.members

    def __len__(self) -> int:
        return len(self.members)

    def mix(self, inputs: dict[K, Pcm], frame: int = 160) -> dict[K, Pcm]:
        """What each member hears this frame; missing inputs count as silence."""
        total = np.zeros(frame, dtype=np.int32)
        public: dict[K, npt.NDArray[np.int32]] = {}
        private: dict[K, npt.NDArray[np.int32]] = {}
        for key, member in self.members.items():
            pcm = inputs.get(key)
            if pcm is None:
                continue
            wide = pcm.astype(np.int32)
            if member.role is Role.FULL:
                total += wide
                public[key] = wide
            elif member.role is Role.WHISPER and member.target is not None:
                acc = private.get(member.target)
                private[member.target] = wide if acc is None else acc + wide
        out: dict[K, Pcm] = {}
        for key in self.members:
            heard = total - public[key] if key in public else total.copy()
            extra = private.get(key)
            if extra is not None:
                heard = heard + extra
            out[key] = np.clip(heard, -32768, 32767).astype(np.int16)
        return out
