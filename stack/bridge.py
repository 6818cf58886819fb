"""The bridge plays Eventarc's part in the local stack.

- Storage: fake-gcs-server publishes object notifications (JSON_API_V1: the message data is the
  object resource, the attributes name the event) to a topic of the Pub/Sub emulator; the bridge
  pulls them and POSTs ``google.cloud.storage.object.v1.finalized`` CloudEvents in binary mode to
  ``on_new_data``. Without the emulator it polls the watched bucket's listing for new generations
  instead (slower to notice, same CloudEvents).
- Registry: the Vertex AI emulator POSTs the audit-log CloudEvents of model registry writes to the
  bridge's relay (its ``--audit-events-url``), which answers at once and delivers them to
  ``on_model_registry_event``, as Eventarc delivers audit logs.

Like Eventarc, every non-2xx answer is redelivered with exponential back-off (a debounce window
that is still open answers 500 on purpose). Each attempt is appended to ``logs/deliveries.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from stack.config import RetryPolicy
from stack.json_http import JsonHandler

STORAGE_FINALIZED: Final = "google.cloud.storage.object.v1.finalized"
POLL_INTERVAL_S: Final = 0.5


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery of an event: where, the headers and the body, and how to describe it."""

    via: str  # eventarc-storage, eventarc-audit, pubsub-push
    target: str  # entry point name
    url: str
    headers: Mapping[str, str]
    body: bytes
    event_id: str
    summary: Mapping[str, Any] = field(default_factory=dict)  # type, subject, topic... for logs


class Deliverer:
    """Delivers with retries on background threads, logging every attempt as one JSON line."""

    def __init__(
        self, log_path: Path, retry: RetryPolicy, *, workers: int = 16, timeout_s: float = 60.0
    ) -> None:
        self.log_path = log_path
        self.retry = retry
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver")
        self._stop = threading.Event()
        self._log_lock = threading.Lock()
        log_path.parent.mkdir(parents=True, exist_ok=True)

    def submit(self, delivery: Delivery, on_done: Callable[[bool], None] | None = None) -> None:
        self._pool.submit(self._run, delivery, on_done)

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, d: Delivery, on_done: Callable[[bool], None] | None) -> None:
        started = time.monotonic()
        attempt = 0
        ok = False
        while not self._stop.is_set():
            attempt += 1
            status, detail = self._post(d)
            ok = 200 <= status < 300
            outcome = "delivered" if ok else "retry"
            if not ok and time.monotonic() - started > self.retry.give_up_after_s:
                outcome = "gave_up"
            self._log(d, attempt, status, outcome, detail)
            if ok or outcome == "gave_up":
                break
            self._stop.wait(self.retry.delay(attempt))
        if on_done is not None:
            on_done(ok)

    def _post(self, d: Delivery) -> tuple[int, str]:
        req = urllib.request.Request(d.url, data=d.body, headers=dict(d.headers), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
                return int(resp.status), ""
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")[:300]
        except Exception as exc:  # refused, reset, timeout, a garbled answer: retried like a 5xx
            return 0, repr(exc)

    def note(self, message: str) -> None:
        """A problem of the stack itself (not of a delivery), kept in the same log."""
        with self._log_lock, self.log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"at": time.time(), "note": message}) + "\n")

    def _log(self, d: Delivery, attempt: int, status: int, outcome: str, detail: str) -> None:
        line = {
            "at": time.time(),
            "via": d.via,
            "target": d.target,
            "event_id": d.event_id,
            "attempt": attempt,
            "status": status,
            "outcome": outcome,
            **d.summary,
        }
        if detail and outcome != "delivered":
            line["detail"] = detail
        with self._log_lock, self.log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, default=str) + "\n")


# --- CloudEvents ---------------------------------------------------------------------------------


def storage_cloud_event(
    resource: Mapping[str, Any], event_id: str, event_time: str | None
) -> tuple[dict[str, str], bytes]:
    """Binary-mode headers and body of the finalized event Eventarc sends for ``resource``.

    fake-gcs-server's object resource has no ``metageneration``; GCS's always has one (1 for a new
    object), so it is filled in."""
    resource = {"metageneration": "1", **resource}
    bucket = str(resource["bucket"])
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-type": STORAGE_FINALIZED,
        "ce-subject": f"objects/{resource['name']}",
        "ce-time": event_time or str(resource.get("timeCreated") or resource.get("updated") or ""),
        "ce-bucket": bucket,  # the extension attribute Eventarc adds
        "content-type": "application/json",
    }
    return headers, json.dumps(resource).encode()


def storage_delivery(
    url: str, resource: Mapping[str, Any], event_id: str, event_time: str | None
) -> Delivery:
    headers, body = storage_cloud_event(resource, event_id, event_time)
    return Delivery(
        via="eventarc-storage",
        target="on_new_data",
        url=url,
        headers=headers,
        body=body,
        event_id=event_id,
        summary={
            "type": STORAGE_FINALIZED,
            "subject": f"gs://{resource['bucket']}/{resource['name']}#{resource.get('generation')}",
        },
    )


# --- storage: from the Pub/Sub emulator, or by polling -------------------------------------------


