from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from events.envelope import from_http
from events.model import ModelRegistryEvent
from events.parse import parse
from pipelines import backends
from pipelines.registry import RegistryError
from pipelines.registry.audit_events import EventSink, read_outbox
from pipelines.registry.local import LocalModelRegistry


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.received.append((dict(self.headers.items()), body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def event_listener() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", server.received  # type: ignore[attr-defined]
    server.shutdown()


def _parse_posted(headers: dict[str, str], body: bytes) -> ModelRegistryEvent:
    event = parse(from_http(headers, body))
    assert isinstance(event, ModelRegistryEvent)
    return event


def test_versions_aliases_and_outbox_in_a_local_directory(tmp_path: Path) -> None:
    registry = LocalModelRegistry(str(tmp_path / "registry"), sink=EventSink(None, tmp_path / "state"))
    v1 = registry.register(
        "iris", "/m/1", labels={"run": "r1"}, metrics={"accuracy": 0.9}, aliases=["champion"]
    )
    v2 = registry.register("iris", "/m/2", labels={}, metrics={}, aliases=["challenger"])
    assert (v1.version, v2.version) == ("1", "2")
    assert v1.aliases == ("champion", "default")
    assert registry.get("iris", "champion") == registry.get("iris", "1")
    assert registry.get("iris", "default").version == "2"  # type: ignore[union-attr]

    moved = registry.set_alias("iris", "2", "champion")
    assert moved.aliases == ("challenger", "champion", "default")
    assert registry.get("iris", "1").aliases == ()  # type: ignore[union-attr]
    assert [v.version for v in registry.list_versions("iris")] == ["1", "2"]
    assert registry.get("iris", "nope") is None and registry.get("other", "1") is None
    assert registry.list_models() == ["iris"]

    events = read_outbox(tmp_path / "state")
    assert [e["methodname"].rsplit(".", 1)[-1] for e in events] == [
        "UploadModel",
        "UploadModel",
        "MergeVersionAliases",
    ]


def test_bad_names_and_unknown_versions_are_refused(tmp_path: Path) -> None:
    registry = LocalModelRegistry(str(tmp_path))
    with pytest.raises(RegistryError, match="not a valid Vertex model id"):
        registry.register("Bad Name", "/m", labels={}, metrics={})
    with pytest.raises(RegistryError, match="alias '1x' is invalid"):
        registry.register("iris", "/m", labels={}, metrics={}, aliases=["1x"])
    with pytest.raises(RegistryError, match="not in the registry"):
        registry.set_alias("iris", "1", "champion")
    registry.register("iris", "/m", labels={}, metrics={})
    with pytest.raises(RegistryError, match="has no version '7'"):
        registry.set_alias("iris", "7", "champion")


def test_audit_events_parse_as_registry_events(
    tmp_path: Path, event_listener: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = event_listener
    registry = LocalModelRegistry(
        str(tmp_path),
        project="p1",
        location="europe-west4",
        principal="me@example.com",
        sink=EventSink(url, None),
    )
    registry.register("churn", "/m/1", labels={"run_id": "r1"}, metrics={}, aliases=["challenger"])
    registry.set_alias("churn", "1", "champion")
    registry.set_alias("churn", "1", "champion")  # no change: not announced
    assert len(received) == 2
    upload, merge = (_parse_posted(h, b) for h, b in received)

    assert (upload.method, upload.api_version, upload.version) == ("UploadModel", "v1", "1")
    assert upload.model == "projects/p1/locations/europe-west4/models/churn"
    assert upload.aliases == ("challenger",)
    assert upload.audit.principal == "me@example.com"
    assert upload.fields()["model_name"] == "churn"

    assert (merge.method, merge.model_id, merge.version, merge.aliases) == (
        "MergeVersionAliases",
        "churn",
        "1",
        ("champion",),
    )
    assert merge.fields()["model_version"] == "projects/p1/locations/europe-west4/models/churn@1"
    assert merge.audit.operation_id and merge.identity != upload.identity


def test_failed_delivery_is_logged_and_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = EventSink("http://127.0.0.1:9/", tmp_path / "state", timeout=2)
    registry = LocalModelRegistry(str(tmp_path / "reg"), sink=sink)
    version = registry.register("iris", "/m/1", labels={}, metrics={})
    assert version.version == "1"  # the registration stands
    assert "NOT delivered" in caplog.text
    assert len(read_outbox(tmp_path / "state")) == 1


@pytest.mark.slow
def test_concurrent_registrations_on_gcs_keep_every_version(gcs_env: str) -> None:
    registry = backends.model_registry()
    assert isinstance(registry, LocalModelRegistry) and registry.root == f"gs://{gcs_env}"
    results: list[str] = []
    errors: list[BaseException] = []

    def register(i: int) -> None:
        try:
            v = registry.register("iris", f"gs://{gcs_env}/models/{i}", labels={"i": str(i)}, metrics={})
            results.append(v.version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results, key=int) == [str(i) for i in range(1, 9)]
    versions = registry.list_versions("iris")
    assert sorted(v.labels["i"] for v in versions) == [str(i) for i in range(8)]
    assert len({v.artifact_uri for v in versions}) == 8
    outbox = read_outbox(backends.state_dir())  # type: ignore[arg-type]
    announced = [e["data"]["protoPayload"]["response"]["modelVersionId"] for e in outbox]
    assert sorted(announced, key=int) == sorted(results, key=int)


@pytest.mark.slow
def test_concurrent_champion_moves_leave_one_holder(gcs_env: str) -> None:
    registry = backends.model_registry()
    for i in range(3):
        registry.register("iris", f"/m/{i}", labels={}, metrics={})
    barrier = threading.Barrier(2)

    def move(version: str) -> None:
        barrier.wait()
        registry.set_alias("iris", version, "champion")

    for _ in range(3):
        threads = [threading.Thread(target=move, args=(v,)) for v in ("2", "3")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        holders = [v.version for v in registry.list_versions("iris") if "champion" in v.aliases]
        assert len(holders) == 1 and holders[0] in ("2", "3")
