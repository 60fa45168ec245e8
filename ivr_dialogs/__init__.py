"""Contact Hub dialogs: the language admins design self-service with, and its interpreter.

The interpreter is sans-IO (``Interpreter.feed(event) -> actions``); a ``Port`` carries the
actions out over voice or text, and ``run_dialog`` drives one session over a port.
"""

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

__all__ = [
    "Action",
    "Ask",
    "BusinessHours",
    "Callback",
    "CallerInfo",
    "Dialog",
    "DialogError",
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
    "Problem",
    "Queue",
    "Say",
    "SurveyAnswer",
    "Timeout",
    "Transfer",
    "Utterance",
    "Voicemail",
    "json_schema",
    "load_dialog",
]
