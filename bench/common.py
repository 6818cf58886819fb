"""What every benchmark shares: the two subjects (our bundle and the naive baseline), fresh
processes measured with ``wait4`` (wall time and peak RSS), the Vertex AI emulator recording its
own time per request, a stub of the storage calls the baseline's ``submit()`` makes, and events.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from stack.emulators import free_port
from stack.json_http import JsonHandler
from stack.vertex.faults import Stats

REPO = Path(__file__).resolve().parent.parent
BASELINE_DIR = REPO / "bench" / "baseline"
FLOOR_DIR = REPO / "bench" / "floor"  # an empty function: functions-framework alone
PYTHON = sys.executable
FUNCTIONS_FRAMEWORK = str(Path(sys.executable).with_name("functions-framework"))

PROJECT = "bench-project"
REGION = "us-central1"
BUCKET = "bench-data"
SERVICE_ACCOUNT = f"pipelines@{PROJECT}.iam.gserviceaccount.com"
ENTRY_POINTS = ("on_new_data", "on_monitoring_alert", "on_model_registry_event", "on_run_request")
READY_TIMEOUT_S = 120.0  # the baseline imports aiplatform: seconds, more under load


class BenchError(RuntimeError):
    """A benchmark could not run (a process died, a server never answered...)."""


# --- statistics ------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): p99 of 300 samples is the 297th smallest."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


# --- the subjects ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """A functions source to serve: our bundle, or the baseline."""

    name: str  # "mlops-events" | "baseline"
    source: Path  # main.py
    targets: tuple[str, ...]
    env: Mapping[str, str]

    @property
    def directory(self) -> Path:
        return self.source.parent


def base_env() -> dict[str, str]:
    """The environment of a child: ours minus anything that could point at a real cloud."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_", "MLOPS_", "VERTEX_"))
    }
    for name in (
        "STORAGE_EMULATOR_HOST",
        "PUBSUB_EMULATOR_HOST",
        "DATA_BUCKET",
        "PIPELINE_ROOT",
        "DEAD_LETTER_TOPIC",
    ):
        env.pop(name, None)
    env.update(
        GOOGLE_CLOUD_PROJECT=PROJECT,
        GOOGLE_CLOUD_REGION=REGION,
        DATA_BUCKET=BUCKET,
        PIPELINE_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
        PYTHONUNBUFFERED="1",
        WORKERS="1",  # functions-framework's gunicorn: one worker, as one Cloud Functions instance
    )
    return env


def prepare_subjects(
    work: Path, vertex_url: str, storage_host: str | None, baseline_storage: str
) -> list[Subject]:
    """Compile the templates, build the bundle, and describe both subjects."""
    from functions.bundle import build_bundle
    from pipelines.compile import compile_all

    templates = work / "templates"
    if not (templates / "manifest.json").is_file():
        compile_all(templates)
    bundle = work / "bundle"
    if not (bundle / "main.py").is_file():
        build_bundle(bundle, templates)
    # Debounce off (quiet 0s): one run per object (its live generation), what the figures count.
    ours = base_env() | {
        "VERTEX_API_ENDPOINT": vertex_url,
        "MLOPS_LAUNCHER": "vertex",
        "MLOPS_DEBOUNCE_QUIET": "0s",
    }
    if storage_host:
        ours["STORAGE_EMULATOR_HOST"] = storage_host
    naive = base_env() | {
        "VERTEX_API_ENDPOINT": vertex_url,
        "STORAGE_EMULATOR_HOST": baseline_storage,
        # The baseline imports the project's pipeline definitions (the same pipeline, compiled per request).
        "PYTHONPATH": str(REPO),
    }
    return [
        Subject("mlops-events", bundle / "main.py", ENTRY_POINTS, ours),
        Subject("baseline", BASELINE_DIR / "main.py", ("on_new_data",), naive),
    ]


def floor_subject() -> Subject:
    """The empty function (bench/floor): the same interpreter, framework and environment, no code."""
    return Subject("floor", FLOOR_DIR / "main.py", ("on_new_data",), base_env())


# --- fresh processes -------------------------------------------------------------------------


