"""The README's settings tables say what the code does: every variable the functions read, and
every ``${NAME:-default}`` of the shipped rules, with its real default."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from functions.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _table(heading_marker: str) -> dict[str, str]:
    """variable -> default column of the first table after ``heading_marker``."""
    text = README[README.index(heading_marker) :]
    rows = {}
    for line in text.splitlines()[1:]:
        m = re.match(r"^\| `([A-Z_]+)` \|.*\| (.+) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
        elif rows and not line.startswith("|"):
            break
    return rows


def _read_by_settings() -> set[str]:
    tree = ast.parse((ROOT / "functions" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"[A-Z][A-Z_]{3,}", node.value)
        ):
            names.add(node.value)
    return names - {"K_SERVICE", "STORAGE_EMULATOR_HOST"}  # platform variables, not settings


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    table = _table("Read once per instance by `functions/settings.py`")
    assert _read_by_settings() <= set(table), f"missing from the README: {_read_by_settings() - set(table)}"
    defaults = Settings.from_env({})
    assert table["GOOGLE_CLOUD_REGION"] == f"`{defaults.region}`"
    assert table["MLOPS_LAUNCHER"] == f"`{defaults.launcher}`"
    assert table["MLOPS_STATE_DIR"] == f"`{defaults.state_dir}`"
    assert table["MAX_EVENT_AGE_SECONDS"] == f"`{defaults.max_event_age_seconds:.0f}`"
    assert table["MAX_MESSAGE_BYTES"] == f"`{defaults.max_message_bytes}`"
    assert table["VERTEX_TIMEOUT_SECONDS"] == f"`{defaults.vertex_timeout_seconds:.0f}`"


def test_every_variable_of_the_shipped_rules_is_in_the_readme_with_its_default() -> None:
    rules = (ROOT / "events" / "rules.default.yaml").read_text()
    variables = dict(re.findall(r"\$\{([A-Z_]+):-([^}]*)\}", rules))
    assert variables  # the shipped rules have defaults to document
    table = _table("The shipped rules\nuse these")
    for name, default in variables.items():
        assert table.get(name, "").startswith(f"`{default}`"), (
            f"{name}: README says {table.get(name)}, rules say {default}"
        )


def test_the_demo_rules_are_described_as_they_are() -> None:
    assert "2 s debounce instead of 60 s" not in README
    assert "instead of 60 s" not in (ROOT / "docs" / "local-stack.md").read_text()
