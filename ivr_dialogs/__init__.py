"""Contact Hub dialogs: the language admins design self-service with, and its interpreter.

The interpreter is sans-IO (``Interpreter.feed(event) -> actions``); a ``Port`` carries the
actions out over voice or text, and ``run_dialog`` drives one session over a port.
"""

import importlib
from typing import Any

from ivr_dialogs.actions import (
    Action,
    Ask,
    Callback,
    Hangup,
    Listen,
    Lookup,
    Queue,
    Say,
    SurveyAnswer,
    Transfer,
    Voicemail,
)
from ivr_dialogs.events import (
    Digit,
    Digits,
    Event,
    HangUp,
    LookupResult,
    NoInput,
    Timeout,
    Utterance,
)
from ivr_dialogs.expressions import ExpressionError
from ivr_dialogs.hours import BusinessHours
from ivr_dialogs.interpreter import CallerInfo, Interpreter
from ivr_dialogs.loader import Dialog, DialogError, Problem, load_dialog
from ivr_dialogs.schema import json_schema
from ivr_dialogs.validator import validate, validate_file
from ivr_dialogs.versions import DialogHistory, DialogVersion, VersionError

_ASYNC_LAYER = {
    "Port": "ivr_dialogs.ports",
    "TextPort": "ivr_dialogs.ports",
    "Trace": "ivr_dialogs.runner",
    "run_dialog": "ivr_dialogs.runner",
    "secrets_from_env": "ivr_dialogs.runner",
}


def __getattr__(name: str) -> Any:
    """The async layer (runner, ports, httpx) loads on first use, so the core stays sans-IO."""
    module = _ASYNC_LAYER.get(name)
    if module is None:
        raise AttributeError(f"module 'ivr_dialogs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Action",
    "Ask",
    "BusinessHours",
    "Callback",
    "CallerInfo",
    "Dialog",
    "DialogError",
    "DialogHistory",
    "DialogVersion",
    "Digit",
    "Digits",
    "Event",
    "ExpressionError",
    "HangUp",
    "Hangup",
    "Interpreter",
    "Listen",
    "Lookup",
    "LookupResult",
    "NoInput",
    "Port",
    "Problem",
    "Queue",
    "Say",
    "SurveyAnswer",
    "TextPort",
    "Timeout",
    "Trace",
    "Transfer",
    "Utterance",
    "VersionError",
    "Voicemail",
    "json_schema",
    "load_dialog",
    "run_dialog",
    "secrets_from_env",
    "validate",
    "validate_file",
]
