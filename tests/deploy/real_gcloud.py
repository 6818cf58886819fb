"""Run commands with the real ``gcloud`` CLI, offline.

gcloud checks every flag and value (names, choices, formats, bucket names...) before it calls an
API, and exits 2 on a bad one. Pointing every ``CLOUDSDK_API_ENDPOINT_OVERRIDES_<API>`` at a local
stub (with ``CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true``) lets a command that parsed reach the stub,
which records the request and answers 404: reaching the stub proves that the command line is
valid, and the recorded body is what the real CLI would send to Google. Each command gets its own
path prefix on the stub, so several can run at once and each request is attributed to its command.

A generated script is run with bash and a stand-in ``gcloud`` (``SHIM``) that records each call
and answers reads as gcloud would; the distinct calls are then checked with the real CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

APIS = (
    "ARTIFACTREGISTRY", "CLOUDFUNCTIONS", "CLOUDRESOURCEMANAGER", "CLOUDSCHEDULER", "EVENTARC", "IAM",
    "PUBSUB", "RUN", "SERVICEUSAGE", "STORAGE",
)  # fmt: skip
WORKERS = 3


def real_gcloud() -> str | None:
    return shutil.which("gcloud")


@dataclass
class Request:
    method: str
    path: str  # without the command's prefix
    body: Any


@dataclass
class Stub:
    server: ThreadingHTTPServer
    requests: dict[str, list[Request]] = field(default_factory=dict)  # by command prefix

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            _, prefix, rest = self.path.split("/", 2)
            stub.requests.setdefault(prefix, []).append(Request(self.command, "/" + rest, body))
            data = json.dumps({"error": {"code": 404, "status": "NOT_FOUND", "message": "stub"}}).encode()
            self.send_response(404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


def start_stub() -> Iterator[Stub]:
    stub = Stub(ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))
    stub.server.RequestHandlerClass = _handler(stub)
    thread = threading.Thread(target=stub.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.server.shutdown()
        stub.server.server_close()


@dataclass(frozen=True)
class Checked:
    argv: tuple[str, ...]
    code: int
    stderr: str
    requests: tuple[Request, ...]  # what reached the stub while the command ran
    seconds: float

    @property
    def valid(self) -> bool:
        """Parsed (not a usage error) and called the API."""
        return self.code != 2 and bool(self.requests)


class RealGcloud:
    def __init__(self, stub: Stub, work: Path) -> None:
        gcloud = real_gcloud()
        assert gcloud, "gcloud is not installed"
        self.gcloud, self.stub, self.work = gcloud, stub, work
        self._next = 0
        self._lock = threading.Lock()

    def _env(self, prefix: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
        env.update(
            CLOUDSDK_CONFIG=str(self.work / "gcloud-config" / prefix),
            CLOUDSDK_AUTH_DISABLE_CREDENTIALS="true",
            CLOUDSDK_CORE_DISABLE_PROMPTS="1",
            CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true",
            CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="true",
        )
        env.update({f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}": f"{self.stub.url}/{prefix}/" for api in APIS})
        return env

    def run(self, argv: Sequence[str]) -> Checked:
        """``argv`` starts with "gcloud"."""
        with self._lock:
            self._next += 1
            prefix = f"c{self._next}"
        started = time.monotonic()
        proc = subprocess.run(
            [self.gcloud, *argv[1:]], env=self._env(prefix), capture_output=True, text=True, timeout=300
        )
        requests = tuple(self.stub.requests.get(prefix, ()))
        return Checked(tuple(argv), proc.returncode, proc.stderr, requests, time.monotonic() - started)

    def run_all(self, commands: Sequence[Sequence[str]]) -> list[Checked]:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            return list(pool.map(self.run, commands))


VERBS = frozenset(
    {"describe", "create", "update", "delete", "list", "deploy", "enable", "add-iam-policy-binding",
     "get-iam-policy", "service-agent"}
)  # fmt: skip


def shape(argv: Sequence[str]) -> str:
    """Commands of one shape take the same flags: checking one checks them all. Every scheduler
    command, every audit-trigger spelling and every service agent counts on its own."""
    if "scheduler" in argv:
        return json.dumps(list(argv))
    words = [a for a in argv if not a.startswith("--")]
    verb = next((i for i, w in enumerate(words) if w in VERBS), len(words) - 1)
    flags = sorted(a.split("=", 1)[0] for a in argv if a.startswith("--"))
    values = sorted(a.split(".")[3] for a in argv if a.startswith("--event-filters=methodName="))
    values += [a for a in argv if a.startswith("--service=")]  # each service agent
    return json.dumps([words[: verb + 1], flags, values])


def distinct(commands: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    seen: dict[str, tuple[str, ...]] = {}
    for argv in commands:
        seen.setdefault(shape(argv), tuple(argv))
    return list(seen.values())


# The stand-in ``gcloud`` of a script run: records each call; describe fails (nothing exists yet,
# so the script takes its create branches), captures print a plausible value, lists name one stale
# resource so the prune loops run their delete.
SHIM = r"""#!{python}
import json, os, sys

argv = sys.argv[1:]
with open(os.environ["GCLOUD_CALLS"], "a") as f:
    f.write(json.dumps(["gcloud", *argv]) + "\n")
fmt = next((a.split("=", 1)[1] for a in argv if a.startswith("--format=")), "")
answers = {{
    "value(projectNumber)": "123456789",
    "value(eventTrigger.trigger)": "projects/p/locations/r/triggers/t",
    "value(transport.pubsub.subscription)": "projects/p/subscriptions/s",
    "value(email)": "service-123456789@example.iam.gserviceaccount.com",
    "value(config.name)": "",
    "value(name.basename())": "mlops-schedule-stale" if "scheduler" in argv else "mlops-registry-v1-copy-model",
}}
if "describe" in argv and fmt not in answers:
    sys.exit(1)
if fmt in answers:
    print(answers[fmt])
elif "service-agent" in argv:
    print("service-123456789@gs-project-accounts.iam.gserviceaccount.com")
elif "get-iam-policy" in argv:
    print("{{}}")
"""


def script_calls(script: Path, work: Path) -> list[list[str]]:
    """Run ``script`` with bash and the shim as ``gcloud``; every gcloud call it made."""
    bin_dir = work / "shim-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "gcloud"
    shim.write_text(SHIM.format(python=sys.executable))
    shim.chmod(0o755)
    calls = work / "calls.jsonl"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "GCLOUD_CALLS": str(calls),
    }
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
