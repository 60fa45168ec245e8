"""Helpers for tests: real services and tools, or a skip that says why.

`.ci/run` sets ``HUB_TEST_REQUIRE_SERVICES=1``; then a missing service or tool is a failure,
not a skip, so CI can never pass by skipping.
"""

from __future__ import annotations

import functools
import os
import shutil

import pytest

from hub.auth import hash_password

REQUIRE_SERVICES = os.environ.get("HUB_TEST_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail when CI has made the service mandatory."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required by HUB_TEST_REQUIRE_SERVICES=1: {reason}")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """Path of a system tool (sipp, tesseract, chromium…), or skip/fail saying it is missing."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (./dev.sh test installs it)")
    return path  # type: ignore[return-value]


# Real argon2 hashes, computed once per password for the whole test run.
cached_hash = functools.cache(hash_password)


def demo_password(username: str) -> str:
    """Tests log in as the demo users with ``<username>-pass``."""
    return f"{username}-pass"


async def seed_test_demo(url: str) -> None:
    """Seed the demo organisation into a migrated database, with the test passwords."""
    from hub.db import make_engine, make_sessionmaker
    from hub.seed import seed_demo

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            await seed_demo(
                db,
                password_for=demo_password,
                hasher=cached_hash,
                sip_password_for=lambda username: f"{username}-sip",
            )
    finally:
        await engine.dispose()
