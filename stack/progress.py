"""The demo's live progress: each event a function decided on (the functions' log lines, as they
are written) and each run's state and tasks (the pipeline jobs Vertex AI reports, polled)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from stack.config import FUNCTIONS
from stack.lineage import RunNode
from stack.runs import TERMINAL, router_filter, run_from_job
from stack.vertex_client import VertexApiError, VertexClient

Echo = Callable[[str], None]


class Progress:
    """Prints, as they happen, each event a function decided on (its log) and each run's tasks and
    state (the pipeline jobs Vertex AI reports)."""

    def __init__(self, root: Path, echo: Echo, started: float) -> None:
        self.root = root
        self.echo = echo
        self.started = started
        self.client: VertexClient | None = None  # set once the stack is up
        self._offsets: dict[Path, int] = {}
        self._seen: dict[tuple[str, str], str] = {}  # (job, task or "") -> state shown
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-progress", daemon=True)
        self._lock = threading.Lock()

    def say(self, tag: str, text: str) -> None:
        with self._lock:
            self.echo(f"[{time.monotonic() - self.started:6.1f}s] {tag:<6} {text}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(0.3):
            self.poll()

    def poll(self) -> None:
        for name in FUNCTIONS:
            for line in self._new_lines(self.root / "logs" / f"{name}.log"):
                self._event_line(name, line)
        if self.client is not None:
            try:
                jobs = self.client.list_jobs(router_filter())
            except VertexApiError:
                return  # stopping, or busy: the next poll shows it
            for job in reversed(jobs):  # oldest first
                self._run(run_from_job(job))

    def _new_lines(self, path: Path) -> list[str]:
        try:
            with path.open("rb") as f:
                f.seek(self._offsets.get(path, 0))
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data.rfind(b"\n") + 1  # a line being written is read next time
        self._offsets[path] = self._offsets.get(path, 0) + complete
        return data[:complete].decode(errors="replace").splitlines()

    def _event_line(self, function: str, line: str) -> None:
        if not line.startswith("{"):
            return
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            return
        if "decision" not in doc:
            return
        message = str(doc.get("message", ""))
        if doc["decision"] == "defer":  # the guards' line: the event will come back
            self.say("event", f"{function} deferred it: {message[:150]}")
            return
        what = doc.get("identity") or doc.get("event_type")
        if doc.get("severity") == "WARNING" and doc.get("status") != "exists_failed":
            message = "deferred, the platform will redeliver: " + message.split(": ", 1)[-1]
        self.say("event", f"{function} <- {what}")
        self.say("", f"  {message[:160]}")

    def _run(self, run: RunNode) -> None:
        job = run.job_id
        short = job.split("-")[0] + "…" + job[-6:]
        for task, detail in run.tasks.items():
            state = str(detail.get("status"))
            if self._seen.get((job, task)) == state:
                continue
            self._seen[(job, task)] = state
            took = f" ({detail['seconds']:.1f}s)" if detail.get("seconds") is not None else ""
            if state == "RUNNING":
                self.say("run", f"{short} task {task} ...")
            else:
                self.say("run", f"{short} task {task}: {state}{took}")
        if self._seen.get((job, "")) != run.state and run.state in ("RUNNING", *TERMINAL):
            self._seen[(job, "")] = run.state
            extra = ""
            if run.state == "FAILED":
                extra = f": {run.failed_task}: {str(run.error)[:200]}"
            elif run.seconds is not None and run.state in TERMINAL:
                extra = f" in {run.seconds:.1f}s"
            self.say("run", f"{job} {run.state}{extra}")
