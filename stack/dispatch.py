"""Pub/Sub for the local stack: the official emulator when installed, else an embedded dispatcher.

Emulator: the topics of ``stack.config.TOPICS`` are created, each with a push subscription to its
function (push endpoint = function URL + ``/projects/P/topics/T``: functions-framework turns a raw
push envelope POSTed there into a ``messagePublished`` CloudEvent) or a pull subscription (dead
letters, kept for inspection). The emulator redelivers non-2xx pushes itself.

Embedded dispatcher (no emulator): a small HTTP server that accepts

- ``POST /projects/P/topics/T`` with a push envelope (what ``pipelines.alerts.PushPublisher``
  sends, via ``MLOPS_PUBSUB_PUSH_URL``), and
- ``POST /v1/projects/P/topics/T:publish`` with ``{"messages": [{"data": b64, "attributes": {}}]}``
  (Pub/Sub's REST publish),

and push-delivers each message to the topic's function with the same envelope, retrying non-2xx
with back-off. Messages of topics without a push target are appended to
``<state>/pubsub/<topic>.jsonl``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from pipelines.alerts import push_envelope
from stack.bridge import Deliverer, Delivery
from stack.json_http import JsonHandler

_PUSH_PATH: Final = re.compile(r"^/projects/(?P<project>[^/]+)/topics/(?P<topic>[^/:]+)/?$")
_REST_PATH: Final = re.compile(r"^/v1/projects/(?P<project>[^/]+)/topics/(?P<topic>[^/:]+):publish$")


def push_endpoint(function_url: str, project: str, topic: str) -> str:
    return f"{function_url.rstrip('/')}/projects/{project}/topics/{topic}"


# --- emulator ------------------------------------------------------------------------------------


def setup_emulator(
    project: str,
    topics: Mapping[str, str | None],
    function_urls: Mapping[str, str],
    *,
    extra: tuple[str, ...] = (),
) -> dict[str, str]:
    """Create topics and subscriptions on the emulator (``PUBSUB_EMULATOR_HOST`` must be set).
    Returns topic -> where its messages go. ``extra`` topics get a pull subscription named
    ``<topic>-bridge`` (the bridge reads it)."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    routes: dict[str, str] = {}
    try:
        for topic, target in [*topics.items(), *((t, None) for t in extra)]:
            topic_path = publisher.topic_path(project, topic)
            with contextlib.suppress(gexc.AlreadyExists):
                publisher.create_topic(name=topic_path)
            if target is not None:
                sub_name, push = f"{topic}-push", push_endpoint(function_urls[target], project, topic)
                config: Any = pubsub_v1.types.PushConfig(push_endpoint=push)
                routes[topic] = f"push -> {target}"
            else:
                sub_name = f"{topic}-bridge" if topic in extra else f"{topic}-pull"
                config, push = None, ""
                routes[topic] = f"pull subscription {sub_name}"
            sub_path = subscriber.subscription_path(project, sub_name)
            with contextlib.suppress(gexc.AlreadyExists):
                subscriber.create_subscription(
                    request={
                        "name": sub_path,
                        "topic": topic_path,
                        "ack_deadline_seconds": 600,
                        **({"push_config": config} if config is not None else {}),
                    }
                )
    finally:
        subscriber.close()
    return routes


def publish_emulator(project: str, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    future = publisher.publish(publisher.topic_path(project, topic), data, **dict(attributes))
    return str(future.result(timeout=30))


# --- embedded dispatcher -------------------------------------------------------------------------


class _Handler(JsonHandler):
    server: Dispatcher

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            doc = json.loads(body)
        except json.JSONDecodeError:
            self.answer(400, {"error": "the body must be JSON"})
            return
        if (
            (m := _PUSH_PATH.match(self.path))
            and isinstance(doc, dict)
            and isinstance(doc.get("message"), dict)
        ):
            ids = [self.server.dispatch(m["project"], m["topic"], doc["message"])]
        elif (
            (m := _REST_PATH.match(self.path))
            and isinstance(doc, dict)
            and isinstance(doc.get("messages"), list)
        ):
            ids = []
            for message in doc["messages"]:
                data = base64.b64decode(message.get("data", ""))
                envelope = push_envelope(m["project"], m["topic"], data, message.get("attributes") or {})
                ids.append(self.server.dispatch(m["project"], m["topic"], envelope["message"]))
        else:
            self.answer(
                404,
                {"error": "POST /projects/P/topics/T (push envelope) or /v1/projects/P/topics/T:publish"},
            )
            return
        self.answer(200, {"messageIds": ids})

    def do_GET(self) -> None:
        self.answer(200, {"status": "ok", "topics": sorted(self.server.topics)})


class Dispatcher(ThreadingHTTPServer):
    """The embedded Pub/Sub stand-in: publish over HTTP, push-deliver to the functions."""

    daemon_threads = True

    def __init__(
        self,
        port: int,
        deliverer: Deliverer,
        project: str,
        topics: Mapping[str, str | None],
        function_urls: Mapping[str, str],
        spool_dir: Path,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.deliverer = deliverer
        self.project = project
        self.topics = dict(topics)
        self.function_urls = dict(function_urls)
        self.spool_dir = spool_dir
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def routes(self) -> dict[str, str]:
        return {
            t: (f"push -> {f}" if f else f"spooled to {self.spool_dir}/{t}.jsonl")
            for t, f in self.topics.items()
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)

    def dispatch(self, project: str, topic: str, message: Mapping[str, Any]) -> str:
        message_id = str(message.get("messageId") or message.get("message_id") or "")
        envelope = {
            "message": dict(message),
            "subscription": f"projects/{project}/subscriptions/{topic}-push",
        }
        target = self.topics.get(topic)
        if target is None:  # unknown topic or no push target: keep it, as a pull subscription would
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            with self._lock, (self.spool_dir / f"{topic}.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(envelope) + "\n")
            return message_id
        self.deliverer.submit(
            Delivery(
                via="pubsub-push",
                target=target,
                url=push_endpoint(self.function_urls[target], project, topic),
                headers={"content-type": "application/json"},
                body=json.dumps(envelope).encode(),
                event_id=message_id,
                summary={"topic": topic, "type": "google.cloud.pubsub.topic.v1.messagePublished"},
            )
        )
        return message_id


def publish(
    info: Mapping[str, Any], topic: str, data: bytes, attributes: Mapping[str, str] | None = None
) -> str:
    """Publish one message on a topic of the running stack described by ``info`` (stack.json)."""
    import os
    import urllib.request

    attributes = dict(attributes or {})
    pubsub = info["pubsub"]
    project = str(info["project"])
    if pubsub["mode"] == "emulator":
        previous = os.environ.get("PUBSUB_EMULATOR_HOST")
        os.environ["PUBSUB_EMULATOR_HOST"] = str(pubsub["host"])
        try:
            return publish_emulator(project, topic, data, attributes)
        finally:
            if previous is None:
                os.environ.pop("PUBSUB_EMULATOR_HOST", None)
            else:
                os.environ["PUBSUB_EMULATOR_HOST"] = previous
    body = {"messages": [{"data": base64.b64encode(data).decode(), "attributes": attributes}]}
    req = urllib.request.Request(
        f"{pubsub['url']}/v1/projects/{project}/topics/{topic}:publish",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(json.loads(resp.read())["messageIds"][0])
