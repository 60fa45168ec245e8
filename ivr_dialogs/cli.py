"""``contacthub dialog ...``: simulate, test, validate a dialog and print its JSON Schema."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path

import click

from ivr_dialogs.dialog_tests import load_cases, run_tests
from ivr_dialogs.events import LookupResult
from ivr_dialogs.interpreter import CallerInfo
from ivr_dialogs.loader import DialogError, load_dialog
from ivr_dialogs.runner import secrets_from_env
from ivr_dialogs.schema import json_schema_text
from ivr_dialogs.validator import has_errors, validate, validate_file


def _lookup_stub(text: str) -> tuple[str, LookupResult]:
    node, sep, value = text.partition("=")
    if not sep:
        raise click.BadParameter(f"{text!r}: use NODE=JSON, NODE=@file.json or NODE=error:TEXT")
    if value.startswith("error:"):
        return node, LookupResult(error=value.removeprefix("error:"))
    if value.startswith("@"):
        value = Path(value[1:]).read_text(encoding="utf-8")
    try:
        return node, LookupResult(200, json.loads(value))
    except ValueError as exc:
        raise click.BadParameter(f"{node}: not JSON: {exc}") from None


@click.group("dialog")
def dialog() -> None:
    """Design-time tools for speech dialogs (simulate, test, validate, schema)."""


@dialog.command("simulate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--number", default="+15550100", show_default=True, help="Caller's number.")
@click.option("--name", default="", help="Caller's name.")
@click.option("--vip", default=0, show_default=True, help="Caller's VIP level.")
@click.option("--language", default=None, help="Caller's language (e.g. es).")
@click.option("--now", default=None, help="ISO date-time the call happens at.")
@click.option("--open/--closed", "hours", default=None, help="Force business hours.")
@click.option(
    "--lookup",
    "stubs",
    multiple=True,
    help="Answer a lookup node without HTTP: NODE=JSON, NODE=@file.json, NODE=error:TEXT.",
)
@click.option("--trace/--no-trace", default=False, help="Print the session trace as JSON.")
@click.option("--hints/--no-hints", default=True, help="Show what each question expects.")
def simulate_command(
    file: Path,
    number: str,
    name: str,
    vip: int,
    language: str | None,
    now: str | None,
    hours: bool | None,
    stubs: tuple[str, ...],
    trace: bool,
    hints: bool,
) -> None:
    """Talk to FILE: type digits (2, 1234#) or a phrase; empty line = silence; Ctrl-D hangs up."""
    from ivr_dialogs.simulator import simulate

    try:
        loaded = load_dialog(file)
    except DialogError as exc:
        raise click.ClickException(str(exc)) from None
    moment = datetime.fromisoformat(now) if now else datetime.now()
    lookups = dict(_lookup_stub(s) for s in stubs)
    caller = CallerInfo(number=number, name=name, vip=vip, language=language, channel="simulator")
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo("Type digits or a phrase; an empty line is silence; Ctrl-D hangs up.")
    result = asyncio.run(
        simulate(
            loaded,
            read_line=sys.stdin.readline,
            write=click.echo,
            caller=caller,
            now=moment,
            business_hours=hours,
            language=language,
            secrets=secrets_from_env(),
            lookups=lookups,
            hints=hints,
            echo=not interactive,
        )
    )
    click.echo(f"outcome: {result['outcome']}  path: {' > '.join(result['nodes'])}")
    for error in result["errors"]:
        click.echo(f"note: {error}")
    if trace:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))


@dialog.command("test")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-v", "--verbose", is_flag=True, help="Show what each case said.")
def test_command(files: tuple[Path, ...], verbose: bool) -> None:
    """Run the test cases of each FILE (its tests: section or a tests file).

    Validation errors count as a failure too, as they would stop publishing. Exit 1 on any.
    """
    failed = passed = 0
    for file in files:
        try:
            loaded, cases = load_cases(file)
        except DialogError as exc:
            click.echo(str(exc), err=True)
            failed += 1
            continue
        errors = [p for p in validate(loaded) if p.severity == "error"]
        for problem in errors:
            click.echo(f"INVALID {problem}")
        if errors:
            failed += 1
        if not cases:
            click.echo(f"{file}: no test cases")
            continue
        for result in run_tests(loaded, cases):
            mark = "PASS" if result.passed else "FAIL"
            click.echo(f"{mark} {file}: {result.name}")
            for failure in result.failures:
                click.echo(f"     {failure}")
            if verbose:
                for line in result.said:
                    click.echo(f"     dialog> {line}")
            if result.passed:
                passed += 1
            else:
                failed += 1
    click.echo(f"{passed} passed, {failed} failed")
    if failed:
        sys.exit(1)


@dialog.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate_command(files: tuple[Path, ...]) -> None:
    """Check each FILE; print file:line problems. Exit 1 if any is an error."""
    errors = False
    for file in files:
        problems = validate_file(file)
        for problem in problems:
            click.echo(str(problem))
        if not problems:
            click.echo(f"{file}: ok")
        errors = errors or has_errors(problems)
    if errors:
        sys.exit(1)


@dialog.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of dialog files (for editors)."""
    click.echo(json_schema_text())


commands: list[click.Command] = [dialog]
