"""DEAD_LETTER_TOPIC: a rejected event is published, with its original data, on the real emulator."""

from __future__ import annotations

import json
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
