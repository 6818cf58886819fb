"""A manual promotion end to end on the local stack (issue 13): a model whose ``models:`` entry says
``promotion: manual`` is trained from a dropped file; its version waits as ``challenger`` and
nothing is deployed; then ``mlops-events promote`` moves ``champion``, and the deployment follows
from the registry's audit event alone (emulator -> bridge's relay -> on_model_registry_event ->
deploy-champion -> a deployment job for that version). The lineage names who approved and why,
from the audit event's principal.

Everything runs on the production path (functions-framework processes from the bundle, the
Vertex AI emulator's kfp.local workers); the test stops once the deployment job exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_cli.main import main
from stack import demo_data
from stack.config import RetryPolicy, StackConfig
from stack.demo import wait_for_run
from stack.lineage_read import build, read_events, read_runs
from stack.up import Stack
from stack.vertex_client import VertexClient, for_stack
from tests.waiting import until

pytestmark = pytest.mark.slow

RULES = Path(__file__).resolve().parents[2] / "events" / "rules.default.yaml"
MANUAL = 'models:\n  churn:\n    promotion: manual\n  "*":'


def _registry_events(root: Path, method: str) -> list[Any]:
    return [e for e in read_events(root) if e.kind == "registry" and (e.method or "").endswith(method)]


@pytest.mark.timeout(420)
def test_a_manual_promotion_deploys_the_approved_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = RULES.read_text(encoding="utf-8")
    assert text.count('models:\n  "*":') == 1, "the shipped rules' models: section changed shape"
    rules = tmp_path / "rules.yaml"
    rules.write_text(text.replace('models:\n  "*":', MANUAL), encoding="utf-8")
    root = (tmp_path / "state").resolve()
    config = StackConfig(
        state_dir=root,
        rules=rules,
        pubsub="embedded",
        retry=RetryPolicy(initial_s=0.5, maximum_s=2.0, give_up_after_s=300.0),
        play_schedules=False,
    )
    with Stack(config, echo=lambda _: None) as stack:
        client: VertexClient = for_stack(stack.info)
        from pipelines import storage_io
        from pipelines.components.data import to_bytes

        uri = f"gs://{config.data_bucket}/incoming/churn/customers.csv"
        storage_io.write_bytes(uri, to_bytes(demo_data.reference(), "csv"), "text/csv")
        done: set[str] = set()
        where = f"{root}/logs"
        training = wait_for_run(client, "training", exclude=done, timeout=240, what="training", where=where)
        out = training.outputs
        assert (out["version"], out["promotion"], out["promoted"]) == ("1", "manual", False), out
        assert any("awaiting approval (mlops-events promote)" in r for r in out["reasons"]), out["reasons"]
        versions = client.list_versions("churn")
        assert [sorted(v.get("versionAliases") or []) for v in versions] == [["challenger", "default"]]

        # The upload's registry event is decided (skipped: no champion was set): nothing deploys.
        (upload,) = until("the upload's registry event", lambda: _registry_events(root, "UploadModel"), 60)
        assert upload.decision == "skip", upload
        assert read_runs(client, "deployment") == {}

        code = main(["promote", "churn", "challenger", "--reason", "holdout looks right",
                     "--by", "alice@example.com", "--state-dir", str(root)])  # fmt: skip
        out_text = capsys.readouterr().out
        assert code == 0 and "approved v1 of churn by alice@example.com" in out_text, out_text

        deployment = until("the deployment job", lambda: list(read_runs(client, "deployment").values()), 90)
        (job,) = deployment
        assert job.parameters["model_name"] == "churn" and job.parameters["version"] == "1", job.parameters
        (merge,) = _registry_events(root, "MergeVersionAliases")
        assert merge.principal == "alice@example.com" and merge.job_id == job.job_id

        lineage = build(root, client)
        (approval,) = [a for a in lineage.approvals() if a.version == "churn@1"]
        assert (approval.decision, approval.by, approval.reason) == (
            "approved",
            "alice@example.com",
            "holdout looks right",
        )
        summary = "\n".join(lineage.summary())
        assert "approved by alice@example.com: holdout looks right" in summary, summary
