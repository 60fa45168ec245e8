"""Dialog versions: immutable, numbered, one published; diffs and rollbacks. No storage here.

The hub persists ``DialogHistory.to_dict()`` (or one row per ``DialogVersion``); this module
holds the rules: a version never changes, publishing checks the dialog first (it must load,
have no validation errors and pass its own dialog tests), and a rollback is a *new* version
whose source equals an old one, so the history always says what happened.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ivr_dialogs.dialog_tests import run_tests
from ivr_dialogs.loader import DialogError, load_dialog_text
from ivr_dialogs.validator import validate


class VersionError(Exception):
    """A version that does not exist, or one that may not be published (``problems`` say why)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message + "".join(f"\n  {p}" for p in self.problems))


def sha256_of(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class DialogVersion:
    number: int
    source: str
    sha256: str
    created_at: datetime
    author: str
    note: str = ""

    @classmethod
    def create(
        cls,
        number: int,
        source: str,
        author: str,
        created_at: datetime | None = None,
        note: str = "",
    ) -> DialogVersion:
        return cls(number, source, sha256_of(source), created_at or datetime.now(UTC), author, note)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "source": self.source,
            "sha256": self.sha256,
            "created_at": self.created_at.isoformat(),
            "author": self.author,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DialogVersion:
        version = cls(
            int(data["number"]),
            data["source"],
            data["sha256"],
            datetime.fromisoformat(data["created_at"]),
            data["author"],
            data.get("note", ""),
        )
        if sha256_of(version.source) != version.sha256:
            raise VersionError(f"version {version.number}: source does not match its sha256")
        return version


def publish_problems(source: str, recorded: Collection[tuple[str, str]] = ()) -> list[str]:
    """Why a source may not go live: load errors, validation errors, failing dialog tests.
    ``recorded``: the (language, prompt text) pairs that have an uploaded recording."""
    try:
        dialog = load_dialog_text(source, file="<version>")
    except DialogError as exc:
        return [str(p) for p in exc.problems]
    problems = [str(p) for p in validate(dialog, recorded) if p.severity == "error"]
    for result in run_tests(dialog):
        problems += [f"test '{result.name}': {failure}" for failure in result.failures]
    return problems


class DialogHistory:
    """All versions of one dialog and which one is published."""

    def __init__(
        self, name: str, versions: Iterable[DialogVersion] = (), published: int | None = None
    ) -> None:
        self.name = name
        self._versions = tuple(versions)
        for index, version in enumerate(self._versions, start=1):
            if version.number != index:
                raise VersionError(f"versions must be numbered 1, 2, 3...; got {version.number}")
        if published is not None:
            self.get(published)
        self._published = published

    @property
    def versions(self) -> tuple[DialogVersion, ...]:
        return self._versions

    @property
    def latest(self) -> DialogVersion | None:
        return self._versions[-1] if self._versions else None

    @property
    def published(self) -> DialogVersion | None:
        return None if self._published is None else self.get(self._published)

    def get(self, number: int) -> DialogVersion:
        if not 1 <= number <= len(self._versions):
            raise VersionError(f"dialog '{self.name}' has no version {number}")
        return self._versions[number - 1]

    def add(
        self, source: str, author: str, *, note: str = "", now: datetime | None = None
    ) -> DialogVersion:
        """Save an edit as the next version (the same source as the latest adds nothing)."""
        latest = self.latest
        if latest is not None and latest.sha256 == sha256_of(source):
            return latest
        version = DialogVersion.create(len(self._versions) + 1, source, author, now, note)
        self._versions = (*self._versions, version)
        return version

    def publish(self, number: int, *, check: bool = True) -> DialogVersion:
        """Make a version the live one, after it loads, validates and passes its tests."""
        version = self.get(number)
        if check:
            problems = publish_problems(version.source)
            if problems:
                raise VersionError(
                    f"version {number} of '{self.name}' cannot be published", problems
                )
        self._published = number
        return version

    def diff(self, a: int, b: int) -> str:
        """A unified diff from version ``a`` to version ``b``."""
        old, new = self.get(a), self.get(b)
        return "".join(
            difflib.unified_diff(
                old.source.splitlines(keepends=True),
                new.source.splitlines(keepends=True),
                fromfile=f"{self.name} v{a} ({old.author}, {old.created_at:%Y-%m-%d %H:%M})",
                tofile=f"{self.name} v{b} ({new.author}, {new.created_at:%Y-%m-%d %H:%M})",
            )
        )

    def rollback(
        self,
        number: int,
        author: str = "system",
        *,
        publish: bool = True,
        now: datetime | None = None,
    ) -> DialogVersion:
        """A new version equal to version ``number`` (published unless told otherwise)."""
        old = self.get(number)
        version = DialogVersion.create(
            len(self._versions) + 1, old.source, author, now, f"rollback to version {number}"
        )
        self._versions = (*self._versions, version)
        if publish:
            self.publish(version.number)
        return version

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "published": self._published,
            "versions": [v.to_dict() for v in self._versions],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DialogHistory:
        return cls(
            data["name"],
            (DialogVersion.from_dict(v) for v in data["versions"]),
            data.get("published"),
        )
