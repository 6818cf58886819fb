"""``mlops-events demo``: the closed loop, scripted, on the local stack.

Everything runs on the production code path: the functions launch pipeline jobs on the Vertex AI
emulator, whose tasks register models and deploy them through the Vertex adapters; the demo
itself reads runs, models and endpoints from the emulator's REST API (``stack.vertex_client``).

1. A dataset lands under ``incoming/churn/`` in the data bucket -> the bridge delivers the storage
   event -> ``on_new_data`` -> training -> version 1 becomes ``champion``.
2. The registry's audit event (alias ``champion`` set) -> ``on_model_registry_event`` -> deployment:
   canary, smoke test, 100 %. The emulator's endpoint serves version 1 (a serving process).
3. The demo sends traffic whose distribution drifts (usage up, more ``pro`` customers) to the
   endpoint's ``:predict``; the serving container records it, and the labels of that period land
   under ``feedback/churn/`` (not watched by the storage rule).
4. A run request on the ``run-requests`` topic -> ``on_run_request`` -> monitoring: per-feature drift
   of the served traffic against the champion's training data; it publishes a drift alert on
   ``alerts`` -> ``on_monitoring_alert`` -> retraining (feedback + the champion's data).
5. The challenger is compared with the champion on the same holdout: promoted (-> a second
   deployment) or not.

Then the lineage summary, ``lineage.json`` and an HTML report. The demo's rules
(``demo/rules.yaml``) shorten the storage debounce and point retraining at ``feedback/``. The demo
keeps its state in a directory of its own (default ``.mlops-local/demo``), marked as the demo's:
it starts afresh there and never deletes a directory it did not create.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stack import demo_data
from stack.config import RetryPolicy, StackConfig, StackError, command_hint, read_stack
from stack.lineage import Lineage, RunNode
from stack.lineage_read import build, read_runs
from stack.progress import Progress
from stack.runs import TERMINAL
from stack.up import Stack
from stack.vertex_client import VertexApiError, VertexClient, for_stack

Echo = Callable[[str], None]
DEMO_RULES = Path(__file__).resolve().parent.parent / "demo" / "rules.yaml"
# A demo state directory holds this file: the demo wipes only directories that have it.
DEMO_MARKER = ".mlops-demo"
MONITORING_SCHEDULE = "monitor-churn"  # demo/rules.yaml's schedule of the monitoring run


class DemoError(RuntimeError):
    """A step of the demo did not happen; the message says which and where to look."""


@dataclass
class DemoResult:
    ok: bool
    seconds: float
    lineage: Lineage
    report: Path
    lineage_json: Path
    steps: dict[str, float] = field(default_factory=dict)


def reset_state(root: Path) -> None:
    """Start the demo's state directory afresh. Only a directory the demo created (it holds
    ``DEMO_MARKER``), or an empty or new one, is wiped: never a user's stack or runs."""
    if read_stack(root) is not None:
        raise StackError(
            f"a stack is running from {root}: {command_hint('down', root)} first (the demo starts afresh)"
        )
    if root.is_dir() and any(root.iterdir()) and not (root / DEMO_MARKER).is_file():
        raise StackError(
            f"{root} is not a demo state directory (it has no {DEMO_MARKER}): the demo starts afresh "
            "and wipes its directory, so it only uses one it created; choose a new or empty "
            "directory, or leave --state-dir at its default"
        )
    if root.is_dir():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / DEMO_MARKER).write_text(
        "state of `mlops-events demo`: removed and recreated by every demo run\n", encoding="utf-8"
    )


def wait_for_run(
    client: VertexClient,
    pipeline: str,
    *,
    exclude: set[str],
    timeout: float,
    what: str,
    where: str,
) -> RunNode:
    """Wait for a new run of ``pipeline`` (not in ``exclude``) to finish; it must succeed. Reads
    the pipeline jobs from Vertex AI (a list filtered on the router's ``mlops-pipeline`` label)."""
    deadline = time.monotonic() + timeout
    found: RunNode | None = None
    while time.monotonic() < deadline:
        runs = [r for r in read_runs(client, pipeline).values() if r.job_id not in exclude]
        if runs:
            found = runs[0]
            if found.state in TERMINAL:
                break
        time.sleep(0.3)
    if found is None:
        raise DemoError(f"{what}: no {pipeline} run started within {timeout:.0f}s; look at {where}")
    if found.state != "SUCCEEDED":
        detail = (
            f"task {found.failed_task}: {found.error}" if found.state == "FAILED" else f"still {found.state}"
        )
        raise DemoError(
            f"{what}: run {found.job_id} {detail}\n(its worker's log: the Vertex AI emulator's state "
            f"directory, .../pipelineJobs/{found.job_id}/worker.log)"
        )
    exclude.add(found.job_id)
    return found


