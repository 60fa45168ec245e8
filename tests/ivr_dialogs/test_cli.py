"""`contacthub dialog ...`: the sample library's own tests, failing cases, the simulator by pipe."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from ivr_dialogs.cli import dialog

LIBRARY = Path(__file__).parents[2] / "ivr_dialogs" / "library"
SAMPLES = sorted(LIBRARY.glob("*.yaml"))


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(dialog, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.output


def test_the_library_has_the_four_samples() -> None:
    assert {p.stem for p in SAMPLES} >= {
        "main_menu",
        "after_hours",
        "satisfaction_survey",
        "arrears_reminder",
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_each_sample_passes_its_own_dialog_tests(sample: Path) -> None:
    code, output = run("test", str(sample))
    assert code == 0, output
    assert "FAIL" not in output
    passed = int(output.strip().splitlines()[-1].split()[0])
    assert passed >= 5


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_each_sample_validates_and_matches_the_json_schema(sample: Path) -> None:
    code, output = run("validate", str(sample))
    assert (code, output.strip()) == (0, f"{sample}: ok")
    code, schema_text = run("schema")
    schema = json.loads(schema_text)
    jsonschema.validate(yaml.safe_load(sample.read_text()), schema)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


MENU = """
    dialog: tiny
    start: menu
    nodes:
      menu:
        type: menu
        prompt: Press 1 for sales.
        options: [{digit: "1", phrases: [sales], next: sales}]
        no_input: {retries: 0, fallback: bye}
        no_match: {retries: 0, fallback: bye}
      sales: {type: queue, queue: sales, prompt: Connecting to sales.}
      bye: {type: hangup, prompt: Goodbye.}
"""


def test_a_failing_case_is_reported_with_its_reason_and_exit_code_1(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tiny.yaml",
        MENU
        + """
    tests:
      - name: sales by digit
        inputs: ["1"]
        expect: {outcome: queued, handoff: {name: sales}}
      - name: wrong expectations
        inputs: ["2"]
        expect:
          prompts: [Connecting to sales]
          outcome: queued
          variables: {x: 1}
          path: [menu, sales]
""",
    )
    code, output = run("test", str(path))
    assert code == 1
    lines = output.splitlines()
    assert lines[0] == f"PASS {path}: sales by digit"
    assert lines[1] == f"FAIL {path}: wrong expectations"
    assert "expected prompt 'Connecting to sales'" in output
    assert "outcome is 'hangup', expected 'queued'" in output
    assert "variable 'x' is not set" in output
    assert "expected to pass node 'sales'" in output
    assert lines[-1] == "1 passed, 1 failed"


def test_a_separate_tests_file_and_a_missing_lookup_answer(tmp_path: Path) -> None:
    write(tmp_path, "tiny.yaml", MENU)
    tests = write(
        tmp_path,
        "tiny.tests.yaml",
        """
        dialog: tiny.yaml
        cases:
          - name: speech
            inputs: [I want sales]
            expect: {prompts: [Connecting to sales], outcome: queued}
          - name: caller stays silent
            inputs: ["<noinput>"]
            expect: {prompts: [Goodbye], outcome: hangup}
        """,
    )
    code, output = run("test", str(tests))
    assert code == 0, output
    assert output.splitlines()[-1] == "2 passed, 0 failed"


def test_dialog_test_also_fails_on_validation_errors(tmp_path: Path) -> None:
    broken = MENU.replace("fallback: bye}\n      sales", "fallback: byee}\n      sales")
    path = write(tmp_path, "bad.yaml", broken + "    tests: [{name: sales, inputs: ['1']}]\n")
    code, output = run("test", str(path))
    assert code == 1
    assert "INVALID " in output and "no node named 'byee'" in output
    assert f"PASS {path}: sales" in output


def test_validate_reports_file_line_and_fails(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        MENU.replace("fallback: bye}\n      sales", "fallback: byee}\n      sales"),
    )
    code, output = run("validate", str(path))
    assert code == 1
    assert f"{path}:9: error: node 'menu': no node named 'byee' to go to [unknown-target]" in output


def test_simulate_reads_a_pipe_and_shows_prompts_and_outcome() -> None:
    code, output = run(
        "simulate",
        str(LIBRARY / "main_menu.yaml"),
        "--now",
        "2026-01-05T10:00",
        "--lookup",
        'balance_lookup={"balance": {"amount": 3.5, "due_date": "2026-02-01"}}',
        stdin="2\n123456#\nno\n",
    )
    assert code == 0, output
    assert "dialog> For product questions press 1." in output
    assert "you> 123456#" in output
    assert "dialog> Your balance is 3.50 dollars, due on 2026-02-01." in output
    assert "outcome: hangup" in output


def test_simulate_end_of_input_is_a_hang_up_and_the_trace_is_json() -> None:
    code, output = run(
        "simulate", str(LIBRARY / "after_hours.yaml"), "--closed", "--trace", stdin="2\n"
    )
    assert code == 0, output
    trace = json.loads(output[output.index("{") :])
    assert trace["outcome"] == "voicemail"
    code, output = run("simulate", str(LIBRARY / "after_hours.yaml"), "--closed", stdin="")
    assert "outcome: caller_hangup" in output