@dataclass
class Child:
    """A child process whose peak RSS (its own and its reaped children's) we read at exit."""

    process: subprocess.Popen[bytes]
    started: float  # perf_counter just before Popen
    log_path: Path | None = None
    peak_rss_mb: float | None = None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> float:
        """Stop it (SIGINT = gunicorn's quick shutdown, which reaps its worker) and return the peak
        RSS in MB: ``wait4`` reports max(child, its waited-for children)."""
        proc = self.process
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            deadline = time.monotonic() + timeout
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    self.peak_rss_mb = usage.ru_maxrss / 1024
                    with contextlib.suppress(ProcessLookupError):  # a worker left behind, if any
                        os.killpg(proc.pid, signal.SIGKILL)
                    break
                if time.monotonic() > deadline:  # the whole group: gunicorn's worker too
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    deadline = time.monotonic() + timeout
                time.sleep(0.01)
        return self.peak_rss_mb or float("nan")

    def wait(self) -> tuple[int, float]:
        """Wait for a process that exits by itself: (exit code, peak RSS MB)."""
        _, status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.peak_rss_mb = usage.ru_maxrss / 1024
        return self.process.returncode, self.peak_rss_mb

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def spawn(cmd: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path | None = None) -> Child:
    out: Any = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("ab")
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    finally:
        if log_path is not None:
            out.close()
    return Child(proc, started, log_path)


def run_python(code: str, env: Mapping[str, str], cwd: Path) -> tuple[float, float]:
    """A fresh ``python -c CODE``: (wall seconds from spawn to exit, peak RSS MB)."""
    child = spawn([PYTHON, "-c", code], env, cwd)
    code_, rss = child.wait()
    wall = time.perf_counter() - child.started
    if code_ != 0:
        raise BenchError(f"python -c {code!r} in {cwd} exited with {code_}")
    return wall, rss