def send_traffic(
    client: VertexClient, model: str, progress: Progress, *, batches: int = 4, rows: int = 100
) -> int:
    """Prediction requests to the model's endpoint (``:predict``), whose features drift a little
    more with each batch. Returns how many instances were sent."""
    endpoint = client.endpoint(model)
    if endpoint is None:
        raise DemoError(f"step 3: Vertex AI has no endpoint named {model!r} after the deployment")
    sent = 0
    for i in range(1, batches + 1):
        strength = i / batches
        frame = demo_data.customers(rows, seed=100 + i, strength=strength, labelled=False)
        versions: set[str] = set()
        for start in range(0, rows, 25):
            instances = json.loads(frame.iloc[start : start + 25].to_json(orient="records"))
            try:
                answer = client.predict(str(endpoint["name"]), instances)
            except VertexApiError as exc:
                raise DemoError(f"step 3: a prediction failed: {exc}") from exc
            versions.add(str(answer.get("modelVersionId")))
            sent += len(instances)
        progress.say(
            "demo",
            f"traffic batch {i}/{batches}: {rows} customers, mean usage {frame['usage'].mean():.1f}, "
            f"{(frame['plan'] == 'pro').mean():.0%} on pro -> served by v{', v'.join(sorted(versions))}",
        )
    return sent


def wait_for_records(records_uri: str, model: str, since: datetime, count: int, timeout: float = 60.0) -> int:
    """Wait until the serving containers have written ``count`` records of ``model`` timed after
    ``since`` (they write in batches, off the request path): monitoring must see the traffic it
    is asked about."""
    from pipelines import storage_io

    prefix = f"{records_uri.rstrip('/')}/{model}/"
    deadline = time.monotonic() + timeout
    after = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # the records' own format
    while True:
        seen = 0
        for uri in storage_io.list_uris(prefix):
            if uri.endswith(".jsonl"):
                lines = storage_io.read_text(uri).splitlines()
                seen += sum(1 for line in lines if str(json.loads(line).get("timestamp")) >= after)
        if seen >= count:
            return seen
        if time.monotonic() > deadline:
            raise DemoError(
                f"step 3: only {seen} of the {count} predictions were recorded under {prefix} after "
                f"{timeout:.0f}s; look at the serving logs in the Vertex AI emulator's state (serving/)"
            )
        time.sleep(0.5)


def request_monitoring(info: dict[str, Any]) -> str:
    """Fire the rules' monitoring schedule now (``demo/rules.yaml``, ``schedules:``): the run request
    its Cloud Scheduler job publishes, through the same path. (The demo's stack does not play the
    clock: a real tick must not add a run to the loop.) Returns the message id."""
    from stack.scheduler import fire_schedule

    fired = fire_schedule(info, MONITORING_SCHEDULE)
    if fired.error or not fired.message_id:
        raise DemoError(f"step 4: the schedule {MONITORING_SCHEDULE} did not fire: {fired.error}")
    return fired.message_id


