"""Lineage of the local stack: event -> decision -> run -> model version -> deployment.

Assembled after the fact from what the parts record anyway, nothing extra is instrumented:

- the functions' structured log lines (``<state>/logs/<function>.log``: one JSON line per delivery
  of an event: its id, identity, decision, rule and job id);
- the bridge's ``deliveries.jsonl`` (which model version a registry audit event is about);
- the local launcher's jobs (``<state>/jobs/<job id>/request.json``, ``status.json``: parameters,
  labels with the rule and event digest, outputs such as the registered version or the alert id);
- the local registry (versions, aliases, metrics) and the endpoints' state in the registry bucket.

Links: an event's launch names its job; a training run's output names the version it registered;
a registry event is about ``model@version`` and its launch names the deployment run; a monitoring
run's output names the alert id, which is in the alert event's identity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stack.config import FUNCTIONS


@dataclass
class EventNode:
    event_id: str
    entry_point: str
    kind: str  # storage, registry, alert, run-request, other
    identity: str
    decision: str  # launch, skip, reject, pending (deferred and not yet decided)
    rule: str | None = None
    pipeline: str | None = None
    job_id: str | None = None
    status: str | None = None  # created, already_exists
    reason: str | None = None
    deliveries: int = 0  # how many times the function saw it (redeliveries included)
    first_seen: int = 0  # order across all logs
    subject: str | None = None  # model@version of a registry event, gs:// URI of an object
    method: str | None = None

    @property
    def label(self) -> str:
        what = self.subject or self.identity
        if self.kind == "registry" and self.method:
            what = f"{self.method.rsplit('.', 1)[-1]} {what}"
        return f"{self.kind} {what}"


@dataclass
class RunNode:
    job_id: str
    pipeline: str
    rule: str | None
    state: str
    parameters: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    failed_task: str | None = None
    seconds: float | None = None
    tasks: dict[str, Any] = field(default_factory=dict)
    pipeline_root: str | None = None

    @property
    def model_version(self) -> tuple[str, str] | None:
        out = self.outputs
        if self.pipeline in ("training", "retraining") and out.get("model_name") and out.get("version"):
            return str(out["model_name"]), str(out["version"])
        return None

    def drift_report(self) -> dict[str, Any] | None:
        """The monitoring run's drift report (the ``report_json`` artifact), if it is there."""
        if self.pipeline != "monitoring" or not self.pipeline_root:
            return None
        for path in sorted(Path(self.pipeline_root).glob("**/report_json")):
            try:
                report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            return report
        return None


@dataclass
class VersionNode:
    model: str
    version: str
    aliases: list[str]
    metrics: dict[str, float]
    labels: dict[str, str]
    created_at: str
    job_id: str | None = None  # the run that registered it
    promoted: bool | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass
class EndpointNode:
    endpoint: str
    model: str | None
    traffic: dict[str, int]
    deployed: list[str]


