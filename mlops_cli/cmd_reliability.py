"""``mlops-events reliability``: prove exactly-once effects under duplicates, disorder, storms, faults.

It starts real parts on loopback: fake-gcs-server (data and state), a fake Vertex REST server that
fails a share of create calls (429, 503, a stall past the client's timeout, and a stall *after*
the job was created), and the functions served by functions-framework in subprocesses. Then it
writes objects and sends CloudEvents (binary mode) the way Eventarc would: duplicates with new
event ids, stale generations after newer ones, alert storms (one incident open, open, closed),
malformed events, one event delivered from several threads at once, and it redelivers every
non-2xx answer (with back-off) until the function accepts it.

Every expected run is a *unit* (one object generation, one debounced batch folder, one model's
retraining, one run request); each created Vertex job is mapped back to its unit from its
parameters. lost = units with no job, doubled = extra jobs of a unit + jobs of no unit.
Exit status 0 only when lost and doubled are both 0 and every event was accepted.

Pipelines are not run: the fake Vertex records jobs; the templates are stubs.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STORAGE_TYPE = "google.cloud.storage.object.v1.finalized"
PUBSUB_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
PROJECT = "local-project"
ENTRY_POINTS = ("on_new_data", "on_monitoring_alert", "on_run_request")

RULES = """\
version: 1
rules:
  - name: new-training-data
    on: storage.object.finalized
    match: {bucket: "${DATA_BUCKET}", prefix: incoming/, suffix: [.csv, .jsonl, .parquet], min_size: 1}
    launch:
      pipeline: training
      parameters: {data_uri: "{uri}", model_name: "{dataset|'default'}", trigger: "{uri}#{generation}"}
      caching: false
  - name: batched-data
    on: storage.object.finalized
    match: {bucket: "${DATA_BUCKET}", prefix: batches/, suffix: [.csv], min_size: 1}
    launch:
      pipeline: training
      parameters: {data_uri: "{uri}", model_name: "{dataset|'default'}", trigger: "{uri}#{generation}"}
      caching: false
    debounce: {quiet: "${RELIABILITY_QUIET:-1s}", max_wait: 30s}
  - name: drift-retrain
    on: monitoring.alert
    match: {state: open}
    launch:
      pipeline: retraining
      parameters: {model_name: "{model|'default'}", alert_id: "{alert_id}", trigger: "{source}:{alert_id}"}
      caching: false
    cooldown: 6h
  - name: run-request
    on: run.request
    launch: {pipeline: "{pipeline}", parameters: "{parameters}"}
"""


# --- CloudEvents in binary mode ------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery: the function's entry point, CloudEvent headers and body."""

    entry_point: str
    headers: dict[str, str]
    body: bytes
    label: str  # what it is, for the report


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def storage_event(
    bucket: str,
    name: str,
    generation: int,
    size: int,
    *,
    metadata: dict[str, str] | None = None,
    event_id: str | None = None,
    time_created: str | None = None,
) -> Delivery:
    data: dict[str, Any] = {
        "kind": "storage#object",
        "bucket": bucket,
        "name": name,
        "generation": str(generation),
        "metageneration": "1",
        "size": str(size),
        "contentType": "text/csv",
        "timeCreated": time_created or _now(),
        "updated": _now(),
    }
    if metadata:
        data["metadata"] = metadata
    headers = {
        "ce-specversion": "1.0",
        "ce-type": STORAGE_TYPE,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-subject": f"objects/{name}",
        "ce-id": event_id or uuid.uuid4().hex,
        "ce-time": _now(),
        "content-type": "application/json",
    }
    return Delivery("on_new_data", headers, json.dumps(data).encode(), "storage")


def pubsub_event(
    entry_point: str, topic: str, payload: Any, *, message_id: str, event_id: str | None = None
) -> Delivery:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    body = {
        "message": {"data": base64.b64encode(raw).decode(), "messageId": message_id, "publishTime": _now()},
        "subscription": f"projects/{PROJECT}/subscriptions/eventarc-{topic}",
    }
    headers = {
        "ce-specversion": "1.0",
        "ce-type": PUBSUB_TYPE,
        "ce-source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/{topic}",
        "ce-id": event_id or message_id,
        "ce-time": _now(),
        "content-type": "application/json",
    }
    return Delivery(entry_point, headers, json.dumps(body).encode(), "pubsub")


