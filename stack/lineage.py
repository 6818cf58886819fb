"""Lineage of the local stack: event -> decision -> run -> model version -> deployment.

The model of it (nodes, links, the printed summary); ``stack.lineage_read`` assembles it after the
fact from what the parts record anyway, nothing extra is instrumented: the functions' log lines,
the bridge's deliveries, and what Vertex AI (the emulator) reports about pipeline jobs, models
and endpoints.

Links: an event's launch names its job (and a rerun of that job carries ``mlops-first-attempt``);
a training run's output names the version it registered; a registry event is about
``model@version`` and its launch names the deployment run; a monitoring run's output names the
alert id, which is in the alert event's identity.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from stack.approvals import Approval, approvals


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
    status: str | None = None  # created, already_exists, exists_failed (the job failed: rerun it)
    reason: str | None = None
    deliveries: int = 0  # how many times the function saw it (redeliveries included)
    first_seen: int = 0  # order across all logs
    subject: str | None = None  # model@version of a registry event, gs:// URI of an object
    method: str | None = None
    principal: str | None = None  # a registry event's audit log principal: who made the call
    aliases: list[str] = field(default_factory=list)  # aliases a registry call sets
    time: str | None = None  # the CloudEvent's time (a registry event's)

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
    artifacts: dict[str, str] = field(default_factory=dict)  # output artifact name -> uri
    created_at: str = ""

    @property
    def attempt(self) -> int:
        """1 for a job the router launched, N for ``mlops-events rerun``'s attempt ``<id>-rN``."""
        value = self.labels.get("mlops-attempt", "1")
        return int(value) if value.isdigit() else 1

    @property
    def first_attempt(self) -> str:
        return self.labels.get("mlops-first-attempt") or self.job_id

    @property
    def model_version(self) -> tuple[str, str] | None:
        out = self.outputs
        if self.pipeline in ("training", "retraining") and out.get("model_name") and out.get("version"):
            return str(out["model_name"]), str(out["version"])
        return None

    def drift_report(self) -> dict[str, Any] | None:
        """The monitoring run's drift report (the ``report_json`` artifact), if it is there."""
        uri = self.artifacts.get("report_json")
        if self.pipeline != "monitoring" or not uri:
            return None
        from pipelines import storage_io  # a local path on the emulator, gs:// on Vertex

        try:
            report: dict[str, Any] = json.loads(storage_io.read_text(uri))
        except (OSError, ValueError, storage_io.StorageError):
            return None
        return report


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
    decisions: list[dict[str, str]] = field(default_factory=list)  # people's, recorded on the version

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
        """The run the event launched, then its reruns (``mlops-events rerun``), in attempt order."""
        if not event.job_id or event.job_id not in self.runs:
            return []
        first = self.runs[event.job_id]
        again = [r for r in self.runs.values() if r.attempt > 1 and r.first_attempt == first.job_id]
        return [first, *sorted(again, key=lambda r: r.attempt)]

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

    def approvals(self) -> list[Approval]:
        """Who approved or rejected which version and why (``stack.approvals``)."""
        return approvals(self.events, self.versions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "approvals": [asdict(a) for a in self.approvals()],
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
        by = f" by {event.principal}" if event.kind == "registry" and event.principal else ""
        lines = [f"{head}event {event.label}{by} ({event.entry_point}{again})"]
        if event.decision == "launch" and event.status == "exists_failed":
            lines.append(
                f"{indent}-> decision: launch {event.pipeline} (rule {event.rule}): its job {event.job_id} "
                f"had FAILED or was CANCELLED; `mlops-events rerun {event.job_id}` runs it again"
            )
        elif event.decision == "launch":
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
        attempt = f" (attempt {run.attempt})" if run.attempt > 1 else ""
        lines = [f"{indent}-> run {run.job_id}{attempt}: {run.pipeline} {run.state}{took}"]
        if run.state == "FAILED":
            lines.append(f"{indent}   failed task {run.failed_task}: {_short(run.error or '', 200)}")
        inner = indent + "   "
        version = self.version_of_run(run)
        if version is not None:
            metrics = ", ".join(f"{k}={v:.3f}" for k, v in sorted(version.metrics.items()))
            verdict = "promoted to champion" if version.promoted else "not promoted"
            lines.append(f"{inner}-> model version {version.key} [{', '.join(version.aliases)}] {metrics}")
            lines.append(f"{inner}   {verdict}: {'; '.join(version.reasons)}")
            # People's decisions on it (promote/reject) and champion moves, by the audit log.
            lines += [f"{inner}   {a.describe()}" for a in self.approvals() if a.version == version.key]
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
