"""Every class of validator finding, each pointing at the line to fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivr_dialogs import DialogError, load_dialog
from ivr_dialogs.loader import Problem
from ivr_dialogs.validator import has_errors, validate, validate_file


def problems(text: str) -> list[Problem]:
    return validate_file(textwrap.dedent(text).lstrip())


def codes(text: str) -> list[tuple[int, str, str]]:
    return [(p.line, p.code, p.severity) for p in problems(text)]


GOOD = """
dialog: good
start: menu
nodes:
  menu:
    type: menu
    prompt: Press 1.
    options: [{digit: "1", next: bye}]
    no_input: {retries: 1, fallback: bye}
    no_match: {retries: 1, fallback: bye}
  bye: {type: hangup}
"""


def test_a_sound_dialog_has_no_problems() -> None:
    assert problems(GOOD) == []


def test_invalid_yaml_points_at_the_line() -> None:
    found = problems("dialog: x\nstart: a\nnodes:\n  a: {type: say\n")
    assert [(p.code, p.line) for p in found] == [("yaml", 5)]
    assert str(found[0]).startswith("<dialog>:5: error: invalid YAML")


def test_schema_errors_name_the_field_and_line() -> None:
    found = problems("""
        dialog: x
        start: a
        nodes:
          a:
            type: ask
            expect: digitz
            var: x
            prompt: hi
            next: a
          b:
            type: teleport
          c:
            type: say
            txt: hello
        """)
    by_line = {p.line: p.message for p in found}
    assert "nodes.a.expect" in by_line[6] and "digits" in by_line[6]
    assert "unknown node type" in by_line[11]
    assert by_line[14] == "nodes.c.txt: unknown field"
    assert all(p.code == "schema" for p in found)


def test_duplicate_keys_are_refused() -> None:
    found = problems("""
        dialog: x
        start: a
        nodes:
          a: {type: hangup}
          a: {type: hangup}
        """)
    assert [(p.line, p.code) for p in found] == [(5, "duplicate")]


def test_expression_syntax_errors_are_load_errors_with_lines() -> None:
    with pytest.raises(DialogError) as caught:
        load_dialog(
            textwrap.dedent("""
            dialog: x
            start: a
            nodes:
              a:
                type: branch
                cases:
                  - when: caller.vip >=
                    next: b
                else: b
              b: {type: say, text: "Hi {{ name( }}"}
            """).lstrip(),
            file="x.yaml",
        )
    lines = [(p.line, p.code) for p in caller_problems(caught.value)]
    assert lines == [(7, "syntax"), (10, "syntax")]
    assert "x.yaml:7: error: bad expression: unexpected 'end of expression'" in str(caught.value)


def caller_problems(error: DialogError) -> list[Problem]:
    return error.problems


def test_unknown_targets() -> None:
    assert codes("""
        dialog: x
        start: a
        on_error: nowhere
        nodes:
          a:
            type: branch
            cases: [{when: "true", next: missing}]
            else: b
          b: {type: goto, target: gone}
        """) == [
        (3, "unknown-target", "error"),
        (7, "unknown-target", "error"),
        (9, "unknown-target", "error"),
    ]


def test_unreachable_nodes_are_warnings() -> None:
    found = problems(GOOD + "  orphan: {type: hangup}\n")
    assert [(p.line, p.code, p.severity) for p in found] == [(11, "unreachable", "warning")]
    assert not has_errors(found)


def test_input_nodes_without_no_input_or_no_match_handling() -> None:
    text = GOOD.replace("    no_input: {retries: 1, fallback: bye}\n", "").replace(
        "    no_match: {retries: 1, fallback: bye}\n", ""
    )
    assert codes(text) == [(4, "no-input-handling", "error"), (4, "no-match-handling", "error")]


def test_loops_with_no_exit() -> None:
    found = problems("""
        dialog: x
        start: a
        nodes:
          a: {type: say, text: one, next: b}
          b:
            type: menu
            prompt: again?
            options: [{digit: "1", next: a}]
            no_input: {retries: 1, fallback: a}
            no_match: {retries: 1, fallback: b}
        """)
    assert [(p.line, p.code) for p in found] == [(4, "loop-no-exit")]
    assert "a, b" in found[0].message


def test_a_loop_with_a_way_out_is_fine() -> None:
    assert (
        problems("""
        dialog: x
        start: a
        variables: {n: 0}
        nodes:
          a: {type: set, values: {n: n + 1}, next: b}
          b:
            type: branch
            cases: [{when: n < 3, next: a}]
            else: c
          c: {type: hangup}
        """)
        == []
    )


def test_a_loop_that_changes_nothing_is_a_warning() -> None:
    found = problems("""
        dialog: x
        start: a
        variables: {n: 0}
        nodes:
          a: {type: say, text: waiting, next: b}
          b:
            type: branch
            cases: [{when: n < 3, next: a}]
            else: c
          c: {type: hangup}
        """)
    assert [(p.line, p.code, p.severity) for p in found] == [(5, "loop-no-progress", "warning")]


def test_variables_read_before_they_are_set() -> None:
    found = problems("""
        dialog: x
        start: ask
        nodes:
          ask:
            type: ask
            expect: digits
            var: pin
            prompt: "PIN for {{ acount }}"
            no_input: {retries: 1, fallback: check}
            no_match: {retries: 1, fallback: check}
            next: check
          check:
            type: branch
            cases: [{when: pin == '1234', next: ok}]
            else: ok
          ok: {type: say, text: "Bye {{ nickname ?? 'friend' }}"}
        """)
    assert [(p.line, p.code, p.severity) for p in found] == [
        (8, "read-unset", "error"),  # acount: a typo, never set anywhere
        (14, "maybe-unset", "warning"),  # pin: not set when the fallback is taken
    ]
    assert "'acount', which is never set" in found[0].message


def test_missing_prompts_in_a_declared_language() -> None:
    found = problems("""
        dialog: x
        languages: [en, fr]
        start: a
        nodes:
          a: {type: say, text: {en: Hello}, next: b}
          b: {type: hangup, prompt: Bye, reason: done}
          c: {type: say, text: {en: Hi, fr: Salut, de: Hallo}}
        """)
    assert [(p.line, p.code) for p in found] == [
        (5, "missing-prompt"),
        (6, "missing-prompt"),
        (7, "unknown-language"),
        (7, "unreachable"),
    ]
    assert "no prompt in 'fr'" in found[0].message


def test_phrases_missing_for_a_declared_language_are_a_warning() -> None:
    found = problems("""
        dialog: x
        languages: [en, es]
        start: m
        nodes:
          m:
            type: menu
            prompt: {en: Press 1, es: Oprima 1}
            options:
              - digit: "1"
                phrases: {en: [sales]}
                next: bye
              - {digit: "2", phrases: [agent, agente], next: bye}
            no_input: {retries: 1, fallback: bye}
            no_match: {retries: 1, fallback: bye}
          bye: {type: hangup}
        """)
    assert [(p.line, p.code, p.severity) for p in found] == [(10, "missing-phrases", "warning")]
    assert "no phrases in es" in found[0].message


def test_subdialog_checks() -> None:
    found = problems("""
        dialog: x
        start: a
        subdialogs:
          pin:
            params: [label]
            start: r
            nodes:
              r: {type: return, values: {ok: "true"}}
        nodes:
          a:
            type: subdialog
            dialog: pin
            params: {lable: "'x'"}
            outputs: {ok: ok, other: nope}
            next: b
          b:
            type: subdialog
            dialog: pni
            next: c
          c: {type: hangup}
        """)
    assert [(p.line, p.code) for p in found] == [
        (10, "subdialog-params"),
        (13, "subdialog-params"),
        (14, "read-unset"),
        (18, "unknown-subdialog"),
    ]


def test_reserved_variables_and_secrets_in_yaml() -> None:
    found = problems("""
        dialog: x
        start: a
        nodes:
          a: {type: set, values: {caller: "1"}, next: b}
          b:
            type: lookup
            url: https://crm.example/x
            headers: {Authorization: Bearer abc123}
            secret_headers: {X-Key: "${lower}", X-Other: plain}
            next: c
            on_error: c
          c: {type: hangup}
        """)
    assert [(p.line, p.code) for p in found] == [
        (4, "reserved-variable"),
        (8, "secret-in-yaml"),
        (9, "secret-placeholder"),
        (9, "secret-placeholder"),
    ]


def test_problems_format_as_file_line_and_the_samples_are_clean() -> None:
    library = Path(__file__).parents[2] / "ivr_dialogs" / "library"
    samples = sorted(library.glob("*.yaml"))
    assert samples
    for path in samples:
        assert validate(load_dialog(path)) == [], path