def incident(incident_id: str, state: str, model: str) -> dict[str, Any]:
    """A Cloud Monitoring alert notification (schema 1.2)."""
    return {
        "version": "1.2",
        "incident": {
            "incident_id": incident_id,
            "state": state,
            "started_at": int(time.time()),
            "policy_name": "drift",
            "policy_user_labels": {"model": model},
            "condition_name": "drift above threshold",
            "summary": f"drift on {model}",
        },
    }


def redeliver(delivery: Delivery, **changes: str) -> Delivery:
    """The same payload with other headers (a new event id: a duplicate as GCS produces them)."""
    return Delivery(delivery.entry_point, {**delivery.headers, **changes}, delivery.body, delivery.label)


# --- the plan: what is sent and what must come out ------------------------------------------------


@dataclass
class Plan:
    bucket: str
    deliveries: list[Delivery] = field(default_factory=list)
    concurrent: list[Delivery] = field(default_factory=list)  # each sent from several threads at once
    units: set[tuple[str, str]] = field(default_factory=set)  # expected runs
    duplicates: int = 0
    malformed: int = 0


def build_plan(bucket: str, events: int, rng: random.Random) -> Plan:
    """Write the objects (fake-gcs-server assigns generations) and list the deliveries."""
    from pipelines import storage_io

    plan = Plan(bucket)
    client = storage_io.storage_client().bucket(bucket)
    scale = max(1, events // 1000)

    def upload(name: str, data: bytes, metadata: dict[str, str] | None = None) -> tuple[int, str]:
        blob = client.blob(name)
        if metadata:
            blob.metadata = metadata
        blob.upload_from_string(data, content_type="text/csv")
        return int(blob.generation), blob.time_created.isoformat()

    def send(delivery: Delivery, copies: int) -> None:
        plan.deliveries.append(delivery)
        for _ in range(copies - 1):
            plan.deliveries.append(redeliver(delivery, **{"ce-id": uuid.uuid4().hex}))
            plan.duplicates += 1

    # 1. New data, no debounce: 120 objects, a third overwritten (both generations are sent; the
    #    older one is stale), each generation delivered 1-3 times with new event ids.
    for i in range(120 * scale):
        name = f"incoming/model-{i % 7}/part-{i:04d}.csv"
        gens = [upload(name, b"x,y\n1,2\n")]
        if i % 3 == 0:
            gens.append(upload(name, b"x,y\n1,2\n3,4\n"))
        plan.units.add(("train", f"gs://{bucket}/{name}"))
        for gen, created in gens:
            send(storage_event(bucket, name, gen, 8, time_created=created), rng.choice((1, 2, 2, 3)))
    # Loops and hygiene: pipeline outputs and empty objects under incoming/ never launch.
    for i in range(10 * scale):
        name = f"incoming/model-0/predictions-{i}.csv"
        gen, _ = upload(name, b"p\n1\n", {"mlops-events-output": "true"})
        send(storage_event(bucket, name, gen, 4, metadata={"mlops-events-output": "true"}), 2)
        empty = f"incoming/model-1/empty-{i}.csv"
        gen, _ = upload(empty, b"")
        send(storage_event(bucket, empty, gen, 0), 1)

    # 2. Bursts under a debounced prefix: one run per folder with every file of the folder. A
    #    burst arrives together (within the quiet period), so these go first, shuffled among
    #    themselves; their redeliveries keep coming during the rest of the run.
    others, plan.deliveries = plan.deliveries, []
    for b in range(8 * scale):
        names = [f"batches/batch-{b:03d}/file-{j}.csv" for j in range(6)]
        for name in names:
            gen, created = upload(name, b"x\n1\n")
            send(storage_event(bucket, name, gen, 4, time_created=created), rng.choice((1, 2, 3)))
        plan.units.add(("batch", ",".join(f"gs://{bucket}/{n}" for n in sorted(names))))

    rng.shuffle(plan.deliveries)
    bursts, plan.deliveries = plan.deliveries, others

    # 3. Alert storms: per model several incidents, each notified open, open again, then closed:
    #    one retraining per model (cooldown), whatever the order.
    for m in range(15 * scale):
        model = f"churn-{m}"
        plan.units.add(("retrain", model))
        for k in range(3):
            inc = f"inc-{m}-{k}"
            for n, state in enumerate(("open", "open", "closed")):
                d = pubsub_event(
                    "on_monitoring_alert", "alerts", incident(inc, state, model), message_id=f"{inc}-{n}"
                )
                send(d, rng.choice((1, 2)))

    # 4. Run requests with idempotency keys, redelivered under new message ids.
    for r in range(100 * scale):
        key = f"req-{r}"
        payload = {
            "pipeline": "training",
            "parameters": {"data_uri": f"gs://{bucket}/requests/{key}.csv", "model_name": "requested"},
            "idempotency_key": key,
        }
        plan.units.add(("train", f"gs://{bucket}/requests/{key}.csv"))
        d = pubsub_event("on_run_request", "run-requests", payload, message_id=f"msg-{r}")
        plan.deliveries.append(d)
        for c in range(rng.choice((0, 1, 2))):
            plan.deliveries.append(redeliver(d, **{"ce-id": f"msg-{r}-again-{c}"}))
            plan.duplicates += 1

    # 5. Malformed: each must be acknowledged (2xx) and dead-lettered, never launch.
    bad: list[Delivery] = []
    for i in range(40 * scale):
        base = storage_event(bucket, f"incoming/model-0/bad-{i}.csv", 1, 3)
        kind = i % 5
        if kind == 0:
            bad.append(Delivery("on_new_data", base.headers, b"\x00not json{", "malformed"))
        elif kind == 1:
            bad.append(
                Delivery("on_new_data", base.headers, json.dumps({"bucket": bucket}).encode(), "malformed")
            )
        elif kind == 2:
            bad.append(
                pubsub_event("on_run_request", "run-requests", {"pipeline": "no-such"}, message_id=f"bad-{i}")
            )
        elif kind == 3:
            evil = {
                "pipeline": "training",
                "parameters": {"data_uri": "gs://x/y", "model_name": "m", "service_account": "evil@x"},
            }
            bad.append(pubsub_event("on_run_request", "run-requests", evil, message_id=f"evil-{i}"))
        else:
            bad.append(
                pubsub_event("on_monitoring_alert", "alerts", b"\xff\xfe garbage", message_id=f"junk-{i}")
            )
    plan.deliveries += [replace(d, label="malformed") for d in bad]
    plan.malformed = len(bad)

    rng.shuffle(plan.deliveries)  # disorder: older generations after newer, closed before open...
    plan.deliveries = bursts + plan.deliveries
    # 6. Some events delivered from several threads at the same moment (identical deliveries).
    plan.concurrent = rng.sample([d for d in plan.deliveries if d.label != "malformed"], 40 * scale)
    plan.duplicates += 2 * len(plan.concurrent)
    # Top up with more duplicates until at least `events` deliveries are planned.
    pool = [d for d in plan.deliveries if d.label != "malformed"]
    while len(plan.deliveries) + 3 * len(plan.concurrent) < events:
        plan.deliveries.insert(
            rng.randrange(len(plan.deliveries)), redeliver(rng.choice(pool), **{"ce-id": uuid.uuid4().hex})
        )
        plan.duplicates += 1
    return plan


def unit_of(job: dict[str, Any], bucket: str) -> tuple[str, str]:
    params = job.get("runtimeConfig", {}).get("parameterValues", {})
    labels = job.get("labels", {})
    if labels.get("mlops-pipeline") == "retraining":
        return ("retrain", str(params.get("model_name")))
    data_uri = str(params.get("data_uri", ""))
    if data_uri.startswith(f"gs://{bucket}/batches/"):
        return ("batch", ",".join(sorted(data_uri.split(","))))
    return ("train", data_uri)


# --- the servers --------------------------------------------------------------------------------


def stub_templates(directory: Path) -> Path:
    """The real compiled templates: their manifest is the catalog the functions route with."""
    from pipelines.compile import compile_all

    compile_all(directory)
    return directory


@contextmanager
def serve_functions(env: dict[str, str], workdir: Path) -> Iterator[dict[str, str]]:
    """One functions-framework process per entry point; yields entry point -> base URL."""
    from stack.emulators import free_port

    source = Path(__file__).resolve().parent.parent / "functions" / "main.py"
    procs: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    try:
        for target in ENTRY_POINTS:
            port = free_port()
            log = (workdir / f"{target}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "functions_framework", "--target", target, "--source", str(source),
                     "--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(port)],
                    env=env, stdout=log, stderr=subprocess.STDOUT, cwd=source.parent.parent,
                )
            )  # fmt: skip
            urls[target] = f"http://127.0.0.1:{port}"
        _wait_ready(urls)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_ready(urls: dict[str, str], timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    for url in urls.values():
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"functions-framework did not start at {url}") from None
                time.sleep(0.1)


