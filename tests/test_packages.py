"""`events`, `functions` and `pipelines` are generic names: make sure the ones imported are ours."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "name", ["events", "functions", "pipelines", "stack", "mlops_cli", "deploy", "bench"]
)
def test_package_comes_from_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == REPO / name


def test_events_is_pure() -> None:
    """events/ imports nothing from the other packages, Google Cloud or kfp: the catalog reaches it
    as a value. Checked in a fresh interpreter, so nothing imported by other tests hides an import."""
    import subprocess
    import sys

    code = (
        "import importlib, pkgutil, sys\n"
        "before = set(sys.modules)  # namespace packages (google) come from .pth files at start-up\n"
        "import events\n"
        "for m in pkgutil.iter_modules(events.__path__): importlib.import_module('events.' + m.name)\n"
        "bad = sorted(n for n in set(sys.modules) - before if n.split('.')[0] in "
        "('pipelines', 'functions', 'stack', 'kfp', 'google', 'requests'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "", f"events/ pulls in: {out.stdout.strip()}"
