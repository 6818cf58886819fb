"""Publishers of ``pipelines.ports.Publisher``: Pub/Sub (also the emulator) and the local stack's
fallback when the Pub/Sub emulator is not installed.

- ``PubSubPublisher``: google-cloud-pubsub; honours ``PUBSUB_EMULATOR_HOST``.
- ``PushPublisher``: POSTs the push envelope a Pub/Sub push subscription would send
  (``{"message": {...}, "subscription": ...}``) to ``<url>/projects/P/topics/T``, the local
  stack's embedded dispatcher (``stack/dispatch.py``, ``MLOPS_PUBSUB_PUSH_URL``), which delivers it
  to the topic's function as Pub/Sub would.

``topic`` is a short name (``alerts``) or a full ``projects/P/topics/T``.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


class PublishError(RuntimeError):
    """A message could not be published; the message names the topic and the cause."""


def topic_path(project: str, topic: str) -> str:
    return topic if topic.startswith("projects/") else f"projects/{project}/topics/{topic}"


def push_envelope(project: str, topic: str, data: bytes, attributes: Mapping[str, str]) -> dict[str, Any]:
    """The JSON body of a Pub/Sub push delivery of one message."""
    message_id = str(uuid.uuid4().int % 10**16)
    publish_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    short = topic_path(project, topic).rsplit("/", 1)[-1]
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": dict(attributes),
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": publish_time,
            "publish_time": publish_time,
        },
        "subscription": f"projects/{project}/subscriptions/{short}-push",
    }


class PubSubPublisher:
    def __init__(self, project: str, timeout: float = 30.0) -> None:
        self.project = project
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def _publisher(self) -> Any:
        with self._lock:
            if self._client is None:
                import google.cloud.pubsub_v1 as pubsub_v1

                self._client = pubsub_v1.PublisherClient()
            return self._client

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        path = topic_path(self.project, topic)
        try:
            future = self._publisher().publish(path, data, **{k: str(v) for k, v in attributes.items()})
            return str(future.result(timeout=self.timeout))
        except Exception as exc:
            raise PublishError(f"publishing to {path} failed: {exc}") from exc


class PushPublisher:
    def __init__(self, project: str, url: str, timeout: float = 30.0) -> None:
        self.project = project
        self.url = url.rstrip("/")
        self.timeout = timeout

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        envelope = push_envelope(self.project, topic, data, attributes)
        url = f"{self.url}/{topic_path(self.project, topic)}"
        req = urllib.request.Request(
            url,
            data=json.dumps(envelope).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise PublishError(
                f"push of a message on {topic} to {url} answered {exc.code}: {detail}"
            ) from exc
        except OSError as exc:
            raise PublishError(f"push of a message on {topic} to {url} failed: {exc}") from exc
        return str(envelope["message"]["messageId"])
