"""The whole closed loop on the local stack, as `make demo` runs it, on the production code path:
real fake-gcs-server, the Pub/Sub emulator when installed (else the embedded dispatcher), the four
functions served by functions-framework from the bundle launching on the Vertex AI emulator, whose
kfp.local workers register and deploy models through the Vertex adapters, and whose serving
processes answer the demo's predictions. Everything asserted is read back from the emulator's
REST API (runs, versions, aliases, endpoints) and the functions' logs.

Time budget: the loop must finish within DEMO_BUDGET_S (see docs/performance.md for measurements).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stack.config import pid_alive
from stack.demo import DemoError, run_demo
from stack.lineage import EventNode, Lineage
from stack.teardown import stack_processes

pytestmark = pytest.mark.slow

DEMO_BUDGET_S = 240.0


def _only(items: list[EventNode], what: str) -> EventNode:
    assert len(items) == 1, f"expected exactly one {what}, got {[e.label for e in items]}"
    return items[0]


def _runs(lineage: Lineage, event: EventNode) -> list[str]:
    return [r.pipeline for r in lineage.runs_of_event(event)]


@pytest.mark.timeout(420)
def test_demo_closes_the_loop(tmp_path: Path) -> None:
    root = tmp_path / "state"
    lines: list[str] = []
    try:
        result = run_demo(root, echo=lines.append, timeout_per_step=150)
    except DemoError as exc:
        pytest.fail(f"{exc}\n--- demo output ---\n" + "\n".join(lines[-60:]))
    text = "\n".join(lines)
    assert result.ok
    assert result.seconds < DEMO_BUDGET_S, f"demo took {result.seconds:.0f}s, budget {DEMO_BUDGET_S:.0f}s"
    lineage = result.lineage

    # Exactly the expected runs, all succeeded.
    pipelines = sorted(r.pipeline for r in lineage.runs.values())
    assert pipelines == ["deployment", "deployment", "monitoring", "retraining", "training"], pipelines
    assert all(r.state == "SUCCEEDED" for r in lineage.runs.values()), text

    # 1. The dataset under incoming/ -> one training run; the labels under feedback/ -> skipped.
    storage = [e for e in lineage.events if e.kind == "storage"]
    incoming = _only([e for e in storage if "/incoming/" in (e.subject or "")], "incoming object event")
    assert _runs(lineage, incoming) == ["training"]
    feedback = _only([e for e in storage if "/feedback/" in (e.subject or "")], "feedback object event")
    assert feedback.decision == "skip" and "not under incoming/" in (feedback.reason or "")
    training = lineage.runs_of_event(incoming)[0]
    assert training.outputs["version"] == "1" and training.outputs["promoted"] is True

    # 2. Registry events: each champion move -> one deployment of that version; uploads skipped.
    registry = [e for e in lineage.events if e.kind == "registry"]
    assert len(registry) == 4, [e.label for e in registry]
    for event in registry:
        if event.method and event.method.endswith("UploadModel"):
            assert event.decision == "skip" and _runs(lineage, event) == []
        else:
            assert _runs(lineage, event) == ["deployment"]
            deploy = lineage.runs_of_event(event)[0]
            assert event.subject == f"churn@{deploy.outputs['version']}"
            assert deploy.outputs["status"] == "promoted"
    assert {e.subject for e in registry if e.decision == "launch"} == {"churn@1", "churn@2"}

    # 3-4. The run request -> monitoring; the alert it raised was drift, and -> one retraining.
    request = _only([e for e in lineage.events if e.kind == "run-request"], "run request")
    assert _runs(lineage, request) == ["monitoring"]
    monitoring = lineage.runs_of_event(request)[0]
    assert monitoring.outputs["drift"] is True and monitoring.outputs["published"] is True
    assert set(monitoring.outputs["drifted_features"]) == {"usage", "plan"}
    report = monitoring.drift_report()
    assert report is not None
    psi = {f["feature"]: f["psi"] for f in report["features"]}
    assert psi["usage"] > 0.2 and psi["plan"] > 0.2 and psi["tenure"] < 0.2 and psi["support_calls"] < 0.2
    alert = _only(lineage.events_of_run(monitoring.job_id), "alert raised by monitoring")
    assert alert.kind == "alert" and alert.identity == f"alert/drift/{monitoring.outputs['alert_id']}/open"
    assert _runs(lineage, alert) == ["retraining"]
    retraining = lineage.runs_of_event(alert)[0]
    assert retraining.parameters["alert_id"] == monitoring.outputs["alert_id"]

    # 5. Champion/challenger: the retrained version wins on the same holdout and is served.
    assert retraining.outputs["version"] == "2" and retraining.outputs["promoted"] is True
    v1, v2 = lineage.versions["churn@1"], lineage.versions["churn@2"]
    assert "champion" in v2.aliases and "champion" not in v1.aliases
    assert any("beats champion v1" in r for r in v2.reasons), v2.reasons
    assert lineage.endpoints["churn"].traffic == {"1": 0, "2": 100} or lineage.endpoints["churn"].traffic == {
        "2": 100
    }

    # Every event was decided (nothing pending or rejected), no dead letters.
    assert {e.decision for e in lineage.events} <= {"launch", "skip"}, [
        (e.label, e.decision) for e in lineage.events
    ]
    assert not list((root / "dead-letters").glob("*.jsonl"))

    # Outputs, and nothing left running.
    assert "<svg" in result.report.read_text(encoding="utf-8")
    assert json.loads(result.lineage_json.read_text(encoding="utf-8"))["edges"]
    assert "Lineage: event -> decision -> run -> model version -> deployment" in text
    assert not (root / "stack.json").exists()
    assert stack_processes(root) == []
    assert _processes_mentioning(root) == []


def _processes_mentioning(root: Path) -> list[str]:
    """Live processes whose command line names the state directory (functions, emulators, workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmdline and pid_alive(int(entry.name)):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found