# --- delivery, as Eventarc does it ----------------------------------------------------------------


@dataclass
class Tally:
    attempts: int = 0
    retried: int = 0
    not_accepted: int = 0
    status: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Redeliveries:
    """Deliveries due at a time, as Eventarc schedules them: a failed delivery comes back after a
    back-off without holding up the others (a worker never sleeps on one event)."""

    def __init__(self, max_attempts: int = 400) -> None:
        self.max_attempts = max_attempts
        self._heap: list[tuple[float, int, Delivery, int]] = []
        self._seq = 0
        self._pending = 0
        self._cond = threading.Condition()

    def put(self, d: Delivery, due: float = 0.0, attempt: int = 0) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, d, attempt))
            self._pending += 1
            self._cond.notify()

    def take(self) -> tuple[Delivery, int] | None:
        with self._cond:
            while True:
                if self._pending == 0:
                    self._cond.notify_all()
                    return None
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    _, _, d, attempt = heapq.heappop(self._heap)
                    return d, attempt
                self._cond.wait(timeout=(self._heap[0][0] - now) if self._heap else 0.1)

    def done(self, d: Delivery, attempt: int, accepted: bool, tally: Tally) -> None:
        if not accepted and attempt + 1 < self.max_attempts:
            delay = min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.5)
            self.put(d, time.monotonic() + delay, attempt + 1)
        elif not accepted:
            with tally.lock:
                tally.not_accepted += 1
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()


