"""``gcp deploy-functions`` turns each schedule into a Cloud Scheduler job that publishes the run
request on the run-requests topic as the scheduler service account, and nothing else may; jobs are
created or updated in place and those of removed schedules deleted."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from deploy.config import DeployConfigError, Deployment
from deploy.functions import deploy_plan
from deploy.plan import Ensure, Executor, Prune, render_script
from deploy.platform import DEPLOYER_PERMISSIONS
from deploy.schedules import job_name
from deploy.setup import setup_plan
from events.routing import default_rules_text
from mlops_cli.cmd_gcp import iam_table
from tests.catalog import load_rules

PROJECT, REGION = "demo-project-1", "europe-west1"
ROOT = Path(__file__).resolve().parents[2]
RULES = """
version: 1
rules:
  - name: run-request
    on: run.request
    launch: {pipeline: "{pipeline}", parameters: "{parameters}"}
schedules:
  - name: monitor-churn
    cron: "0 */6 * * *"
    time_zone: Europe/Paris
    pipeline: monitoring
    parameters: {model_name: churn, alerts_topic: "${ALERTS_TOPIC}"}
  - name: nightly-scores
    description: Score yesterday's customers
    cron: "30 2 * * MON-FRI"
    pipeline: batch_prediction
    parameters: {model_name: churn, data_uri: "gs://${DATA_BUCKET}/score/"}