def serve(subject: Subject, target: str, work: Path, port: int | None = None) -> tuple[Child, str]:
    """Start functions-framework for one entry point; returns (child, url) without waiting."""
    port = port or free_port()
    cmd = [
        FUNCTIONS_FRAMEWORK,
        "--source", str(subject.source),
        "--target", target,
        "--signature-type", "cloudevent",
        "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    log = work / "logs" / f"{subject.name}-{target}-{port}.log"
    return spawn(cmd, subject.env, subject.directory, log), f"http://127.0.0.1:{port}"


def wait_ready(child: Child, url: str, timeout: float = READY_TIMEOUT_S) -> float:
    """Poll until the server answers anything over HTTP; returns seconds since spawn."""
    deadline = time.monotonic() + timeout
    while True:
        if child.process.poll() is not None:
            raise BenchError(
                f"functions-framework exited with {child.process.returncode}:\n{child.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url + "/", timeout=5):
                pass
            return time.perf_counter() - child.started
        except urllib.error.HTTPError:  # any HTTP answer (400: no CloudEvent) means it serves
            return time.perf_counter() - child.started
        except OSError:
            pass
        if time.monotonic() > deadline:
            child.stop()
            raise BenchError(
                f"functions-framework at {url} not ready after {timeout:.0f} s:\n{child.log_tail()}"
            )
        time.sleep(0.002)


@contextlib.contextmanager
def served(subject: Subject, target: str, work: Path) -> Iterator[tuple[Child, str]]:
    child, url = serve(subject, target, work)
    try:
        wait_ready(child, url)
        yield child, url
    finally:
        child.stop()


# --- stand-in servers ----------------------------------------------------------------------------


class TimedVertex:
    """The Vertex AI emulator (jobs recorded, not run) in a process of its own
    (``bench.vertex_server``: why there), which records when each POST started and ended so its
    own time can be subtracted."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [PYTHON, "-m", "bench.vertex_server"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().decode().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise BenchError(f"bench.vertex_server did not start (exit {self._process.poll()})")

    def _get(self, route: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/_bench/{route}", timeout=30) as response:
            return json.loads(response.read())

    @property
    def timings(self) -> list[tuple[float, float]]:
        return [(a, b) for a, b in self._get("timings")["timings"]]

    def timings_since(self, seen: int, wait: float = 1.0) -> list[tuple[float, float]]:
        """The timings after the first ``seen``, waiting up to ``wait`` seconds for one: the server
        records a call after its answer is written, so the client can read it a moment earlier."""
        deadline = time.perf_counter() + wait
        while True:
            found = self.timings[seen:]
            if found or time.perf_counter() > deadline:
                return found
            time.sleep(0.0002)

    @property
    def stats(self) -> Stats:
        return Stats(**self._get("stats"))

    def reset(self) -> None:
        """Forget every job, zero the stats and timings: each repetition starts alike."""
        self._get("reset")

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@contextlib.contextmanager
def timed_vertex() -> Iterator[TimedVertex]:
    vertex = TimedVertex()
    try:
        yield vertex
    finally:
        vertex.stop()


class StorageStub:
    """Answers the storage calls ``PipelineJob.submit()`` makes before CreatePipelineJob.

    ``submit()`` checks that the pipeline-root bucket exists and creates it; when it exists it
    checks the bucket's owner through Resource Manager, which offline retries for about a minute
    (measured here). So this stub says the bucket never exists: every submit pays exists + create +
    IAM get + IAM set on loopback, about what the ownership check costs in the cloud.
    """

    def __init__(self) -> None:
        self.calls = 0
        stub = self

        class Handler(JsonHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, status: int, payload: Mapping[str, Any]) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                stub.calls += 1
                self.answer(status, payload)

            def do_GET(self) -> None:
                if self.path.split("?")[0].endswith("/iam"):
                    self._answer(200, {"kind": "storage#policy", "bindings": [], "etag": "CAE="})
                else:
                    self._answer(404, {"error": {"code": 404, "message": "Not Found"}})

            def do_POST(self) -> None:
                self._answer(200, {"kind": "storage#bucket", "name": "bucket", "id": "bucket"})

            def do_PUT(self) -> None:
                self._answer(200, {"kind": "storage#policy", "bindings": [], "etag": "CAE="})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> StorageStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageEvent:
    """One delivery of a storage ``finalized`` CloudEvent in binary mode."""

    event_id: str
    name: str
    generation: int
    headers: Mapping[str, str] = field(hash=False)
    body: bytes = field(hash=False)

    @property
    def version(self) -> tuple[str, int]:
        return self.name, self.generation


def storage_event(name: str, generation: int, event_id: str, bucket: str = BUCKET) -> StorageEvent:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data = {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/{generation}",
        "name": name,
        "bucket": bucket,
        "generation": str(generation),
        "metageneration": "1",
        "contentType": "text/csv",
        "timeCreated": now,
        "updated": now,
        "size": "48213",
        "md5Hash": "kF8MuJ5+CTJxvyhHS1xzRg==",
        "crc32c": "rTVTeQ==",
    }
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-subject": f"objects/{name}",
        "ce-time": now,
        "Content-Type": "application/json",
    }
    return StorageEvent(event_id, name, generation, headers, json.dumps(data).encode())


def object_name(i: int) -> str:
    return f"incoming/dataset-{i % 10}/part-{i:04d}.csv"


class Objects:
    """Writes objects to fake-gcs-server over its JSON API: the guards read an object's live
    generation (ordering), so an event must be about an object that exists."""

    def __init__(self, host: str, bucket: str = BUCKET) -> None:
        import requests

        self.host = host.rstrip("/")
        self.bucket = bucket
        self.http = requests.Session()
        response = self.http.post(
            f"{self.host}/storage/v1/b", params={"project": PROJECT}, json={"name": bucket}
        )
        if response.status_code not in (200, 409):
            raise BenchError(
                f"cannot create bucket {bucket} on {host}: {response.status_code} {response.text}"
            )

    def put(self, name: str, data: bytes = b"a,b,target\n1,2,0\n") -> int:
        response = self.http.post(
            f"{self.host}/upload/storage/v1/b/{self.bucket}/o",
            params={"uploadType": "media", "name": name},
            data=data,
            headers={"Content-Type": "text/csv"},
        )
        if response.status_code != 200:
            raise BenchError(
                f"cannot write gs://{self.bucket}/{name}: {response.status_code} {response.text}"
            )
        return int(response.json()["generation"])

    def event(self, name: str, event_id: str) -> StorageEvent:
        """A new object (or a new generation of it) and its finalized event."""
        return storage_event(name, self.put(name), event_id, self.bucket)


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its live descendants (Linux /proc):
    what the function costs per event whatever else the machine is doing."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total
