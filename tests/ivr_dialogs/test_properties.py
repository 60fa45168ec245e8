"""Properties: whatever callers do, a session never raises, always ends within the step limit,
and only ever visits nodes that exist. Checked on the sample library and on generated dialogs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr_dialogs import (
    Digit,
    Digits,
    HangUp,
    Interpreter,
    LookupResult,
    NoInput,
    Utterance,
    load_dialog,
)
from ivr_dialogs.expressions import Expression, ExpressionError, Scope

LIBRARY = Path(__file__).parents[2] / "ivr_dialogs" / "library"
SAMPLES = {p.stem: load_dialog(p) for p in sorted(LIBRARY.glob("*.yaml"))}
STEP_LIMIT = 200
PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

words = st.sampled_from(
    [
        "yes", "no", "balance", "agent", "one", "two", "three", "four", "emergency", "message",
        "promise", "paid", "sure", "television", "12", "50", "dollars", "tomorrow", "december",
        "3rd", "2026-01-20", "help", "sales", "é", "네",
    ]
)  # fmt: skip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
lookup_results = st.one_of(
    st.builds(LookupResult, st.sampled_from([200, 201, 404, 500]), json_values, st.none()),
    st.builds(
        LookupResult,
        st.just(200),
        st.fixed_dictionaries(
            {
                "balance": st.fixed_dictionaries(
                    {"amount": st.floats(0, 1e6), "due_date": st.text(max_size=10)}
                ),
                "reference": st.text(max_size=6),
            }
        ),
        st.none(),
    ),
    st.builds(LookupResult, st.none(), st.none(), st.sampled_from(["timeout", "refused"])),
)
events = st.one_of(
    st.builds(Digit, st.sampled_from(list("0123456789*#"))),
    st.builds(Digits, st.text(alphabet="0123456789*#", max_size=12)),
    st.builds(Utterance, st.lists(words, max_size=5).map(" ".join), st.floats(0, 1)),
    st.builds(Utterance, st.text(max_size=20), st.floats(0, 1)),
    st.just(NoInput()),
    lookup_results,
    st.just(HangUp()),
)
callers = st.fixed_dictionaries(
    {
        "number": st.text(alphabet="+0123456789", max_size=12),
        "vip": st.integers(0, 5),
        "name": st.text(max_size=8),
        "language": st.sampled_from(["en", "es", "fr", None]),
        "account_last4": st.text(alphabet="0123456789", min_size=4, max_size=4),
        "amount_due": st.floats(0, 1e5),
        "due_date": st.just("2026-01-01"),
        "promise_deadline": st.just("2026-01-31"),
    }
)
moments = st.datetimes(datetime(2025, 1, 1), datetime(2027, 12, 31))


def assert_sound(interpreter: Interpreter, events_fed: list[Any]) -> None:
    """Feed events, then finish the call; check the properties all along."""
    dialog = interpreter.dialog
    interpreter.start()
    for event in events_fed:
        interpreter.feed(event)
        assert interpreter.steps <= STEP_LIMIT
    # Whatever state it is in, a silent caller (and failing lookups) must end the session.
    for _ in range(STEP_LIMIT + 1):
        if interpreter.done:
            break
        if interpreter.waiting_for == "lookup":
            interpreter.feed(LookupResult(error="timeout"))
        else:
            interpreter.feed(NoInput())
    assert interpreter.done
    assert interpreter.steps <= STEP_LIMIT
    trace = json.loads(json.dumps(interpreter.trace))
    for label in trace["nodes"]:
        flow, _, node = label.rpartition(".")
        assert node in dialog.flows[flow or "main"].nodes, label
    assert not [e for e in trace["errors"] if e.startswith("internal error")], trace["errors"]
    assert trace["outcome"] in {
        "completed", "queued", "transferred", "voicemail", "callback", "hangup",
        "caller_hangup", "step_limit", "error",
    }  # fmt: skip


@PROPERTY_SETTINGS
@given(
    name=st.sampled_from(sorted(SAMPLES)),
    caller=callers,
    now=moments,
    fed=st.lists(events, max_size=25),
)
def test_sample_dialogs_survive_any_caller(
    name: str, caller: dict[str, Any], now: datetime, fed: list[Any]
) -> None:
    interpreter = Interpreter(SAMPLES[name], caller, now, step_limit=STEP_LIMIT)
    assert_sound(interpreter, fed)


KINDS = ["say", "menu", "ask", "branch", "set", "goto", "lookup", "queue", "hangup", "survey"]


@st.composite
def generated_dialogs(draw: st.DrawFn) -> str:
    """Random but schema-valid dialogs: any shape of graph, loops included."""
    count = draw(st.integers(1, 8))
    ids = [f"n{i}" for i in range(count)]
    target = st.sampled_from(ids)
    retry = st.fixed_dictionaries({"retries": st.integers(0, 3), "fallback": target})
    nodes: dict[str, Any] = {}
    for node_id in ids:
        kind = draw(st.sampled_from(KINDS))
        node: dict[str, Any] = {"type": kind}
        if kind == "say":
            node.update(text="Count {{ counter }}", next=draw(target))
        elif kind == "menu":
            node.update(
                prompt="Pick",
                options=[
                    {"digit": str(i), "phrases": [f"option {i}"], "next": draw(target)}
                    for i in range(draw(st.integers(1, 3)))
                ],
                no_input=draw(retry),
                no_match=draw(retry),
            )
        elif kind == "ask":
            node.update(
                prompt="Tell me",
                var="answer",
                expect=draw(st.sampled_from(["digits", "speech", "yes_no", "date", "amount"])),
                next=draw(target),
                no_input=draw(retry),
                no_match=draw(retry),
            )
        elif kind == "branch":
            node.update(
                cases=[{"when": "counter > 2", "next": draw(target)}], **{"else": draw(target)}
            )
        elif kind == "set":
            node.update(values={"counter": "counter + 1"}, next=draw(target))
        elif kind == "goto":
            node.update(target=draw(target))
        elif kind == "lookup":
            node.update(
                url="http://127.0.0.1:9/{{ counter }}",
                map={"found": "value"},
                next=draw(target),
                on_error=draw(target),
            )
        elif kind == "queue":
            node.update(queue="general", priority="{{ counter }}")
        elif kind == "hangup":
            node.update(reason="done")
        else:
            node.update(
                questions=[
                    {"id": "score", "kind": "scale", "prompt": "Score?"},
                    {"id": "why", "kind": "text", "prompt": "Why?", "when": "n0.score < 3"},
                ],
                next=draw(target),
                no_input=draw(retry),
                no_match=draw(retry),
            )
        nodes[node_id] = node
    return yaml.safe_dump(
        {"dialog": "generated", "start": "n0", "variables": {"counter": 0}, "nodes": nodes}
    )


@PROPERTY_SETTINGS
@given(source=generated_dialogs(), fed=st.lists(events, max_size=20), now=moments)
def test_generated_dialogs_survive_any_caller(source: str, fed: list[Any], now: datetime) -> None:
    dialog = load_dialog(source, file="generated.yaml")
    assert_sound(Interpreter(dialog, {}, now, step_limit=STEP_LIMIT), fed)


tokens = st.sampled_from(
    [
        "a", "b.c", "x[0]", "1", "2.5", "'t'", '"u"', "true", "null", "+", "-", "*", "/", "%",
        "==", "<", ">=", "and", "or", "not", "in", "??", "(", ")", "[", "]", ",", "len(",
        "money(", "number(", ".", "min(",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(tokens, min_size=1, max_size=12))
def test_expressions_fail_only_with_clear_expression_errors(parts: list[str]) -> None:
    source = " ".join(parts)
    variables = {"a": 3, "b": {"c": "text"}, "x": [1, 2]}
    try:
        value = Expression(source).evaluate(Scope(variables, {}))
    except ExpressionError as exc:
        assert str(exc)
    else:
        json.dumps(value)
