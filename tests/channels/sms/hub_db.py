"""A database fixture for channel tests: a copy of the session's seeded SQLite template
(``seeded_sqlite`` in tests/conftest.py), or a fresh PostgreSQL database per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on embedded SQLite and on PostgreSQL (seeded by ``services``)."""
    if request.param == "sqlite":
        target = tmp_path / "hub.sqlite3"
        shutil.copyfile(request.getfixturevalue("seeded_sqlite"), target)
        return f"sqlite+aiosqlite:///{target}"
    return request.getfixturevalue("migrated_postgres_url")
