"""The repository stands alone: nothing in it points at files a user of the project does not have."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Notes kept beside the repository while it was built, however they are cited (a path, a file
# name, "see NAME" as pyproject.toml once did); a clone has none of them.
OUTSIDE = re.compile(
    r"\.\./shared|/work/shared|\b(?:FACTS|ARCHITECTURE)\.md\b|\bsee\s+(?:FACTS|ARCHITECTURE)\b"
)


def test_no_file_refers_to_anything_outside_the_repository() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if name == "tests/test_self_contained.py" or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert not offenders, offenders
