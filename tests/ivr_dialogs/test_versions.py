"""Versioning: immutable versions, one published, checked publishing, diffs and rollbacks."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr_dialogs.versions import DialogHistory, DialogVersion, VersionError

MAIN_MENU = (Path(__file__).parents[2] / "ivr_dialogs" / "library" / "main_menu.yaml").read_text()
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def edited(source: str) -> str:
    return source.replace("Thank you for calling Acme Telecom.", "Welcome to Acme Telecom.")


def test_versions_are_numbered_hashed_and_immutable() -> None:
    history = DialogHistory("main_menu")
    v1 = history.add(MAIN_MENU, "ana", now=T0)
    v2 = history.add(edited(MAIN_MENU), "bo", note="new greeting", now=T0)
    assert (v1.number, v2.number) == (1, 2)
    assert v1.sha256 != v2.sha256 and len(v1.sha256) == 64
    assert history.add(edited(MAIN_MENU), "bo") is v2  # no change, no new version
    with pytest.raises(dataclasses.FrozenInstanceError):
        v1.source = "changed"  # type: ignore[misc]
    assert history.published is None


def test_publish_checks_the_dialog_and_its_tests() -> None:
    history = DialogHistory("main_menu")
    history.add(MAIN_MENU, "ana")
    assert history.publish(1).number == 1
    broken_target = MAIN_MENU.replace("fallback: agent_queue", "fallback: agent_queu", 1)
    history.add(broken_target, "bo")
    with pytest.raises(VersionError) as caught:
        history.publish(2)
    assert any("no node named 'agent_queu'" in p for p in caught.value.problems)
    # An edit only the dialog's own tests catch: a prompt the Spanish case expects changed.
    failing_test = MAIN_MENU.replace("Su saldo es de", "Tiene", 1)
    history.add(failing_test, "cy")
    with pytest.raises(VersionError) as caught:
        history.publish(3)
    assert any("test 'switching to Spanish'" in p for p in caught.value.problems)
    assert history.published is not None and history.published.number == 1


def test_diff_is_a_unified_diff_between_two_versions() -> None:
    history = DialogHistory("main_menu")
    history.add(MAIN_MENU, "ana", now=T0)
    history.add(edited(MAIN_MENU), "bo", now=T0)
    diff = history.diff(1, 2)
    assert diff.startswith("--- main_menu v1 (ana, 2026-01-05 09:00)\n+++ main_menu v2 (bo, ")
    assert "-      en: Thank you for calling Acme Telecom.\n" in diff
    assert "+      en: Welcome to Acme Telecom.\n" in diff
    assert history.diff(2, 2) == ""


def test_rollback_is_a_new_published_version_equal_to_the_old_one() -> None:
    history = DialogHistory("main_menu")
    history.add(MAIN_MENU, "ana")
    history.add(edited(MAIN_MENU), "bo")
    history.publish(2)
    v3 = history.rollback(1, "cy")
    assert v3.number == 3
    assert v3.source == history.get(1).source and v3.sha256 == history.get(1).sha256
    assert v3.note == "rollback to version 1"
    assert history.published == v3
    assert [v.number for v in history.versions] == [1, 2, 3]
    assert history.diff(1, 3) == ""


def test_history_round_trips_through_json_and_detects_tampering() -> None:
    history = DialogHistory("main_menu")
    history.add(MAIN_MENU, "ana", now=T0)
    history.publish(1, check=False)
    data = json.loads(json.dumps(history.to_dict()))
    again = DialogHistory.from_dict(data)
    assert again.published == history.published
    data["versions"][0]["source"] += "# sneaky\n"
    with pytest.raises(VersionError, match="does not match its sha256"):
        DialogHistory.from_dict(data)
    with pytest.raises(VersionError, match="no version 7"):
        again.get(7)


def test_version_create_defaults_to_now_in_utc() -> None:
    version = DialogVersion.create(1, "x", "ana")
    assert version.created_at.tzinfo is UTC
