"""The generated set-up and deploy scripts are valid for the real gcloud CLI (offline: see
``tests.deploy.real_gcloud``), the Cloud Scheduler jobs and every audit-trigger spelling included,
and the job the real CLI would create publishes exactly the schedule's run request."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format
from google.pubsub_v1.types import PublishRequest

from deploy.config import Deployment
from deploy.functions import deploy_plan
from deploy.plan import Ensure, EnsureRole, render_script
from deploy.setup import setup_plan
from tests.catalog import load_rules
from tests.deploy import real_gcloud
from tests.deploy.real_gcloud import Checked, RealGcloud, Stub

pytestmark = [
    pytest.mark.slow,  # about a second per gcloud command
    pytest.mark.skipif(real_gcloud.real_gcloud() is None, reason="the gcloud CLI is not installed"),
]

ROOT = Path(__file__).resolve().parents[2]
PROJECT, REGION = "demo-project-1", "europe-west1"
PLACEHOLDERS = {
    "PROJECT_NUMBER": "123456789",
    "NAME": "mlops-schedule-stale",
}


@pytest.fixture
def stub() -> Iterator[Stub]:
    yield from real_gcloud.start_stub()


def _deployment() -> Deployment:
    return Deployment(PROJECT, REGION)


def _rules(d: Deployment):  # type: ignore[no-untyped-def]
    return load_rules((ROOT / "demo" / "rules.yaml").read_text(), variables=d.rule_variables())


def _resolve(argv: tuple[str, ...]) -> tuple[str, ...]:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("TRIGGER_"):
            return f"projects/{PROJECT}/locations/{REGION}/triggers/t"
        if name.startswith("SUBSCRIPTION_"):
            return f"projects/{PROJECT}/subscriptions/s"
        return PLACEHOLDERS[name]

    return tuple(re.sub(r"\$\{([A-Z][A-Z0-9_]*)\}", sub, a) for a in argv)


def _invalid(checks: list[Checked]) -> list[str]:
    return [
        f"{' '.join(c.argv)}\n  -> exit {c.code}: {c.stderr.strip()[-400:]}" for c in checks if not c.valid
    ]


def _check_script(script: Path, work: Path, stub: Stub) -> list[Checked]:
    calls = real_gcloud.script_calls(script, work)
    return RealGcloud(stub, work).run_all(real_gcloud.distinct(calls))


def test_the_deploy_script_with_schedules_and_every_trigger_spelling_is_valid(
    tmp_path: Path, stub: Stub
) -> None:
    d = _deployment()
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "main.py").write_text("")
    script = tmp_path / "deploy.sh"
    script.write_text(render_script(deploy_plan(d, _rules(d), bundle)))
    checks = _check_script(script, tmp_path, stub)
    assert _invalid(checks) == []
    ran = [" ".join(c.argv[:5]) for c in checks]
    for command in (
        "gcloud functions deploy mlops-on-new-data --gen2",
        "gcloud eventarc triggers create mlops-registry-v1-merge-version-aliases",
        "gcloud eventarc triggers create mlops-registry-ui-merge-version-aliases",
        "gcloud eventarc triggers create mlops-registry-v1beta1-upload-model",
        "gcloud eventarc triggers list --project=demo-project-1",
        "gcloud eventarc triggers delete mlops-registry-v1-copy-model",
        "gcloud scheduler jobs describe mlops-schedule-monitor-churn",
        "gcloud scheduler jobs create http",
        "gcloud scheduler jobs list --project=demo-project-1",
        "gcloud scheduler jobs delete mlops-schedule-stale",
    ):
        assert any(r.startswith(command) for r in ran), f"not checked: {command}\n" + "\n".join(ran)


def test_the_update_branches_are_valid_too(tmp_path: Path, stub: Stub) -> None:
    """The script above takes the create branches; the same plan's updates, checked directly."""
    d = _deployment()
    plan = deploy_plan(d, _rules(d), "build/bundle")
    updates = [a.update for a in plan.actions if isinstance(a, Ensure) and a.update]
    updates += [a.write("update") for a in setup_plan(d).actions if isinstance(a, EnsureRole)]
    checks = RealGcloud(stub, tmp_path).run_all([_resolve(u) for u in real_gcloud.distinct(updates)])
    assert _invalid(checks) == []
    assert {c.argv[:4] for c in checks} == {
        ("gcloud", "eventarc", "triggers", "update"),
        ("gcloud", "scheduler", "jobs", "update"),
        ("gcloud", "iam", "roles", "update"),
    }


