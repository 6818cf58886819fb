"""The bundle's pre-parsed copies of YAML files: used only for the exact bytes they came from."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from events.rules import parse_document
from pipelines import parsed
from pipelines.launch.base import load_spec


def test_a_copy_is_read_only_for_the_bytes_it_was_parsed_from(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules: []\nversion: 1\n")
    assert parsed.read(path, path.read_bytes()) is None  # no copy yet
    assert parsed.write(path, parse_document(path.read_text()))
    assert parsed.read(path, path.read_bytes()) == {"rules": [], "version": 1}
    path.write_text("rules: []\nversion: 2\n")  # edited after the bundle was built: stale
    assert parsed.read(path, path.read_bytes()) is None
    parsed.copy_path(path).write_text("{not json")
    assert parsed.read(path, path.read_bytes()) is None


def test_a_document_that_is_not_plain_json_gets_no_copy(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("when: 2026-12-02\n")
    assert parse_document(path.read_text()) == {"when": date(2026, 12, 2)}
    assert not parsed.write(path, parse_document(path.read_text()))
    assert not parsed.copy_path(path).exists()


def test_a_template_edited_after_its_copy_is_read_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("pipelineInfo:\n  name: one\n")
    parsed.write(path, load_spec(path))
    assert load_spec(path) == {"pipelineInfo": {"name": "one"}}
    path.write_text("pipelineInfo:\n  name: two\n")
    assert load_spec(path) == {"pipelineInfo": {"name": "two"}}
    assert json.loads(parsed.copy_path(path).read_text())["document"] == {"pipelineInfo": {"name": "one"}}
