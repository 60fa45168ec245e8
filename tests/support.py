"""Helpers for tests: real services and tools, or a skip that says why.

`.ci/run` sets ``HUB_TEST_REQUIRE_SERVICES=1``; then a missing service or tool is a failure,
not a skip, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil

import pytest

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
