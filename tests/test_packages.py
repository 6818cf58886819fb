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
