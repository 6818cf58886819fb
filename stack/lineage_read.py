"""Reading the lineage of a stack (``stack.lineage``) from what its parts record anyway.

- events: the functions' structured log lines (``<state>/logs/<function>.log``: one JSON line per
  delivery of an event: its id, identity, decision, rule, job id and launch status) and the
  bridge's ``deliveries.jsonl`` (attempts; which ``model@version`` a registry event is about, the
  aliases it sets and its audit log principal: who made the call);
- runs, model versions and endpoints: what Vertex AI reports (the emulator locally), through its
  REST API (``stack.vertex_client``): pipeline jobs the router launched (labels, state,
  parameters, task details and outputs), models with their versions and aliases (metrics and
  labels from the version description the registry writes, and the decisions people recorded
  there: ``mlops-events promote``/``reject``), endpoints and their traffic split.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stack.config import FUNCTIONS
from stack.lineage import EndpointNode, EventNode, Lineage, RunNode, VersionNode
from stack.runs import router_filter, run_from_job
from stack.vertex_client import VertexClient, resource_id


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
    audit: dict[str, dict[str, Any]] = {}
    storage = {}
    attempts: dict[str, int] = {}
    for d in _json_lines(root / "logs" / "deliveries.jsonl"):
        attempts[str(d.get("event_id"))] = max(
            attempts.get(str(d.get("event_id")), 0), int(d.get("attempt") or 0)
        )
        if d.get("via") == "eventarc-audit":
            subject = str(d.get("subject") or "")  # model@version, read by the relay
            audit[str(d["event_id"])] = {
                "subject": subject.rsplit("/", 1)[-1] or None,
                "method": d.get("method"),
                "principal": d.get("principal"),  # the audit log's principalEmail: who called
                "aliases": [str(a) for a in d.get("aliases") or []],
                "time": d.get("time"),
            }
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
                    found = audit[event_id]
                    node.subject, node.method = found["subject"], found["method"]
                    node.principal, node.aliases, node.time = (
                        found["principal"],
                        found["aliases"],
                        found["time"],
                    )
                elif event_id in storage:
                    node.subject = storage[event_id]
            node.deliveries += 1
            node.identity = str(line.get("identity") or node.identity)
            decision = line.get("decision")
            transient = line.get("severity") == "WARNING" and line.get("status") != "exists_failed"
            if transient and decision == "launch":  # "launch failed, will be retried"
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


def read_runs(client: VertexClient, pipeline: str | None = None) -> dict[str, RunNode]:
    """The runs the router launched (and their reruns), oldest first."""
    jobs = client.list_jobs(router_filter(pipeline))
    runs = [run_from_job(job) for job in jobs]
    return {r.job_id: r for r in sorted(runs, key=lambda r: r.created_at)}


def version_node(model_id: str, version: dict[str, Any]) -> VersionNode:
    """A model version (REST JSON of a Model) as the lineage shows it."""
    from pipelines.registry.vertex import parse_version_description

    # The registry keeps metrics and the unsanitised labels in the version description.
    labels, metrics, decisions, _ = parse_version_description(version.get("versionDescription"))
    return VersionNode(
        model=model_id,
        version=str(version.get("versionId")),
        aliases=[a for a in version.get("versionAliases") or [] if a != "default"],
        metrics=metrics,
        labels=labels or dict(version.get("labels") or {}),
        created_at=str(version.get("versionCreateTime") or version.get("createTime") or ""),
        decisions=decisions,
    )


def read_versions(client: VertexClient, runs: dict[str, RunNode]) -> dict[str, VersionNode]:
    """Every version of every model, linked to the run that registered it."""
    by_version = {r.model_version: r for r in runs.values() if r.model_version}
    out: dict[str, VersionNode] = {}
    for model in client.list_models():
        model_id = resource_id(str(model["name"]))
        versions = client.list_versions(model_id)
        for version in sorted(versions, key=lambda v: int(str(v.get("versionId") or 0))):
            node = version_node(model_id, version)
            run = by_version.get((model_id, node.version))
            if run is not None:
                node.job_id = run.job_id
                node.promoted = bool(run.outputs.get("promoted"))
                node.reasons = [str(r) for r in run.outputs.get("reasons") or []]
            out[node.key] = node
    return out


def read_endpoints(client: VertexClient) -> dict[str, EndpointNode]:
    """Endpoints by display name; traffic and deployed models by model version."""
    out: dict[str, EndpointNode] = {}
    for endpoint in client.list_endpoints():
        deployed = endpoint.get("deployedModels") or []
        version_of = {str(d.get("id")): str(d.get("modelVersionId") or "") for d in deployed}
        split = endpoint.get("trafficSplit") or {}
        model = resource_id(str(deployed[0]["model"])).split("@")[0] if deployed else None
        name = str(endpoint.get("displayName") or resource_id(str(endpoint.get("name"))))
        out[name] = EndpointNode(
            endpoint=name,
            model=model,
            traffic={version_of[d]: int(p) for d, p in split.items() if d in version_of},
            deployed=sorted(version_of.values(), key=lambda v: (len(v), v)),
        )
    return out


def build(root: Path, client: VertexClient | None) -> Lineage:
    """The lineage of the stack in ``root``; without ``client`` (the stack is down) only the events."""
    root = Path(root)
    lineage = Lineage(events=read_events(root))
    if client is not None:
        lineage.runs = read_runs(client)
        lineage.versions = read_versions(client, lineage.runs)
        lineage.endpoints = read_endpoints(client)
    return lineage
