"""functions.objects: one objects.get per read, its answers classified as the storage client's were."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from functions.failures import is_transient
from functions.objects import ObjectReader, ObjectReadError, launcher_session
from pipelines.storage_io import StorageError
from stack.json_http import JsonHandler


class _Storage:
    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, object]]] = []
        self.paths: list[str] = []
        self.auth: list[str | None] = []
        storage = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                storage.paths.append(self.path)
                storage.auth.append(self.headers.get("Authorization"))
                status, body = storage.answers.pop(0) if storage.answers else (404, {})
                self.answer(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Storage]:
    s = _Storage()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", s.host)  # without a scheme, as some set it
    yield s
    s.server.shutdown()
    s.server.server_close()


def test_generation_is_one_get_of_the_escaped_name(storage: _Storage) -> None:
    storage.answers.append((200, {"generation": "1712345678901234"}))
    reader = ObjectReader(shared=lambda: pytest.fail("no credentials for an emulator"))
    assert reader.generation("data", "in coming/a#b?.csv") == 1712345678901234
    assert storage.paths == ["/storage/v1/b/data/o/in%20coming%2Fa%23b%3F.csv?fields=generation"]
    assert storage.auth == [None]


def test_a_missing_object_is_none(storage: _Storage) -> None:
    reader = ObjectReader()
    assert reader.generation("data", "gone.csv") is None
    assert reader.created("data", "gone.csv") is None


def test_created_is_written_as_the_client_did(storage: _Storage) -> None:
    storage.answers.append((200, {"timeCreated": "2024-05-01T10:00:00.123Z"}))
    assert ObjectReader().created("data", "_SUCCESS") == "2024-05-01T10:00:00.123000+00:00"


def test_server_errors_are_retried_then_transient(storage: _Storage) -> None:
    storage.answers += [(503, {"error": {"message": "busy"}})] * 2 + [(200, {"generation": "7"})]
    assert ObjectReader().generation("data", "a.csv") == 7
    storage.answers += [(429, {"error": {"message": "slow down"}})] * 3
    with pytest.raises(StorageError, match="429") as caught:
        ObjectReader().generation("data", "a.csv")
    assert is_transient(caught.value)


def test_a_bad_request_is_permanent(storage: _Storage) -> None:
    storage.answers.append((400, {"error": {"message": "Invalid object name"}}))
    with pytest.raises(ObjectReadError, match=r"400.*Invalid object name") as caught:
        ObjectReader().generation("data", "a.csv")
    assert not is_transient(caught.value)
    assert len(storage.paths) == 1  # not retried


def test_an_unreachable_emulator_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # discard: refused
    with pytest.raises(StorageError) as caught:
        ObjectReader().generation("data", "a.csv")
    assert is_transient(caught.value)


def test_cloud_storage_is_read_on_the_launchers_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    calls: list[str] = []

    class Answer:
        status_code = 200

        def json(self) -> dict[str, object]:
            return {"generation": "3"}

    class Session:
        def get(self, url: str, **kwargs: object) -> Answer:
            calls.append(url)
            return Answer()

    lent: list[Session] = []
    reader = ObjectReader(shared=lambda: lent.append(Session()) or lent[-1])
    assert reader.generation("data", "a.csv") == 3
    assert reader.generation("data", "b.csv") == 3
    assert calls == [
        "https://storage.googleapis.com/storage/v1/b/data/o/a.csv",
        "https://storage.googleapis.com/storage/v1/b/data/o/b.csv",
    ]
    assert len(lent) == 1  # asked once per instance


def test_the_launcher_lends_its_session_only_when_it_has_credentials() -> None:
    from pipelines.launch.base import PermanentLaunchError
    from pipelines.launch.vertex import VertexConfig, VertexLauncher

    def unconfigured() -> object:
        raise PermanentLaunchError("GOOGLE_CLOUD_PROJECT and PIPELINE_ROOT (or DATA_BUCKET) must be set")

    fake = VertexLauncher(VertexConfig("p", "r", "gs://b/root", api_endpoint="http://127.0.0.1:9"), None)  # type: ignore[arg-type]
    assert launcher_session(lambda: fake) is None  # plain HTTP: a local emulator, no credentials
    assert launcher_session(lambda: object()) is None  # dry-run: nothing to lend
    assert launcher_session(unconfigured) is None

    class Lender:
        def authorized_session(self) -> str:
            return "session"

    assert launcher_session(Lender) == "session"