class StorageBridge:
    """Object notifications -> finalized CloudEvents to ``on_new_data``."""

    def __init__(
        self,
        deliverer: Deliverer,
        target_url: str,
        *,
        bucket: str,
        storage_host: str,
        subscription: str | None,  # projects/P/subscriptions/S on the emulator; None: poll
    ) -> None:
        self.deliverer = deliverer
        self.target_url = target_url
        self.bucket = bucket
        self.storage_host = storage_host.rstrip("/")
        self.subscription = subscription
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: set[tuple[str, str]] = set()

    @property
    def mode(self) -> str:
        return "pubsub-notifications" if self.subscription else "polling"

    def start(self) -> None:
        if self.subscription is None:
            self._seen = {(o["name"], str(o["generation"])) for o in self._list()}  # what exists is old
        target = self._pull_loop if self.subscription else self._poll_loop
        self._thread = threading.Thread(target=target, name=f"bridge-{self.mode}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _pull_loop(self) -> None:
        from google.api_core import exceptions as gexc
        from google.cloud import pubsub_v1

        subscriber = pubsub_v1.SubscriberClient()
        while not self._stop.is_set():
            try:
                response = subscriber.pull(
                    subscription=self.subscription, max_messages=50, timeout=2.0, return_immediately=False
                )
            except (gexc.DeadlineExceeded, gexc.RetryError):
                continue
            except Exception:  # the emulator is stopping, or a hiccup: try again shortly
                self._stop.wait(0.5)
                continue
            for received in response.received_messages:
                try:
                    self._forward(subscriber, received)
                except Exception as exc:  # one bad message must not stop the bridge: not acked, redelivered
                    self.deliverer.note(
                        f"bridge: notification {received.message.message_id} not forwarded: {exc!r}"
                    )
        subscriber.close()

    def _forward(self, subscriber: Any, received: Any) -> None:
        message = received.message
        attributes = dict(message.attributes)
        ack_id = received.ack_id
        if attributes.get("eventType") != "OBJECT_FINALIZE":  # deletes, metadata updates: not delivered
            self._acker(subscriber, ack_id)(True)
            return
        resource = json.loads(message.data)
        delivery = storage_delivery(
            self.target_url, resource, f"{message.message_id}", attributes.get("eventTime")
        )
        # Acknowledged once delivered (or given up): the ack deadline (600 s) covers the retries.
        self.deliverer.submit(delivery, self._acker(subscriber, ack_id))

    def _acker(self, subscriber: Any, ack_id: str) -> Callable[[bool], None]:
        def ack(_ok: bool) -> None:
            try:
                subscriber.acknowledge(subscription=self.subscription, ack_ids=[ack_id])
            except Exception as exc:  # at worst the emulator redelivers: same event id, same job id
                self.deliverer.note(f"bridge: acknowledge failed: {exc!r}")

        return ack

    def _list(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            url = f"{self.storage_host}/storage/v1/b/{self.bucket}/o?maxResults=1000"
            if token:
                url += f"&pageToken={urllib.parse.quote(token)}"
            with urllib.request.urlopen(url, timeout=10) as resp:
                page = json.loads(resp.read())
            items += page.get("items", [])
            token = page.get("nextPageToken", "")
            if not token:
                return items

    def _poll_loop(self) -> None:
        while not self._stop.wait(POLL_INTERVAL_S):
            try:
                objects = self._list()
            except (OSError, ValueError) as exc:
                self.deliverer.note(f"bridge: listing gs://{self.bucket} failed: {exc!r}")
                continue
            for resource in objects:
                key = (resource["name"], str(resource["generation"]))
                if key in self._seen:
                    continue
                self._seen.add(key)
                event_id = "poll-" + hashlib.sha256(f"{key[0]}#{key[1]}".encode()).hexdigest()[:16]
                self.deliverer.submit(storage_delivery(self.target_url, resource, event_id, None))


# --- registry audit events: a relay --------------------------------------------------------------


class _RelayHandler(JsonHandler):
    server: RelayServer

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("ce-")}
        headers["content-type"] = self.headers.get("content-type") or "application/json"
        if "ce-id" not in headers or "ce-type" not in headers:
            self.answer(400, {"error": "expected a binary-mode CloudEvent (ce-id, ce-type headers)"})
            return
        self.server.relay(headers, body)
        self.answer(200, {"accepted": headers["ce-id"]})

    def do_GET(self) -> None:
        self.answer(200, {"status": "ok"})


class RelayServer(ThreadingHTTPServer):
    """Accepts audit-log CloudEvents (binary mode) and delivers them to ``on_model_registry_event``."""

    daemon_threads = True

    def __init__(self, port: int, deliverer: Deliverer, target_url: str) -> None:
        super().__init__(("127.0.0.1", port), _RelayHandler)
        self.deliverer = deliverer
        self.target_url = target_url
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)

    def relay(self, headers: dict[str, str], body: bytes) -> None:
        self.deliverer.submit(
            Delivery(
                via="eventarc-audit",
                target="on_model_registry_event",
                url=self.target_url,
                headers=headers,
                body=body,
                event_id=headers["ce-id"],
                summary={
                    "type": headers.get("ce-type"),
                    "method": headers.get("ce-methodname"),
                    "resource": headers.get("ce-resourcename"),
                    **registry_summary(headers, body),
                },
            )
        )


def registry_summary(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """What the lineage needs of a registry audit event, read as the functions' parser reads it:
    ``subject`` (``model@version``: an UploadModel entry names only the parent location, the
    version is in its response), ``principal`` (the audit log's ``principalEmail``: who made the
    call) and the ``aliases`` the call sets. Unparseable: nothing (the function will say why)."""
    from events import envelope, parse

    try:
        event = parse.parse(envelope.from_http(dict(headers), body))
    except Exception:  # not ours to judge: the function will, and log why
        return {"subject": None}
    model, version = getattr(event, "model_id", None), getattr(event, "version", None)
    audit = getattr(event, "audit", None)
    return {
        "subject": f"{model}@{version}" if model and version else None,
        "principal": getattr(audit, "principal", None),
        "aliases": list(getattr(event, "aliases", ())),
        "time": headers.get("ce-time"),
    }