"""


def _d() -> Deployment:
    return Deployment(PROJECT, REGION)


def _jobs(plan) -> list[Ensure]:  # type: ignore[no-untyped-def]
    return [
        a for a in plan.actions if isinstance(a, Ensure) and a.check[:3] == ("gcloud", "scheduler", "jobs")
    ]


def _flags(argv: Sequence[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)


def test_each_schedule_is_one_http_job_publishing_its_run_request_as_the_scheduler_account() -> None:
    d = _d()
    rules = load_rules(RULES, variables=d.rule_variables())
    plan = deploy_plan(d, rules, "build/bundle")
    jobs = _jobs(plan)
    assert [j.check[4] for j in jobs] == ["mlops-schedule-monitor-churn", "mlops-schedule-nightly-scores"]
    for job, schedule in zip(jobs, rules.schedules, strict=True):
        assert job.create[:5] == ("gcloud", "scheduler", "jobs", "create", "http")
        assert job.update is not None and job.update[:5] == ("gcloud", "scheduler", "jobs", "update", "http")
        for argv in (job.create, job.update):
            flags = _flags(argv)
            assert flags["project"] == PROJECT and flags["location"] == REGION
            assert flags["schedule"] == schedule.cron.expression
            assert flags["time-zone"] == schedule.time_zone
            assert (
                flags["uri"]
                == f"https://pubsub.googleapis.com/v1/projects/{PROJECT}/topics/mlops-run-requests:publish"
            )
            assert flags["oauth-service-account-email"] == d.scheduler_sa.email
            assert flags["oauth-token-scope"] == "https://www.googleapis.com/auth/pubsub"
            (message,) = json.loads(flags["message-body"])["messages"]
            request = json.loads(base64.b64decode(message["data"]))
            assert request == schedule.message()
            assert "idempotency_key" not in request  # the same bytes at every fire: the router keys the tick
        assert _flags(job.create)["headers"] == "Content-Type=application/json"
        assert _flags(job.update)["update-headers"] == "Content-Type=application/json"
    monitor, nightly = (
        json.loads(base64.b64decode(json.loads(_flags(j.create)["message-body"])["messages"][0]["data"]))
        for j in jobs
    )
    assert monitor["parameters"] == {
        "model_name": "churn",
        "alerts_topic": "mlops-alerts",
    }  # deploy-time variables
    assert nightly["parameters"]["data_uri"] == f"gs://{d.data_bucket}/score/"
    assert _flags(jobs[1].create)["description"] == "Score yesterday's customers"
    (prune,) = [a for a in plan.actions if isinstance(a, Prune) and a.list[:2] == ("gcloud", "scheduler")]
    assert prune.keep == ("mlops-schedule-monitor-churn", "mlops-schedule-nightly-scores")
    assert "--filter=name~/jobs/mlops-schedule-" in prune.list
    # The functions come first: the run-request function exists before the first tick.
    order = [a for a in plan.actions if isinstance(a, Ensure)]
    assert order[-2:] == jobs


def test_rules_without_schedules_create_no_job_and_remove_ours() -> None:
    d = _d()
    plan = deploy_plan(d, load_rules(default_rules_text(), variables=d.rule_variables()), "build/bundle")
    assert _jobs(plan) == []
    (prune,) = [a for a in plan.actions if isinstance(a, Prune) and a.list[:2] == ("gcloud", "scheduler")]
    assert prune.keep == ()


def test_a_schedule_the_rules_would_not_launch_stops_the_deploy() -> None:
    d = _d()
    text = RULES.replace('parameters: "{parameters}"}', 'parameters: "{parameters}", allow: [monitoring]}')
    with pytest.raises(DeployConfigError) as err:
        deploy_plan(d, load_rules(text, variables=d.rule_variables()), "build/bundle")
    assert err.value.problems == [
        "schedule nightly-scores: its run request on topic 'mlops-run-requests' would not launch "
        "batch_prediction: reject (pipeline 'batch_prediction' is not allowed by rule run-request "
        "(allowed: monitoring))"
    ]


def test_prune_deletes_only_what_the_rules_no_longer_have() -> None:
    calls: list[tuple[str, ...]] = []

    def runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(tuple(argv))
        out = "mlops-schedule-monitor-churn\nmlops-schedule-old\n" if "list" in argv else ""
        return subprocess.CompletedProcess(list(argv), 0, out, "")

    d = _d()
    plan = deploy_plan(d, load_rules(RULES, variables=d.rule_variables()), "build/bundle")
    (prune,) = [a for a in plan.actions if isinstance(a, Prune) and a.list[:2] == ("gcloud", "scheduler")]
    executor = Executor(runner, log=io.StringIO())
    executor._one(prune)
    assert executor.changed == [
        (
            "gcloud",
            "scheduler",
            "jobs",
            "delete",
            "mlops-schedule-old",
            f"--project={PROJECT}",
            f"--location={REGION}",
            "--quiet",
        )
    ]
    script = render_script(plan)
    assert 'case "$NAME" in mlops-schedule-monitor-churn|mlops-schedule-nightly-scores) ;;' in script


@pytest.mark.slow  # a subprocess per gcloud call
def test_deploy_creates_then_updates_then_removes_jobs(tmp_path: Path) -> None:
    from tests.deploy.fakes import install_fakes, mutations

    fake = install_fakes(tmp_path)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "main.py").write_text("")
    rules = tmp_path / "rules.yaml"

    def deploy(text: str) -> list[list[str]]:
        rules.write_text(text)
        fake.reset_log()
        cmd = [sys.executable, "-m", "mlops_cli.cmd_gcp", "gcp", "deploy-functions", f"--project={PROJECT}",
               f"--region={REGION}", f"--bundle={bundle}", f"--rules={rules}"]  # fmt: skip
        proc = subprocess.run(cmd, env=fake.env(), cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return [c for c in mutations(fake.calls()) if c[:2] == ["scheduler", "jobs"]]

    first = deploy(RULES)
    assert [c[:4] for c in first] == [["scheduler", "jobs", "create", "http"]] * 2
    second = deploy(RULES.replace("0 */6 * * *", "0 */4 * * *"))
    assert [c[:4] for c in second] == [["scheduler", "jobs", "update", "http"]] * 2
    assert "--schedule=0 */4 * * *" in second[0]
    state = json.loads(fake.state.read_text())["resources"]
    assert state["scheduler jobs:mlops-schedule-monitor-churn"]["schedule"] == "0 */4 * * *"
    third = deploy(RULES.split("  - name: nightly-scores")[0])
    assert [c[:5] for c in third] == [
        ["scheduler", "jobs", "update", "http", "mlops-schedule-monitor-churn"],
        ["scheduler", "jobs", "delete", "mlops-schedule-nightly-scores", f"--project={PROJECT}"],
    ]
    assert (
        "scheduler jobs:mlops-schedule-nightly-scores" not in json.loads(fake.state.read_text())["resources"]
    )


# --- the scheduler identity -------------------------------------------------------------------


def test_the_scheduler_account_may_only_publish_run_requests() -> None:
    d = _d()
    assert d.scheduler_sa.email == f"mlops-scheduler@{PROJECT}.iam.gserviceaccount.com"
    assert d.scheduler_sa in d.service_accounts
    grants = {
        (b.resource_type, b.resource, b.role) for b in d.bindings() if b.member == d.scheduler_sa.member
    }
    assert grants == {("topic", d.run_requests_topic, "roles/pubsub.publisher")}
    on_it = {(b.member, b.role) for b in d.bindings() if b.resource == d.scheduler_sa.email}
    assert on_it == {
        (d.build_sa.member, "roles/iam.serviceAccountUser"),  # create jobs that run as it
        (
            "serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-cloudscheduler.iam.gserviceaccount.com",
            "roles/iam.serviceAccountTokenCreator",
        ),
    }
    scheduler_perms = sorted(p for p in DEPLOYER_PERMISSIONS if p.startswith("cloudscheduler."))
    assert scheduler_perms == [
        "cloudscheduler.jobs.create",
        "cloudscheduler.jobs.delete",
        "cloudscheduler.jobs.get",
        "cloudscheduler.jobs.list",
        "cloudscheduler.jobs.update",
    ]  # not run, pause or resume
    assert not {b.role for b in d.bindings()} & {"roles/cloudscheduler.admin", "roles/pubsub.admin"}


def test_setup_creates_the_scheduler_account_and_enables_cloud_scheduler() -> None:
    d = _d()
    script = render_script(setup_plan(d))
    assert f"gcloud iam service-accounts create mlops-scheduler --project={PROJECT}" in script
    assert f"gcloud services enable cloudscheduler.googleapis.com --project={PROJECT}" in script
    assert "--service=cloudscheduler.googleapis.com" in script  # the service agent exists before its grant
    assert (
        f"gcloud pubsub topics add-iam-policy-binding mlops-run-requests --project={PROJECT} "
        f"--member=serviceAccount:mlops-scheduler@{PROJECT}.iam.gserviceaccount.com --role=roles/pubsub.publisher"
    ) in script
    other = Deployment(PROJECT, REGION, scheduler_sa_id="cron-publisher")
    assert other.scheduler_sa.email == f"cron-publisher@{PROJECT}.iam.gserviceaccount.com"


def test_the_iam_table_lists_the_scheduler_grants() -> None:
    table = iam_table(_d())
    assert "| `mlops-scheduler` | `roles/pubsub.publisher` | topic `mlops-run-requests` |" in table
    assert "`roles/iam.serviceAccountTokenCreator` | service account `mlops-scheduler@" in table
    doc = (ROOT / "docs" / "deploy.md").read_text()
    assert iam_table(Deployment("my-project", "europe-west1")) in doc, (
        "docs/deploy.md's IAM table is `mlops-events gcp iam-table --project my-project ...`"
    )


def test_job_names_follow_the_prefix() -> None:
    d = Deployment(PROJECT, REGION, prefix="ml")
    (schedule,) = load_rules(
        RULES.split("  - name: nightly-scores")[0], variables=d.rule_variables()
    ).schedules
    assert job_name(d, schedule) == "ml-schedule-monitor-churn"