def test_the_real_cli_creates_a_job_that_publishes_the_schedules_run_request(
    tmp_path: Path, stub: Stub
) -> None:
    d = _deployment()
    rules = _rules(d)
    (schedule,) = rules.schedules
    plan = deploy_plan(d, rules, "build/bundle")
    job = next(
        a
        for a in plan.actions
        if isinstance(a, Ensure) and a.create[:4] == ("gcloud", "scheduler", "jobs", "create")
    )
    assert job.update is not None
    create, update = RealGcloud(stub, tmp_path).run_all([job.create, job.update])
    for check, method in ((create, "POST"), (update, "PATCH")):
        assert check.valid, check.stderr
        (request,) = check.requests
        assert request.method == method
        assert request.path.startswith(f"/v1/projects/{PROJECT}/locations/{REGION}/jobs")
        body = request.body
        assert body["name"] == f"projects/{PROJECT}/locations/{REGION}/jobs/mlops-schedule-monitor-churn"
        assert (body["schedule"], body["timeZone"]) == ("0 */6 * * *", "UTC")
        target = body["httpTarget"]
        assert target["uri"] == (
            f"https://pubsub.googleapis.com/v1/projects/{PROJECT}/topics/mlops-run-requests:publish"
        )
        assert target["httpMethod"] == "POST" and target["headers"] == {"Content-Type": "application/json"}
        assert target["oauthToken"] == {
            "serviceAccountEmail": d.scheduler_sa.email,
            "scope": "https://www.googleapis.com/auth/pubsub",
        }
        assert body["retryConfig"]["retryCount"] == 3
        # The HTTP body is a Pub/Sub PublishRequest (Google's type) whose one message is the run request.
        publish = PublishRequest.pb(PublishRequest())
        json_format.Parse(base64.b64decode(target["body"]), publish, ignore_unknown_fields=False)
        (message,) = publish.messages
        assert json.loads(message.data) == {
            "pipeline": "monitoring",
            "parameters": {"model_name": "churn", "alerts_topic": d.alerts_topic},
            "requested_by": "schedule monitor-churn",
        }
        assert json.loads(message.data) == schedule.message()


def test_the_setup_script_is_valid(tmp_path: Path, stub: Stub) -> None:
    d = _deployment()
    script = tmp_path / "setup.sh"
    script.write_text(render_script(setup_plan(d)))
    checks = _check_script(script, tmp_path, stub)
    assert _invalid(checks) == []
    ran = {" ".join(c.argv[:4]) for c in checks}
    assert "gcloud iam service-accounts create" in ran and "gcloud iam roles create" in ran
    assert any("--service=cloudscheduler.googleapis.com" in c.argv for c in checks)


def test_a_usage_error_is_caught(tmp_path: Path, stub: Stub) -> None:
    """The check can fail: a create-only flag on an update is refused by the real CLI."""
    d = _deployment()
    job = next(
        a
        for a in deploy_plan(d, _rules(d), "build/bundle").actions
        if isinstance(a, Ensure) and a.update and a.update[:3] == ("gcloud", "scheduler", "jobs")
    )
    assert job.update is not None
    wrong = tuple(x.replace("--update-headers=", "--headers=") for x in job.update)
    check = RealGcloud(stub, tmp_path).run(wrong)
    assert check.code == 2 and not check.valid and "unrecognized arguments" in check.stderr
