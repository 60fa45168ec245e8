"""The safe expression language and templates: values, operators, functions, clear errors."""

from __future__ import annotations

import pytest

from ivr_dialogs.expressions import (
    Expression,
    ExpressionError,
    Scope,
    UnknownName,
    evaluate,
    format_value,
)
from ivr_dialogs.templates import Template

VARS = {
    "caller": {"vip": 2, "number": "+4420", "tags": ["gold"]},
    "balance": 12.5,
    "pin": "1234",
    "items": [{"id": 7}, {"id": 8}],
    "ok": True,
    "nothing": None,
}


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("8 / 2", 4),
        ("7 % 3", 1),
        ("-balance + 2", -10.5),
        ("'a' + \"b\"", "ab"),
        ("caller.vip >= 2 and ok", True),
        ("not ok or caller.vip == 2", True),
        ("pin == '1234'", True),
        ("pin == 1234", False),
        ("1 == true", False),
        ("items.1.id", 8),
        ("items[0].id + 1", 8),
        ("'gold' in caller.tags", True),
        ("'44' in caller.number", True),
        ("'vip' in caller", True),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("caller.segment ?? 'standard'", "standard"),
        ("nothing ?? 5", 5),
        ("unknown_thing ?? 0", 0),
        ("balance ?? 0", 12.5),
        ("len(pin) == 4 and starts_with(caller.number, '+44')", True),
        ("number('12.5') + int('3')", 15.5),
        ("text(3) + 'x'", "3x"),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("money(balance)", "12.50"),
        ("digits(pin)", "1 2 3 4"),
        ("min(3, 1, 2) + max([4, 9])", 10),
        ("between(caller.vip, 1, 3)", True),
        ("'09:00' <= '14:05' and '14:05' < '17:00'", True),
        ("lower('ABC') + upper('d') + trim('  e ')", "abcDe"),
        ("contains(caller.tags, 'gold')", True),
        ("abs(-3)", 3),
        ("null == nothing", True),
        ("if(caller.vip > 1, 'VIP', 'standard')", "VIP"),
        ("if(ok, 1, missing_var)", 1),  # only the chosen branch is evaluated
    ],
)
def test_values(source: str, value: object) -> None:
    assert evaluate(source, VARS) == value


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("balanse > 0", "unknown variable 'balanse' in `balanse > 0`"),
        ("caller.segment == 'x'", "'caller' has no field 'segment'"),
        ("'total ' + 3", "cannot add text 'total ' and number 3 (use text(x) or number(x)"),
        ("pin > 1000", "cannot compare text '1234' > number 1000"),
        ("caller.vip and ok", "'and' needs true or false, got number 2"),
        ("not pin", "'not' needs true or false, got text"),
        ("balance / 0", "division by zero"),
        ("items[5]", "'items' has no item 5 (it has 2)"),
        ("balance.amount", "'balance' is number, it has no field 'amount'"),
        ("number('abc')", "number() cannot read 'abc' as a number"),
        ("len(5)", "len() needs text, a list or a record, got number"),
        ("-pin", "'-' needs a number, got text"),
        ("if(1, 2, 3)", "if() needs true or false, got number 1"),
        ("99999999 * 99999999", "number out of range"),
    ],
)
def test_runtime_errors_are_clear(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(source, VARS)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1 +", "unexpected 'end of expression' at column 4"),
        ("(1 + 2", "expected ')', found 'end of expression'"),
        ("a = 1", "unexpected character '='"),
        ("__import__('os')", "unknown function '__import__'"),
        ("open('x')", "unknown function 'open'"),
        ("len(1, 2)", "len() takes 1 argument(s), got 2"),
        ("", "empty expression"),
        ("1 2", "unexpected '2'"),
        ("a.", "expected a field name after '.'"),
    ],
)
def test_syntax_errors_are_clear(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        Expression(source)
    assert message in str(caught.value)


def test_unknown_names_are_their_own_error_class_and_names_read_skip_guarded_ones() -> None:
    with pytest.raises(UnknownName):
        evaluate("ghost", {})
    expression = Expression("caller.vip > 1 and (segment ?? 'x') == 'y' and items[n].id > 0")
    assert expression.names == {"caller", "items", "n"}


def test_a_loop_cannot_grow_text_without_bound() -> None:
    with pytest.raises(ExpressionError, match="text longer than 10000"):
        evaluate("s + s", {"s": "x" * 6000})


def test_no_python_escapes() -> None:
    # Attribute access reads fields of records only; there is no way to reach Python objects.
    for source in ("caller.__class__", "''.join", "pin.upper"):
        with pytest.raises(ExpressionError):
            evaluate(source, VARS)


def test_locals_shadow_globals() -> None:
    scope = Scope({"x": 1}, {"x": 2, "y": 3})
    assert Expression("x + y").evaluate(scope) == 4


def test_templates_render_text_and_keep_lone_values_typed() -> None:
    scope = Scope(VARS, {})
    assert Template("Balance {{ money(balance) }} for {{ caller.number }}").render(scope) == (
        "Balance 12.50 for +4420"
    )
    assert Template("{{ caller.vip + 1 }}").value(scope) == 3
    assert Template("vip {{ caller.vip }}").value(scope) == "vip 2"
    assert Template("no holes").is_constant
    assert (
        Template("{{ pin }}/x").render(scope, escape=lambda s: s.replace("1", "%31")) == "%31234/x"
    )
    assert Template("{{ a }} {{ b.c }}").names == {"a", "b"}
    with pytest.raises(ExpressionError, match="unbalanced"):
        Template("Hello {{ name")
    with pytest.raises(ExpressionError, match="unexpected"):
        Template("Hello {{ name + }}")


def test_values_read_naturally_in_prompts() -> None:
    assert [format_value(v) for v in (12.5, 3.0, 0.333, True, None, [1, "a"], 7)] == [
        "12.5",
        "3",
        "0.33",
        "yes",
        "",
        "1, a",
        "7",
    ]