@dataclass
class Lineage:
    events: list[EventNode] = field(default_factory=list)
    runs: dict[str, RunNode] = field(default_factory=dict)
    versions: dict[str, VersionNode] = field(default_factory=dict)
    endpoints: dict[str, EndpointNode] = field(default_factory=dict)

    # --- links -------------------------------------------------------------------------------

    def events_of_run(self, job_id: str) -> list[EventNode]:
        """Events caused by a run: registry events about the version it registered, alerts it raised."""
        run = self.runs[job_id]
        caused: list[EventNode] = []
        mv = run.model_version
        alert_id = run.outputs.get("alert_id") if run.outputs.get("published") else None
        for event in self.events:
            if (mv and event.kind == "registry" and event.subject == f"{mv[0]}@{mv[1]}") or (
                alert_id and event.kind == "alert" and f"/{alert_id}/" in event.identity
            ):
                caused.append(event)
        return caused

    def caused_events(self) -> set[str]:
        return {e.event_id for job_id in self.runs for e in self.events_of_run(job_id)}

    def roots(self) -> list[EventNode]:
        caused = self.caused_events()
        return [e for e in self.events if e.event_id not in caused]

    def runs_of_event(self, event: EventNode) -> list[RunNode]:
        return [self.runs[event.job_id]] if event.job_id and event.job_id in self.runs else []

    def version_of_run(self, run: RunNode) -> VersionNode | None:
        mv = run.model_version
        return self.versions.get(f"{mv[0]}@{mv[1]}") if mv else None

    def edges(self) -> list[tuple[str, str]]:
        """(from, to) node ids: ``event:<id>``, ``run:<job>``, ``version:<m@v>``, ``endpoint:<name>``."""
        out: list[tuple[str, str]] = []
        for event in self.events:
            for run in self.runs_of_event(event):
                out.append((f"event:{event.event_id}", f"run:{run.job_id}"))
        for run in self.runs.values():
            version = self.version_of_run(run)
            if version is not None:
                out.append((f"run:{run.job_id}", f"version:{version.key}"))
                out += [
                    (f"version:{version.key}", f"event:{e.event_id}") for e in self.events_of_run(run.job_id)
                ]
            else:
                out += [(f"run:{run.job_id}", f"event:{e.event_id}") for e in self.events_of_run(run.job_id)]
            if run.pipeline == "deployment" and run.outputs.get("endpoint"):
                out.append((f"run:{run.job_id}", f"endpoint:{run.outputs['endpoint']}"))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": [asdict(e) for e in self.events],
            "runs": {k: asdict(r) for k, r in self.runs.items()},
            "versions": {k: asdict(v) for k, v in self.versions.items()},
            "endpoints": {k: asdict(v) for k, v in self.endpoints.items()},
            "edges": self.edges(),
        }

    # --- the summary -------------------------------------------------------------------------

    def summary(self) -> list[str]:
        lines: list[str] = []
        seen: set[str] = set()
        for i, event in enumerate(self.roots(), 1):
            lines += self._event_lines(event, f"[{i}] ", "    ", seen)
        return lines

    def _event_lines(self, event: EventNode, head: str, indent: str, seen: set[str]) -> list[str]:
        again = f", {event.deliveries} deliveries" if event.deliveries > 1 else ""
        lines = [f"{head}event {event.label} ({event.entry_point}{again})"]
        if event.decision == "launch":
            lines.append(f"{indent}-> decision: launch {event.pipeline} (rule {event.rule}), {event.status}")
        else:
            reason = f": {event.reason}" if event.reason else ""
            rule = f" (rule {event.rule})" if event.rule else ""
            lines.append(f"{indent}-> decision: {event.decision}{rule}{_short(reason, 140)}")
        for run in self.runs_of_event(event):
            if run.job_id in seen:
                lines.append(f"{indent}   -> run {run.job_id} (shown above)")
                continue
            seen.add(run.job_id)
            lines += self._run_lines(run, indent + "   ", seen)
        return lines

    def _run_lines(self, run: RunNode, indent: str, seen: set[str]) -> list[str]:
        took = f" in {run.seconds:.1f}s" if run.seconds is not None else ""
        lines = [f"{indent}-> run {run.job_id}: {run.pipeline} {run.state}{took}"]
        if run.state == "FAILED":
            lines.append(f"{indent}   failed task {run.failed_task}: {_short(run.error or '', 200)}")
        inner = indent + "   "
        version = self.version_of_run(run)
        if version is not None:
            metrics = ", ".join(f"{k}={v:.3f}" for k, v in sorted(version.metrics.items()))
            verdict = "promoted to champion" if version.promoted else "not promoted"
            lines.append(f"{inner}-> model version {version.key} [{', '.join(version.aliases)}] {metrics}")
            lines.append(f"{inner}   {verdict}: {'; '.join(version.reasons)}")
            inner += "   "
        if run.pipeline == "deployment" and run.outputs:
            out = run.outputs
            lines.append(
                f"{inner}-> deployment: endpoint {out.get('endpoint')} v{out.get('version')} "
                f"{out.get('status')}, traffic {out.get('traffic')}"
            )
        if run.pipeline == "monitoring" and run.outputs:
            drifted = run.outputs.get("drifted_features") or []
            alert = run.outputs.get("alert_id")
            if run.outputs.get("drift"):
                lines.append(f"{inner}-> drift in {', '.join(drifted)}: alert {alert} published")
            else:
                lines.append(f"{inner}-> no drift, no alert")
        for i, event in enumerate(self.events_of_run(run.job_id)):
            lines += self._event_lines(event, f"{inner}-> ", inner + "   ", seen)
            del i
        return lines


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- reading the records ---------------------------------------------------------------------


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue  # functions-framework's and werkzeug's own lines
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            yield doc


def _kind(entry_point: str, event_type: str | None) -> str:
    return {
        "on_new_data": "storage",
        "on_model_registry_event": "registry",
        "on_monitoring_alert": "alert",
        "on_run_request": "run-request",
    }.get(entry_point, event_type or "other")


