"""Fixtures of the Vertex AI emulator tests: one emulator per module (its state in a temporary
directory), fake-gcs-server for storage, a receiver for the audit-log CloudEvents, and the real
clients pointed at the emulator."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stack.emulators import FakeGcs

ECHO_SERVER = [sys.executable, str(Path(__file__).with_name("echo_server.py"))]
PROJECT = "emu-project"
LOCATION = "us-central1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"


@dataclass
class Received:
    """Audit events POSTed to the receiver: (headers, body) in arrival order."""

    events: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.events) >= count:
                    return list(self.events)
            time.sleep(0.02)
        with self.lock:
            return list(self.events)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, Received]]:
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with received.lock:
                received.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def storage_env(fake_gcs: FakeGcs) -> Iterator[str]:
    """STORAGE_EMULATOR_HOST for the module (the SDK stages artifacts and creates buckets there)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STORAGE_EMULATOR_HOST", fake_gcs.host)
        yield fake_gcs.host


@pytest.fixture(scope="module")
def make_bucket(storage_env: str) -> Callable[[], str]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())

    def make() -> str:
        name = f"emu-{uuid.uuid4().hex[:10]}"
        client.create_bucket(name)
        return name

    return make


def init_sdk(url: str, staging_bucket: str | None = None) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    aiplatform.init(
        project=PROJECT,
        location=LOCATION,
        api_endpoint=url,
        api_transport="rest",
        credentials=AnonymousCredentials(),
        staging_bucket=f"gs://{staging_bucket}" if staging_bucket else None,
    )


def gapic(client_class: Any, url: str) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return client_class(
        client_options=ClientOptions(api_endpoint=url), transport="rest", credentials=AnonymousCredentials()
    )


def error_status(exc: Any) -> str:
    """The google.rpc status name of an api_core exception raised over REST."""
    status: str = exc.response.json()["error"]["status"]
    return status


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def parse_audit(headers: dict[str, str], body: bytes) -> Any:
    from events.envelope import from_http
    from events.parse import parse

    return parse(from_http(headers, body))


def load_json(body: bytes) -> Any:
    return json.loads(body)
