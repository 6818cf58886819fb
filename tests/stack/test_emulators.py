from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from stack.emulators import (
    PubSubNotify,
    find_pubsub_emulator,
    free_port,
    start_fake_gcs,
    start_pubsub_emulator,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_fake_gcs_serves_many_requests_and_stops(tmp_path: Path) -> None:
    port = free_port()
    with start_fake_gcs(tmp_path, port) as gcs:
        assert gcs.host == f"http://127.0.0.1:{port}"
        req = urllib.request.Request(
            f"{gcs.host}/storage/v1/b?project=p", data=b'{"name": "b1"}', method="POST",
            headers={"content-type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(req, timeout=5).read()
        # The wrapper's own start() hangs after ~380 requests (unread stderr pipe); ours must not.
        for _ in range(600):
            with urllib.request.urlopen(f"{gcs.host}/storage/v1/b/b1/o", timeout=5) as resp:
                assert resp.status == 200
        assert (tmp_path / "gcs" / "b1").is_dir() and (tmp_path / "fake-gcs.log").exists()
        pid = gcs.pid
    assert not gcs.running() and not _alive(pid)


@pytest.mark.slow
@pytest.mark.skipif(
    find_pubsub_emulator() is None, reason="Pub/Sub emulator (google-cloud-cli) not installed"
)
def test_object_notifications_reach_the_pubsub_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.cloud.pubsub_v1 as pubsub_v1

    emulator = start_pubsub_emulator(tmp_path)
    assert emulator is not None
    try:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic = publisher.create_topic(name="projects/p/topics/gcs").name
        sub = subscriber.create_subscription(name="projects/p/subscriptions/gcs-pull", topic=topic).name
        notify = PubSubNotify(emulator_host=emulator.host, project_id="p", topic="gcs")
        with start_fake_gcs(tmp_path / "gcs-root", pubsub=notify) as gcs:
            for url, body in (
                (f"{gcs.host}/storage/v1/b?project=p", b'{"name": "data"}'),
                (f"{gcs.host}/upload/storage/v1/b/data/o?uploadType=media&name=incoming/a.csv", b"a,b\n"),
            ):
                req = urllib.request.Request(
                    url, data=body, method="POST", headers={"content-type": "application/json"}
                )
                urllib.request.urlopen(req, timeout=5).read()
            response = subscriber.pull(subscription=sub, max_messages=5, timeout=10)
        messages = [m.message for m in response.received_messages]
        assert len(messages) == 1
        assert messages[0].attributes["eventType"] == "OBJECT_FINALIZE"
        assert json.loads(messages[0].data)["name"] == "incoming/a.csv"
        subscriber.close()
    finally:
        emulator.stop()
    assert not emulator.running()
