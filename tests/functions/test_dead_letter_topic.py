"""DEAD_LETTER_TOPIC: a rejected event is published, with its original data, on the real emulator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from functions.runtime import reset_runtime
from stack.emulators import find_pubsub_emulator, start_pubsub_emulator
from tests import samples

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_pubsub_emulator() is None, reason="Pub/Sub emulator (google-cloud-cli) not installed"
    ),
]


def test_rejected_event_is_published_on_the_dead_letter_topic(client, monkeypatch, tmp_path: Path) -> None:
    from google.cloud import pubsub_v1

    emulator = start_pubsub_emulator(tmp_path)
    assert emulator is not None
    try:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
        monkeypatch.setenv("DEAD_LETTER_TOPIC", "dead-letters")  # a short name: the project is added
        reset_runtime()
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic = publisher.create_topic(name="projects/demo-project/topics/dead-letters").name
        sub = subscriber.create_subscription(
            name="projects/demo-project/subscriptions/dead-letters-pull", topic=topic
        ).name

        payload = {"pipeline": "training", "parameters": {"service_account": "x@evil"}}
        doc = samples.pubsub_event(payload, message_id="m-42")
        response = client("on_run_request").post(
            "/", data=json.dumps(doc), headers={"Content-Type": "application/cloudevents+json"}
        )
        assert response.status_code == 200

        received = subscriber.pull(subscription=sub, max_messages=5, timeout=30).received_messages
        (message,) = received
        record = json.loads(message.message.data)
        assert message.message.attributes["entry_point"] == "on_run_request"
        assert record["schema"] == "mlops-events/dead-letter/v1"
        assert "parameter 'service_account' is not allowed" in record["reason"]
        # The original event travels with the record, so it can be replayed after a fix.
        assert record["event"]["attributes"]["id"] == doc["id"]
        assert record["event"]["data"]["message"]["messageId"] == "m-42"
    finally:
        emulator.stop()
        reset_runtime()


def test_a_dead_letter_of_7_5_mb_is_published_not_a_poison_message(
    client, monkeypatch, tmp_path: Path, gcs_env: str
) -> None:
    """The record of a 7.5 MB message used to exceed Pub/Sub's 10 MB limit (MessageTooLargeError,
    500 on every redelivery). Now the topic gets the truncated record, the bucket the whole one."""
    from google.cloud import pubsub_v1

    emulator = start_pubsub_emulator(tmp_path)
    assert emulator is not None
    try:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
        monkeypatch.setenv("DEAD_LETTER_TOPIC", "dead-letters")
        monkeypatch.setenv("MLOPS_DEAD_LETTER_BUCKET", gcs_env)
        reset_runtime()
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        project = os.environ["GOOGLE_CLOUD_PROJECT"]  # gcs_env's project
        topic = publisher.create_topic(name=f"projects/{project}/topics/dead-letters").name
        sub = subscriber.create_subscription(
            name=f"projects/{project}/subscriptions/dead-letters-big", topic=topic
        ).name
        payload = json.dumps({"pipeline": "training", "parameters": {"x": "y" * 7_500_000}}).encode()
        doc = samples.pubsub_event(payload, message_id="m-big")
        response = client("on_run_request").post(
            "/", data=json.dumps(doc), headers={"Content-Type": "application/cloudevents+json"}
        )
        assert response.status_code == 200
        (message,) = subscriber.pull(subscription=sub, max_messages=5, timeout=30).received_messages
        assert len(message.message.data) <= 64 * 1024
        record = json.loads(message.message.data)
        assert message.message.attributes["record_id"] == record["id"]
        assert record["truncated"]["stored_at"].startswith(
            f"gs://{gcs_env}/mlops-dead-letters/on-run-request/"
        )
        from functions.dead_letter import full_record

        whole = full_record(record)
        assert whole["event"]["data"]["message"]["messageId"] == "m-big"
    finally:
        emulator.stop()
        reset_runtime()