def run_demo(
    state_dir: Path,
    *,
    echo: Echo = print,
    keep_running: bool = False,
    pubsub: str = "auto",
    timeout_per_step: float = 180.0,
) -> DemoResult:
    started = time.monotonic()
    root = state_dir.resolve()
    reset_state(root)
    config = StackConfig(
        state_dir=root,
        rules=DEMO_RULES,
        pubsub=pubsub,  # type: ignore[arg-type]
        retry=RetryPolicy(initial_s=0.5, maximum_s=4.0, give_up_after_s=600.0),
        play_schedules=False,  # a real tick of demo/rules.yaml's schedule must not add a run to the loop
    )
    model = demo_data.MODEL
    bucket = config.data_bucket
    steps: dict[str, float] = {}
    progress = Progress(root, echo, started)
    stack = Stack(config, echo=lambda line: progress.say("stack", line))
    done: set[str] = set()
    try:
        info = stack.start()
        steps["stack up"] = time.monotonic() - started
        client = for_stack(info)
        progress.client = client
        progress.start()
        from pipelines import storage_io
        from pipelines.components.data import to_bytes

        # 1. New data -> training -> champion.
        uri = f"gs://{bucket}/incoming/{model}/customers-week-1.csv"
        storage_io.write_bytes(uri, to_bytes(demo_data.reference(), "csv"), "text/csv")
        progress.say("demo", f"step 1: dropped 1500 labelled customers at {uri}")
        logs = f"{root}/logs/on_new_data.log and {root}/logs/deliveries.jsonl"
        training = wait_for_run(
            client, "training", exclude=done, timeout=timeout_per_step, what="step 1", where=logs
        )
        progress.say(
            "demo",
            f"training done: {model} v{training.outputs.get('version')} {training.outputs.get('aliases')}",
        )
        steps["training"] = time.monotonic() - started

        # 2. The champion alias -> deployment -> served.
        logs = f"{root}/logs/on_model_registry_event.log"
        deploy = wait_for_run(
            client, "deployment", exclude=done, timeout=timeout_per_step, what="step 2", where=logs
        )
        progress.say(
            "demo",
            f"deployed: endpoint {deploy.outputs.get('endpoint')} traffic {deploy.outputs.get('traffic')}",
        )
        steps["deployment"] = time.monotonic() - started

        # 3. Traffic that drifts, and the labels of that period.
        traffic_from = datetime.now(UTC)
        sent = send_traffic(client, model, progress)
        records_uri = f"gs://{config.serving_records_bucket}"
        recorded = wait_for_records(records_uri, model, traffic_from, sent, timeout=timeout_per_step)
        feedback = f"gs://{bucket}/feedback/{model}/customers-week-2.csv"
        storage_io.write_bytes(feedback, to_bytes(demo_data.drifted(), "csv"), "text/csv")
        progress.say(
            "demo",
            f"step 3: sent {recorded} predictions, recorded under {records_uri}/{model}/; the labels of "
            f"the period landed at {feedback}",
        )

        # 4. Monitoring on request -> drift alert -> retraining.
        message_id = request_monitoring(info)
        progress.say(
            "demo",
            f"step 4: fired the schedule {MONITORING_SCHEDULE}: its monitoring run request is on "
            f"run-requests (message {message_id})",
        )
        logs = f"{root}/logs/on_run_request.log"
        monitoring = wait_for_run(
            client, "monitoring", exclude=done, timeout=timeout_per_step, what="step 4", where=logs
        )
        if not monitoring.outputs.get("published"):
            raise DemoError(f"step 4: monitoring found no drift to alert on: {monitoring.outputs}")
        steps["monitoring"] = time.monotonic() - started
        logs = f"{root}/logs/on_monitoring_alert.log"
        retraining = wait_for_run(
            client, "retraining", exclude=done, timeout=timeout_per_step, what="step 4", where=logs
        )
        steps["retraining"] = time.monotonic() - started

        # 5. Champion / challenger.
        out = retraining.outputs
        verdict = "PROMOTED to champion" if out.get("promoted") else "not promoted (the champion stays)"
        progress.say(
            "demo",
            f"step 5: challenger {model} v{out.get('version')} {verdict}: {'; '.join(out.get('reasons', []))}",
        )
        if out.get("promoted"):
            logs = f"{root}/logs/on_model_registry_event.log"
            wait_for_run(
                client, "deployment", exclude=done, timeout=timeout_per_step, what="step 5", where=logs
            )
            steps["second deployment"] = time.monotonic() - started
        time.sleep(1.0)  # late log lines (the last registry events' skips)
        progress.stop()

        lineage = build(root, client)
        elapsed = time.monotonic() - started
        echo("")
        echo("Lineage: event -> decision -> run -> model version -> deployment")
        for line in lineage.summary():
            echo("  " + line)
        lineage_json = root / "lineage.json"
        lineage_json.write_text(json.dumps(lineage.to_dict(), indent=2, default=str), encoding="utf-8")
        from stack.report import write_report

        report = write_report(lineage, root / "report.html", elapsed_s=elapsed)
        echo("")
        echo(f"report:  {report}")
        echo(f"lineage: {lineage_json}")
        echo(f"demo loop completed in {elapsed:.1f}s")
        if keep_running:
            echo(
                f"the stack keeps running: {command_hint('status', root)}, "
                f"{command_hint('down', root)} to stop it"
            )
        return DemoResult(True, elapsed, lineage, report, lineage_json, steps)
    finally:
        progress.stop()
        if not keep_running:
            stack.stop()
        elif read_stack(root) is not None:
            _detach(stack)


def _detach(stack: Stack) -> None:
    """``--keep-running`` from the CLI: this process stays the supervisor until interrupted."""
    import signal

    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        stack.stop()


def with_stack_env(info: dict[str, Any]) -> None:
    """Point this process's storage clients at a running stack (for ``status``)."""
    import os

    os.environ["STORAGE_EMULATOR_HOST"] = str(info["storage"]["host"])
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", str(info["project"]))
