"""Shared fixtures. Emulator fixtures are lazy: tests that do not ask for them start nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.emulators import FakeGcs, start_fake_gcs


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcs]:
    """One fake-gcs-server for the session (filesystem backend in a temporary directory)."""
    server = start_fake_gcs(tmp_path_factory.mktemp("fake-gcs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gcs_env(monkeypatch: pytest.MonkeyPatch, fake_gcs: FakeGcs, tmp_path: Path) -> Iterator[str]:
    """Point storage clients at fake-gcs-server, create a fresh bucket and yield its name."""
    from pipelines import storage_io

    bucket = f"test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "local-project")
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    for name in ("PUBSUB_EMULATOR_HOST", "MLOPS_PUBSUB_PUSH_URL"):
        monkeypatch.delenv(name, raising=False)
    storage_io.ensure_bucket(bucket)
    yield bucket


# --- running under pytest-xdist (`make test`: -n auto --dist loadgroup) ------------------------
# Tests that start emulators, kfp.local runs or servers in module-scoped fixtures run as one group
# per module: on one worker, so each fixture is set up once, not once per worker. Every other test
# is sent to whichever worker is free.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