def post(session: Any, url: str, d: Delivery, tally: Tally, retry: bool) -> bool:
    try:
        status = session.post(url, data=d.body, headers=d.headers, timeout=30).status_code
    except Exception:
        status = 599
    with tally.lock:
        tally.attempts += 1
        tally.status[status] += 1
        tally.retried += int(retry)
    return 200 <= status < 300


def _restore_environ(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run(args: argparse.Namespace) -> int:
    from pipelines import storage_io
    from stack.emulators import start_fake_gcs
    from stack.fake_vertex import FakeVertex, Faults

    rng = random.Random(args.seed)
    started = time.monotonic()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlops-reliability-")))
        gcs = start_fake_gcs(workdir / "gcs")
        stack.callback(gcs.stop)
        vertex = FakeVertex(Faults(rate=args.fault_rate, timeout_seconds=1.5, seed=args.seed)).start()
        stack.callback(vertex.stop)
        bucket = f"reliability-{uuid.uuid4().hex[:8]}"
        # The storage client reads these; put them back afterwards (the emulator dies with this run).
        saved = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")}
        stack.callback(_restore_environ, saved)
        os.environ.update({"STORAGE_EMULATOR_HOST": gcs.host, "GOOGLE_CLOUD_PROJECT": PROJECT})
        storage_io.ensure_bucket(bucket)
        rules = workdir / "rules.yaml"
        rules.write_text(RULES, encoding="utf-8")
        env = {
            **os.environ,
            "STORAGE_EMULATOR_HOST": gcs.host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "DATA_BUCKET": bucket,
            "MLOPS_STATE_BUCKET": bucket,
            "MLOPS_CONFIG": str(rules),
            "MLOPS_TEMPLATES": str(stub_templates(workdir / "templates")),
            "MLOPS_LAUNCHER": "vertex",
            "VERTEX_API_ENDPOINT": vertex.url,
            "VERTEX_TIMEOUT_SECONDS": "1.0",  # the injected stalls (1.5 s) become client time-outs
            "MLOPS_DEAD_LETTER_DIR": str(workdir / "dead-letters"),
        }
        env.pop("DEAD_LETTER_TOPIC", None)
        plan = build_plan(bucket, args.events, rng)
        urls = stack.enter_context(serve_functions(env, workdir))
        print(f"sending {len(plan.deliveries) + 3 * len(plan.concurrent)} deliveries to {len(urls)} functions "
              f"(fault rate {args.fault_rate:.0%}, seed {args.seed})", flush=True)  # fmt: skip
        tally = Tally()
        ok = _send_all(plan, urls, tally, args.threads)
        dead = [json.loads(line) for f in (workdir / "dead-letters").glob("*.jsonl") for line in f.open()]
        if args.verbose:
            for reason, n in Counter(str(r["reason"])[:110] for r in dead).most_common():
                print(f"  dead letter x{n}: {reason}")
        report = _report(plan, vertex, tally, len(dead), time.monotonic() - started)
    for line in report["lines"]:
        print(line)
    good = ok and report["lost"] == 0 and report["doubled"] == 0
    print("result: " + ("OK (exactly once)" if good else "FAILED"))
    return 0 if good else 1


def _send_all(plan: Plan, urls: dict[str, str], tally: Tally, threads: int) -> bool:
    import requests

    queue = Redeliveries()
    for d in plan.deliveries:
        queue.put(d)
    # The same delivery from three workers at the same moment (a platform retry racing the original).
    for d in plan.concurrent:
        for _ in range(3):
            queue.put(d)

    def worker() -> None:
        session = requests.Session()
        while (item := queue.take()) is not None:
            d, attempt = item
            ok = post(session, urls[d.entry_point], d, tally, attempt > 0)
            queue.done(d, attempt, ok, tally)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return tally.not_accepted == 0


def _report(plan: Plan, vertex: Any, tally: Tally, dead_letters: int, elapsed: float) -> dict[str, Any]:
    per_unit: Counter[tuple[str, str]] = Counter(unit_of(job, plan.bucket) for job in vertex.jobs.values())
    lost = sorted(u for u in plan.units if per_unit[u] == 0)
    doubled = sum(n - 1 for u, n in per_unit.items() if u in plan.units and n > 1)
    unexpected = sum(n for u, n in per_unit.items() if u not in plan.units)
    by_kind = Counter(u[0] for u in plan.units)
    faults = dict(vertex.stats.faults)
    sent = len(plan.deliveries) + 3 * len(plan.concurrent)
    lines = [
        f"events sent:        {sent} ({tally.attempts} HTTP deliveries including redeliveries)",
        f"duplicates:         {plan.duplicates}",
        f"malformed:          {plan.malformed} (dead-letter records written: {dead_letters})",
        f"faults injected:    {sum(faults.values())} {faults}",
        f"answers:            {dict(sorted(tally.status.items()))}",
        f"runs expected:      {len(plan.units)} {dict(by_kind)}",
        f"runs created:       {len(vertex.jobs)} (create calls: {len(vertex.requests)}, 409s: {vertex.stats.conflicts})",
        f"lost:               {len(lost)}" + (f" {[u[1][:80] for u in lost[:5]]}" if lost else ""),
        f"doubled:            {doubled + unexpected}"
        + (
            f" ({doubled} extra runs of expected units, {unexpected} runs of no unit)"
            if doubled + unexpected
            else ""
        ),
        f"not accepted:       {tally.not_accepted}",
        f"elapsed:            {elapsed:.1f}s",
    ]
    return {"lines": lines, "lost": len(lost) + tally.not_accepted * 0, "doubled": doubled + unexpected}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reliability",
        help="send >= 1000 events with duplicates, disorder and faults; check exactly-once runs",
        description="Start fake-gcs-server, a fault-injecting fake Vertex and the functions (functions-framework), "
        "send events with duplicates, disorder, alert storms, malformed input and concurrent deliveries, "
        "redeliver every non-2xx, then count runs. Exit 1 when a run is lost or doubled.",
    )
    p.add_argument("--events", type=int, default=1000, help="at least this many deliveries (default 1000)")
    p.add_argument(
        "--fault-rate", type=float, default=0.2, help="share of Vertex create calls that fail (0.2)"
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (plan and faults)")
    p.add_argument("--threads", type=int, default=16, help="concurrent deliveries (16)")
    p.add_argument("--verbose", action="store_true", help="list the dead-letter reasons")
    p.set_defaults(func=run)
