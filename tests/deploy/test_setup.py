"""``mlops-events gcp setup``: what it creates, that a dry run runs nothing, that it is idempotent,
and that the grants are the least-privilege ones the README's table promises."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from deploy.config import DeployConfigError, Deployment
from deploy.platform import APIS, LAUNCHER_PERMISSIONS, LAUNCHER_ROLE_ID
from mlops_cli.cmd_gcp import iam_table
from tests.deploy.fakes import install_fakes, mutations

PROJECT, REGION = "demo-project-1", "europe-west1"
SETUP = [
    sys.executable,
    "-m",
    "mlops_cli.cmd_gcp",
    "gcp",
    "setup",
    f"--project={PROJECT}",
    f"--region={REGION}",
]
ROOT = Path(__file__).resolve().parents[2]


def _dry_run(tmp_path: Path) -> tuple[str, list[list[str]]]:
    fake = install_fakes(tmp_path)
    proc = subprocess.run(
        [*SETUP, "--dry-run"], env=fake.env(), cwd=ROOT, capture_output=True, text=True, check=True
    )
    return proc.stdout, fake.calls()


def _commands(script: str) -> list[list[str]]:
    """Every gcloud command of the script, split at ``||`` / ``&&`` (each guarded create counts once)."""
    out: list[list[str]] = []
    for line in script.splitlines():
        if line.startswith("#") or "gcloud" not in line:
            continue
        for part in line.replace("&&", "||").split("||"):
            words = shlex.split(part.replace(">/dev/null 2>&1", "").replace(">/dev/null", ""))
            if "gcloud" in words:
                out.append(words[words.index("gcloud") :])
    return out


def test_dry_run_prints_each_resource_and_binding_once_and_runs_nothing(tmp_path: Path) -> None:
    script, calls = _dry_run(tmp_path)
    assert calls == [], "a dry run must not run gcloud"
    d = Deployment(PROJECT, REGION)
    cmds = [" ".join(c) for c in _commands(script)]
    counts = Counter(cmds)

    for api in APIS:
        assert counts[f"gcloud services enable {api} --project={PROJECT}"] == 1, api
    creates = [c for c in cmds if " create " in c]
    for bucket in d.buckets:
        assert sum(f"buckets create gs://{bucket} " in c for c in creates) == 1, bucket
    for topic in d.topics:
        assert sum(c.startswith(f"gcloud pubsub topics create {topic} ") for c in creates) == 1, topic
    for sa in d.service_accounts:
        assert sum(c.startswith(f"gcloud iam service-accounts create {sa.account_id} ") for c in creates) == 1
    assert sum(c.startswith(f"gcloud iam roles create {LAUNCHER_ROLE_ID} ") for c in creates) == 1

    adds = [c for c in cmds if "add-iam-policy-binding" in c]
    setup_bindings = [b for b in d.bindings() if b.phase == "setup"]
    assert len(adds) == len(set(adds)) == len(setup_bindings)
    for b in setup_bindings:
        assert sum(f"--member={b.member} --role={b.role}" in c and b.resource in c for c in adds) == 1, b

    assert "roles/owner" not in script and "roles/editor" not in script
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script


@pytest.mark.slow  # a subprocess per gcloud call
def test_setup_twice_creates_only_the_first_time(tmp_path: Path) -> None:
    fake = install_fakes(tmp_path)
    first = subprocess.run(SETUP, env=fake.env(), cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    created = mutations(fake.calls())
    d = Deployment(PROJECT, REGION)
    # APIs, repository, 4 buckets, 3 topics + the dead-letter hold subscription, 5 SAs, 2 roles, bindings.
    expected = (
        len(APIS) + 1 + 4 + 4 + len(d.service_accounts) + 2 + sum(b.phase == "setup" for b in d.bindings())
    )
    assert len(created) == expected
    assert any(c[:3] == ["storage", "buckets", "create"] for c in created)

    fake.reset_log()
    second = subprocess.run(SETUP, env=fake.env(), cwd=ROOT, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert mutations(fake.calls()) == []
    assert any(c[-1] == "--format=json" or "describe" in c for c in fake.calls()), "it must check, not skip"
    assert "0 change(s)" in second.stderr


@pytest.mark.slow
def test_dry_run_script_is_itself_idempotent(tmp_path: Path) -> None:
    """The printed script runs (bash, fake gcloud) and a second run creates nothing."""
    script, _ = _dry_run(tmp_path / "print")
    path = tmp_path / "setup.sh"
    path.write_text(script)
    fake = install_fakes(tmp_path)
    subprocess.run(["bash", str(path)], env=fake.env(), check=True, capture_output=True)
    assert any(c[:3] == ["pubsub", "topics", "create"] for c in fake.calls())
    fake.reset_log()
    subprocess.run(["bash", str(path)], env=fake.env(), check=True, capture_output=True)
    # Only idempotent setters run again (enable, add a binding, set a role's permissions): no create.
    again = mutations(fake.calls())
    verbs = {
        next(v for v in ("enable", "add-iam-policy-binding", "update", "create") if v in c) for c in again
    }
    assert verbs == {"enable", "add-iam-policy-binding", "update"}


def test_function_identity_is_least_privilege() -> None:
    d = Deployment(PROJECT, REGION)
    grants = {(b.resource_type, b.resource, b.role) for b in d.bindings() if b.member == d.function_sa.member}
    assert grants == {
        ("project", PROJECT, f"projects/{PROJECT}/roles/{LAUNCHER_ROLE_ID}"),
        ("service_account", d.pipeline_sa.email, "roles/iam.serviceAccountUser"),
        ("bucket", d.data_bucket, "roles/storage.objectAdmin"),
        ("bucket", d.templates_bucket, "roles/storage.objectViewer"),
        ("topic", d.dead_letter_topic, "roles/pubsub.publisher"),
    }
    assert set(LAUNCHER_PERMISSIONS) == {
        "aiplatform.pipelineJobs.create",
        "aiplatform.pipelineJobs.get",
        "aiplatform.metadataStores.get",
    }


def test_no_identity_gets_a_basic_role_and_project_grants_are_listed() -> None:
    d = Deployment(PROJECT, REGION)
    roles = {b.role for b in d.bindings()}
    assert not roles & {"roles/owner", "roles/editor", "roles/viewer"}
    project_level = {(b.member, b.role) for b in d.bindings() if b.resource_type == "project"}
    pipeline_and_trigger = {
        (m, r) for m, r in project_level if m in (d.pipeline_sa.member, d.trigger_sa.member)
    }
    assert pipeline_and_trigger == {
        (d.pipeline_sa.member, "roles/aiplatform.user"),
        (d.trigger_sa.member, "roles/eventarc.eventReceiver"),
    }
    build = sorted(r for m, r in project_level if m == d.build_sa.member)
    assert build == [
        f"projects/{PROJECT}/roles/mlopsDeployer",
        "roles/cloudfunctions.developer",
        "roles/eventarc.developer",
        "roles/logging.logWriter",
    ]


def test_iam_table_lists_every_binding() -> None:
    d = Deployment(PROJECT, REGION)
    table = iam_table(d)
    assert table.startswith("| principal | role | on | why |")
    assert table.count("\n") == 2 + len(d.bindings()) + 4  # header, rows, one invoker row per function
    assert "`roles/run.invoker` | function `mlops-on-new-data`" in table


def test_bad_configuration_is_refused_with_every_problem() -> None:
    with pytest.raises(DeployConfigError) as err:
        Deployment("Bad_Project", "nowhere", max_instances=40, min_instances=50)
    text = str(err.value)
    assert "project 'Bad_Project'" in text and "region 'nowhere'" in text and "max_instances 40" in text
