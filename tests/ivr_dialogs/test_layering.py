"""The interpreter core is sans-IO, and ivr_dialogs stands alone (no hub, web, channels, speech)."""

from __future__ import annotations

import subprocess
import sys

CORE = (
    "ivr_dialogs.interpreter",
    "ivr_dialogs.validator",
    "ivr_dialogs.dialog_tests",
    "ivr_dialogs.versions",
)


def imported_after(*modules: str) -> set[str]:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(output.split())


def test_the_core_does_no_io() -> None:
    loaded = imported_after(*CORE)
    assert not loaded & {"asyncio", "httpx", "http", "anyio"}


def test_ivr_dialogs_imports_no_other_project_package() -> None:
    loaded = imported_after("ivr_dialogs", "ivr_dialogs.cli", "ivr_dialogs.simulator")
    assert not loaded & {"hub", "web", "channels", "speech", "models"}