def read_events(root: Path) -> list[EventNode]:
    """One node per event id, from every function's log; the last decision line wins."""
    audit = {}
    storage = {}
    attempts: dict[str, int] = {}
    for d in _json_lines(root / "logs" / "deliveries.jsonl"):
        attempts[str(d.get("event_id"))] = max(
            attempts.get(str(d.get("event_id")), 0), int(d.get("attempt") or 0)
        )
        if d.get("via") == "eventarc-audit" and d.get("subject"):
            resource = str(d["subject"])  # projects/P/locations/L/models/<model>@<version>
            audit[str(d["event_id"])] = (resource.rsplit("/", 1)[-1], d.get("method"))
        elif d.get("via") == "eventarc-storage":
            storage[str(d["event_id"])] = str(d.get("subject"))
    nodes: dict[str, EventNode] = {}
    order = 0
    for entry_point in FUNCTIONS:
        for line in _json_lines(root / "logs" / f"{entry_point}.log"):
            if line.get("entry_point") != entry_point or ("decision" not in line and "message" not in line):
                continue
            event_id = str(line.get("event_id") or f"no-id-{order}")
            order += 1
            node = nodes.get(event_id)
            if node is None:
                node = nodes[event_id] = EventNode(
                    event_id=event_id,
                    entry_point=entry_point,
                    kind=_kind(entry_point, line.get("event_type")),
                    identity=str(line.get("identity") or ""),
                    decision="pending",
                    first_seen=order,
                )
                if event_id in audit:
                    node.subject, node.method = audit[event_id]
                elif event_id in storage:
                    node.subject = storage[event_id]
            node.deliveries += 1
            node.identity = str(line.get("identity") or node.identity)
            decision = line.get("decision")
            if line.get("severity") == "WARNING" and decision == "launch":
                node.decision, node.rule, node.pipeline = "pending", line.get("rule"), line.get("pipeline")
                node.job_id, node.reason = line.get("job_id"), str(line.get("message"))
                continue
            if decision in ("launch", "skip", "reject"):
                node.decision = str(decision)
                node.rule = line.get("rule")
                node.pipeline = line.get("pipeline")
                node.job_id = line.get("job_id")
                node.status = line.get("status")
                node.reason = line.get("reason")
                if (
                    decision == "launch"
                    and line.get("parameters")
                    and node.kind == "registry"
                    and not node.subject
                ):
                    params = line["parameters"]
                    node.subject = f"{params.get('model_name')}@{params.get('version')}"
    for node in nodes.values():  # the bridge's count includes the deliveries a guard deferred
        node.deliveries = max(node.deliveries, attempts.get(node.event_id, 0))
    return sorted(nodes.values(), key=lambda n: n.first_seen)


def read_runs(root: Path) -> dict[str, RunNode]:
    runs: dict[str, RunNode] = {}
    for job_dir in sorted((root / "jobs").glob("*/")):
        try:
            request = json.loads((job_dir / "request.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        try:
            status = json.loads((job_dir / "status.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            status = {"state": "PENDING"}
        seconds = None
        if status.get("started_at") and status.get("finished_at"):
            seconds = float(status["finished_at"]) - float(status["started_at"])
        runs[str(request["job_id"])] = RunNode(
            job_id=str(request["job_id"]),
            pipeline=str(request["pipeline"]),
            rule=request.get("rule"),
            state=str(status.get("state", "PENDING")),
            parameters=dict(request.get("parameters") or {}),
            labels=dict(request.get("labels") or {}),
            outputs=dict(status.get("outputs") or {}),
            error=status.get("error"),
            failed_task=status.get("failed_task"),
            seconds=seconds,
            tasks=dict(status.get("tasks") or {}),
            pipeline_root=request.get("pipeline_root"),
        )
    return runs


def read_registry(registry_bucket: str, runs: dict[str, RunNode]) -> dict[str, VersionNode]:
    """Every version of every model in the local registry (needs ``STORAGE_EMULATOR_HOST``)."""
    from pipelines.registry.local import LocalModelRegistry

    registry = LocalModelRegistry(f"gs://{registry_bucket}")
    by_version = {r.model_version: r for r in runs.values() if r.model_version}
    out: dict[str, VersionNode] = {}
    for model in registry.list_models():
        for mv in registry.list_versions(model):
            run = by_version.get((model, mv.version))
            node = VersionNode(
                model=model,
                version=mv.version,
                aliases=[a for a in mv.aliases if a != "default"],
                metrics=dict(mv.metrics),
                labels=dict(mv.labels),
                created_at=mv.created_at or "",
                job_id=run.job_id if run else None,
            )
            if run is not None:
                node.promoted = bool(run.outputs.get("promoted"))
                node.reasons = [str(r) for r in run.outputs.get("reasons") or []]
            out[node.key] = node
    return out


def read_endpoints(registry_bucket: str) -> dict[str, EndpointNode]:
    from pipelines import storage_io

    out: dict[str, EndpointNode] = {}
    for uri in storage_io.list_uris(f"gs://{registry_bucket}/endpoints/"):
        if not uri.endswith(".json"):
            continue
        state = storage_io.read_json(uri)
        name = str(state.get("endpoint") or uri.rsplit("/", 1)[-1][: -len(".json")])
        out[name] = EndpointNode(
            endpoint=name,
            model=state.get("model_name"),
            traffic={str(k): int(v) for k, v in (state.get("traffic") or {}).items()},
            deployed=sorted(state.get("deployed") or {}, key=lambda v: (len(v), v)),
        )
    return out


def build(root: Path, registry_bucket: str | None) -> Lineage:
    """The lineage of the stack in ``root``; without ``registry_bucket`` (stack down) no versions
    or endpoints are read."""
    root = Path(root)
    runs = read_runs(root)
    lineage = Lineage(events=read_events(root), runs=runs)
    if registry_bucket:
        lineage.versions = read_registry(registry_bucket, runs)
        lineage.endpoints = read_endpoints(registry_bucket)
    return lineage


def runs_by_pipeline(runs: Iterable[RunNode]) -> dict[str, list[RunNode]]:
    out: dict[str, list[RunNode]] = {}
    for run in runs:
        out.setdefault(run.pipeline, []).append(run)
    return out
