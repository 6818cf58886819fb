from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from pipelines import storage_io
from pipelines.storage_io import StorageError, cas_update_json


def _append(key: str) -> Any:
    def update(doc: dict[str, Any] | None) -> dict[str, Any]:
        doc = doc or {"items": []}
        return {"items": [*doc["items"], key]}

    return update


def _hammer(uri: str, threads: int = 8, each: int = 3) -> dict[str, Any]:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(each):
                cas_update_json(uri, _append(f"{t}-{i}"), retries=50)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert not errors
    doc: dict[str, Any] = storage_io.read_json(uri)
    return doc


def test_local_paths_round_trip(tmp_path: Path) -> None:
    uri = str(tmp_path / "a" / "b.txt")
    storage_io.write_text(uri, "hello")
    assert storage_io.read_text(f"file://{uri}") == "hello"
    assert storage_io.exists(uri) and not storage_io.exists(str(tmp_path / "nope"))
    storage_io.write_bytes(str(tmp_path / "a" / "c.bin"), b"\x00")
    assert storage_io.list_uris(str(tmp_path / "a")) == [uri, str(tmp_path / "a" / "c.bin")]
    assert storage_io.list_uris(str(tmp_path / "a" / "b")) == [uri]
    with pytest.raises(StorageError, match="no such file"):
        storage_io.read_bytes(str(tmp_path / "missing"))


def test_local_cas_under_concurrency_keeps_every_update(tmp_path: Path) -> None:
    doc = _hammer(str(tmp_path / "state" / "doc.json"))
    assert sorted(doc["items"]) == sorted(f"{t}-{i}" for t in range(8) for i in range(3))


def test_cas_update_error_aborts_without_writing(tmp_path: Path) -> None:
    uri = str(tmp_path / "doc.json")
    cas_update_json(uri, lambda _: {"v": 1})

    def refuse(doc: dict[str, Any] | None) -> dict[str, Any]:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        cas_update_json(uri, refuse)
    assert storage_io.read_json(uri) == {"v": 1}


@pytest.mark.slow
def test_gcs_round_trip_list_and_files(gcs_env: str, tmp_path: Path) -> None:
    base = f"gs://{gcs_env}/data"
    storage_io.write_text(f"{base}/x/1.csv", "a,b\n1,2\n", "text/csv")
    storage_io.write_bytes(f"{base}/x/2.bin", b"\x01\x02")
    assert storage_io.read_text(f"{base}/x/1.csv") == "a,b\n1,2\n"
    assert storage_io.exists(f"{base}/x/2.bin") and not storage_io.exists(f"{base}/x/3")
    assert storage_io.list_uris(f"{base}/x/") == [f"{base}/x/1.csv", f"{base}/x/2.bin"]
    local = storage_io.download_to(f"{base}/x/2.bin", tmp_path / "d" / "2.bin")
    assert local.read_bytes() == b"\x01\x02"
    storage_io.upload_from(local, f"{base}/y/copy.bin")
    assert storage_io.read_bytes(f"{base}/y/copy.bin") == b"\x01\x02"
    with pytest.raises(StorageError, match="no such object"):
        storage_io.read_bytes(f"{base}/missing")


@pytest.mark.slow
def test_gcs_missing_bucket_is_named(gcs_env: str) -> None:
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-x' does not exist"):
        storage_io.write_text("gs://no-such-bucket-x/a.txt", "x")
    with pytest.raises(StorageError, match="does not exist"):
        cas_update_json("gs://no-such-bucket-x/a.json", lambda d: {})


@pytest.mark.slow
def test_gcs_cas_under_concurrency_keeps_every_update(gcs_env: str) -> None:
    doc = _hammer(f"gs://{gcs_env}/state/doc.json")
    assert sorted(doc["items"]) == sorted(f"{t}-{i}" for t in range(8) for i in range(3))


@pytest.mark.slow
def test_gcs_cas_retries_a_read_whose_bytes_fail_their_checksum(
    gcs_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen in CI: under concurrent writers the emulator paired one generation's hash with the next
    # one's bytes, the client raised DataCorruption, and the update was lost instead of retried.
    from google.cloud.storage import Blob
    from google.cloud.storage.exceptions import DataCorruption

    uri = f"gs://{gcs_env}/state/torn.json"
    cas_update_json(uri, _append("first"))
    real = Blob.download_as_bytes
    torn = {"left": 1}

    def download(self: Blob, *args: Any, **kwargs: Any) -> bytes:
        if torn["left"]:
            torn["left"] -= 1
            raise DataCorruption(None, "Checksum mismatch while downloading")
        data: bytes = real(self, *args, **kwargs)
        return data

    monkeypatch.setattr(Blob, "download_as_bytes", download)
    assert cas_update_json(uri, _append("second")) == {"items": ["first", "second"]}
    assert torn["left"] == 0
