"""Fixtures for the functions: compiled templates, the Vertex AI emulator (jobs recorded, not run), the real app in process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.runtime import reset_runtime
from stack.vertex import VertexEmulator, ephemeral_emulator
from tests.function_env import set_function_env

REPO = Path(__file__).resolve().parents[2]
PIPELINE_SA = "pipelines@demo-project.iam.gserviceaccount.com"


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real pipelines, compiled once for the session (what a bundle carries)."""
    from pipelines.compile import compile_all

    out = tmp_path_factory.mktemp("templates")
    compile_all(out)
    return out


@pytest.fixture
def vertex() -> Iterator[VertexEmulator]:
    with ephemeral_emulator() as emulator:
        yield emulator


@pytest.fixture
def function_env(
    monkeypatch: pytest.MonkeyPatch, templates: Path, vertex: VertexEmulator, tmp_path: Path
) -> Path:
    """The settings a deployed function has, pointed at the Vertex AI emulator. Returns the dead-letter dir."""
    dead = tmp_path / "dead-letters"
    env = {
        "GOOGLE_CLOUD_PROJECT": "demo-project",
        "GOOGLE_CLOUD_REGION": "europe-west4",
        "DATA_BUCKET": "demo-data",
        "PIPELINE_ROOT": "gs://demo-data/pipeline-root",
        "PIPELINE_SERVICE_ACCOUNT": PIPELINE_SA,
        "VERTEX_API_ENDPOINT": vertex.url,
        "MLOPS_TEMPLATES": str(templates),
        "MLOPS_DEAD_LETTER_DIR": str(dead),
        "MLOPS_LAUNCHER": "vertex",
        "MAX_EVENT_AGE_SECONDS": "0",  # the samples are dated; the age limit has its own test
        "MLOPS_STATE_DIR": str(tmp_path / "state"),  # the guards' state (cooldowns...) of this test only
    }
    set_function_env(monkeypatch, env)
    yield dead
    reset_runtime()


Client = Any


@pytest.fixture
def client(function_env: Path) -> Callable[[str], Client]:
    """The real functions-framework app for an entry point, in process."""
    from functions_framework import create_app

    def make(target: str) -> Client:
        return create_app(target, str(REPO / "functions" / "main.py"), "cloudevent").test_client()

    return make


def dead_letters(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for f in sorted(directory.glob("*.jsonl")) for line in f.read_text().splitlines()
    ]
