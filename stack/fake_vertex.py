"""A small fake of the Vertex AI ``pipelineJobs`` REST API that records what it receives.

It stands in for the one part that cannot run here (the Vertex service) in contract tests,
benchmarks and reliability runs. It implements create (409 for a repeated job id, as Vertex does)
and get, and can inject faults: a share of calls answered 429/503, delayed past the client's
timeout, timed out *after* the job was created (the case idempotent ids exist for), or rejected
with 400 (``"400"``, not among the default kinds: a permanent rejection).

    with FakeVertex() as vertex:
        ... VERTEX_API_ENDPOINT=vertex.url ...
        vertex.jobs  # {job_id: body}
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from stack.json_http import JsonHandler

_CREATE = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/pipelineJobs$")
_GET = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/pipelineJobs/([^/]+)$")


@dataclass
class Faults:
    """Share of create calls that fail, and how. Decided per call from a seeded RNG."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "503", "timeout", "timeout_after_create")
    delay_seconds: float = 0.0  # added to every call (latency of the "service")
    timeout_seconds: float = 2.0  # how long a "timeout" fault stalls before answering
    seed: int = 7


@dataclass
class Stats:
    requests: int = 0
    created: int = 0
    conflicts: int = 0
    faults: dict[str, int] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that died mid-request (the reliability run kills instances)
        super().handle_error(request, client_address)


class FakeVertex:
    def __init__(self, faults: Faults | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.faults = faults or Faults()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.states: dict[str, str] = {}  # job id -> state answered by get (default PENDING)
        self.requests: list[dict[str, Any]] = []  # every create request, in arrival order
        self.stats = Stats()
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._server = _Server((host, port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeVertex:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeVertex:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_state(self, job_id: str, state: str) -> None:
        """What ``get`` answers for a job from now on, e.g. ``PIPELINE_STATE_SUCCEEDED``."""
        with self._lock:
            self.states[job_id] = state

    def _fault(self) -> str | None:
        with self._lock:
            if self._rng.random() >= self.faults.rate:
                return None
            kind = self._rng.choice(self.faults.kinds)
            self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1
            return kind

    def _create(self, job_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append({"job_id": job_id, "body": body, "time": time.time()})
            if job_id in self.jobs:
                self.stats.conflicts += 1
                return 409, {
                    "error": {"code": 409, "status": "ALREADY_EXISTS", "message": f"{job_id} already exists"}
                }
            self.jobs[job_id] = body
            self.stats.created += 1
            return 200, {
                **body,
                "name": f"projects/-/locations/-/pipelineJobs/{job_id}",
                "state": "PIPELINE_STATE_PENDING",
            }

    def _handler(self) -> type[JsonHandler]:
        fake = self

        class Handler(JsonHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Without it Nagle's algorithm and delayed ACKs add ~40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with fake._lock:
                    fake.stats.requests += 1
                m = _CREATE.match(url.path)
                job_id = (parse_qs(url.query).get("pipelineJobId") or [""])[0]
                if not m or not job_id:
                    self.answer(404, {"error": {"code": 404, "message": f"no route {url.path}"}})
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self.answer(400, {"error": {"code": 400, "message": "body is not JSON"}})
                    return
                if fake.faults.delay_seconds:
                    time.sleep(fake.faults.delay_seconds)
                fault = fake._fault()
                if fault in ("400", "429", "503"):
                    self.answer(int(fault), {"error": {"code": int(fault), "message": f"injected {fault}"}})
                    return
                if fault == "timeout":
                    time.sleep(fake.faults.timeout_seconds)
                    self.answer(503, {"error": {"code": 503, "message": "injected timeout"}})
                    return
                status, payload = fake._create(job_id, body)
                if fault == "timeout_after_create":
                    time.sleep(fake.faults.timeout_seconds)
                self.answer(status, payload)

            def do_GET(self) -> None:
                m = _GET.match(urlparse(self.path).path)
                job = fake.jobs.get(m.group(3)) if m else None
                if job is None:
                    self.answer(404, {"error": {"code": 404, "message": "not found"}})
                else:
                    state = fake.states.get(m.group(3), "PIPELINE_STATE_PENDING") if m else ""
                    self.answer(200, {**job, "state": state})

        return Handler
