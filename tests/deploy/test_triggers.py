"""Triggers come from the routing rules: every rule is delivered, and what is deployed is the bundle."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deploy.config import (
    AuditTrigger,
    DeployConfigError,
    Deployment,
    StorageTrigger,
    TopicTrigger,
    coverage_problems,
    model_service_method,
)
from deploy.functions import deploy_plan, serve_command
from deploy.plan import Ensure, Prune, Run
from deploy.platform import DEFAULT_AUDIT_VERSIONS
from events.routing import default_rules_text
from functions.bundle import build_bundle
from functions.settings import Settings
from tests.catalog import load_rules

PROJECT, REGION = "demo-project-1", "europe-west1"
ENTRY_POINTS = ("on_new_data", "on_monitoring_alert", "on_run_request", "on_model_registry_event")

RULES_WITH_DELETE = """
version: 1
rules:
  - name: forget-deleted
    on: model_registry
    match: {method: DeleteModelVersion}
    skip: deleted versions need no pipeline
  - name: deploy-champion
    on: model_registry
    match: {alias: champion, method: [MergeVersionAliases]}
    launch:
      pipeline: deployment
      parameters: {model_name: "{model_name}", version: "{version|'champion'}"}
"""

RULES_OTHER_SOURCES = """
version: 1
rules:
  - name: partner-drop
    on: storage.object.finalized
    match: {bucket: partner-drops}
    launch: {pipeline: training, parameters: {data_uri: "{uri}", model_name: partner}}
  - name: nightly
    on: run.request
    match: {topic: nightly-requests}
    launch: {pipeline: "{pipeline}", parameters: "{parameters}", allow: [batch_prediction]}
"""


def _deployment(**kw: object) -> Deployment:
    return Deployment(PROJECT, REGION, **kw)  # type: ignore[arg-type]


def _rules(text: str, d: Deployment):  # type: ignore[no-untyped-def]
    return load_rules(text, variables=d.rule_variables())


def test_default_rules_are_covered_by_generated_triggers() -> None:
    d = _deployment()
    rules = _rules(default_rules_text(), d)
    functions = d.functions_for(rules)
    assert [f.entry_point for f in functions] == list(ENTRY_POINTS)
    by_entry = {f.entry_point: f for f in functions}
    assert by_entry["on_new_data"].triggers == (StorageTrigger(d.data_bucket),)
    assert by_entry["on_monitoring_alert"].triggers == (TopicTrigger(d.alerts_topic),)
    assert by_entry["on_run_request"].triggers == (TopicTrigger(d.run_requests_topic),)
    audit = by_entry["on_model_registry_event"].triggers
    assert audit == tuple(
        AuditTrigger("aiplatform.googleapis.com", model_service_method(m, v))
        for m in sorted(rules.audit_methods())
        for v in DEFAULT_AUDIT_VERSIONS[m]
    )
    assert rules.audit_methods()  # the shipped rules do react to the registry
    assert coverage_problems(rules, functions) == []


def test_one_audit_trigger_per_method_with_the_exact_filters() -> None:
    d = _deployment()
    rules = _rules(RULES_WITH_DELETE, d)
    plan = deploy_plan(d, rules, "build/bundle")
    creates = [
        a.create
        for a in plan.actions
        if isinstance(a, Ensure) and a.create[:3] == ("gcloud", "eventarc", "triggers")
    ]
    methods = sorted(
        f.split("=", 2)[2] for c in creates for f in c if f.startswith("--event-filters=methodName=")
    )
    assert methods == [
        "google.cloud.aiplatform.ui.ModelService.DeleteModelVersion",
        "google.cloud.aiplatform.ui.ModelService.MergeVersionAliases",
        "google.cloud.aiplatform.v1.ModelService.DeleteModelVersion",
        "google.cloud.aiplatform.v1.ModelService.MergeVersionAliases",
        "google.cloud.aiplatform.v1beta1.ModelService.DeleteModelVersion",
    ]
    for c in creates:
        assert "--event-filters=type=google.cloud.audit.log.v1.written" in c
        assert "--event-filters=serviceName=aiplatform.googleapis.com" in c
        assert "--destination-run-service=mlops-on-model-registry-event" in c
        assert f"--service-account={d.trigger_sa.email}" in c


def test_a_rule_needing_an_audit_method_the_fixed_triggers_lack_fails(tmp_path: Path) -> None:
    d = _deployment(fixed_audit_methods=("MergeVersionAliases",))
    rules = _rules(RULES_WITH_DELETE, d)
    with pytest.raises(
        DeployConfigError, match=r"ModelService\.DeleteModelVersion audit logs but no trigger"
    ):
        d.functions_for(rules)
    # The same check guards the CLI: nothing is deployed.
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES_WITH_DELETE)
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_cli.cmd_gcp", "gcp", "deploy-functions", f"--project={PROJECT}",
         f"--region={REGION}", "--dry-run", "--audit-methods=MergeVersionAliases", f"--rules={rules_file}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and "DeleteModelVersion" in proc.stderr and proc.stdout == ""
    # With the method in the fixed list, it deploys.
    ok = _deployment(fixed_audit_methods=("MergeVersionAliases", "DeleteModelVersion"))
    assert ok.functions_for(_rules(RULES_WITH_DELETE, ok))


def test_rules_naming_other_buckets_and_topics_get_triggers() -> None:
    d = _deployment()
    rules = _rules(RULES_OTHER_SOURCES, d)
    by_entry = {f.entry_point: f for f in d.functions_for(rules)}
    assert StorageTrigger("partner-drops") in by_entry["on_new_data"].triggers
    assert TopicTrigger("nightly-requests") in by_entry["on_run_request"].triggers
    # ... and a hand-made trigger list missing them is reported.
    lacking = tuple(f.__class__(f.name, f.entry_point, f.triggers[:1], 1, 0) for f in by_entry.values())
    problems = coverage_problems(rules, lacking)
    assert problems == [
        "rules match bucket 'partner-drops' but no storage trigger watches it",
        "rules match topic 'nightly-requests' but no Pub/Sub trigger delivers it",
    ]


def test_deploy_commands_set_every_setting_retries_dead_letters_and_caps() -> None:
    d = _deployment(min_instances=1, max_instances=5)
    plan = deploy_plan(d, _rules(default_rules_text(), d), "build/bundle")
    deploys = [
        a.argv for a in plan.actions if isinstance(a, Run) and a.argv[:3] == ("gcloud", "functions", "deploy")
    ]
    assert [next(x for x in c if x.startswith("--entry-point=")) for c in deploys] == [
        f"--entry-point={e}" for e in ENTRY_POINTS
    ]
    for argv in deploys:
        assert "--gen2" in argv and "--runtime=python311" in argv and "--source=build/bundle" in argv
        assert "--min-instances=1" in argv and "--max-instances=5" in argv
        assert f"--service-account={d.function_sa.email}" in argv
        env = dict(
            kv.split("=", 1)
            for kv in next(x for x in argv if x.startswith("--set-env-vars=")).split("=", 1)[1].split(",")
        )
        settings = Settings.from_env(env)  # the functions' own settings accept what deploy sets
        assert settings.project == PROJECT and settings.region == REGION and settings.launcher == "vertex"
        assert settings.pipeline_service_account == d.pipeline_sa.email
        assert settings.pipeline_root == d.pipeline_root and settings.data_bucket == d.data_bucket
        for name in ("MLOPS_CONFIG", "MLOPS_TEMPLATES", "DEAD_LETTER_TOPIC"):
            assert env[name]
        if "--trigger-http" not in argv:
            assert "--retry" in argv and f"--trigger-service-account={d.trigger_sa.email}" in argv
    dead_letter = [
        a.argv for a in plan.actions if isinstance(a, Run) and "--dead-letter-topic" in " ".join(a.argv)
    ]
    triggers = sum(len(f.triggers) for f in d.functions_for(_rules(default_rules_text(), d)))
    assert len(dead_letter) == triggers
    assert all(
        f"--dead-letter-topic=projects/{PROJECT}/topics/{d.dead_letter_topic}" in a for a in dead_letter
    )
    with pytest.raises(DeployConfigError, match="60 submissions per minute"):
        _deployment(max_instances=16)


@pytest.mark.slow  # a subprocess per gcloud call
def test_deploy_functions_twice_creates_triggers_once(tmp_path: Path) -> None:
    from tests.deploy.fakes import install_fakes, mutations

    fake = install_fakes(tmp_path)
    bundle = tmp_path / "bundle"
    (bundle).mkdir()
    (bundle / "main.py").write_text("")
    cmd = [sys.executable, "-m", "mlops_cli.cmd_gcp", "gcp", "deploy-functions", f"--project={PROJECT}",
           f"--region={REGION}", f"--bundle={bundle}"]  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    first = subprocess.run(cmd, env=fake.env(), cwd=root, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    created = [c for c in mutations(fake.calls()) if "create" in c]
    d = _deployment()
    assert len(created) == len(d.audit_triggers(_rules(default_rules_text(), d))) == 7
    fake.reset_log()
    second = subprocess.run(cmd, env=fake.env(), cwd=root, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    again = mutations(fake.calls())
    assert not [c for c in again if "create" in c or "add-iam-policy-binding" in c]
    assert {c[0] for c in again} == {"functions", "eventarc", "pubsub"}  # deploy/update are idempotent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_deployed_directory_is_the_bundle_the_local_stack_serves(tmp_path: Path) -> None:
    bundle = build_bundle(tmp_path / "bundle")
    d = _deployment()
    plan = deploy_plan(d, _rules((bundle / "rules.yaml").read_text(), d), bundle)
    deploys = [
        a.argv for a in plan.actions if isinstance(a, Run) and a.argv[:3] == ("gcloud", "functions", "deploy")
    ]
    assert {next(x for x in c if x.startswith("--source=")) for c in deploys} == {f"--source={bundle}"}
    assert (bundle / "rules.yaml").is_file() and d.rules_file.endswith("/rules.yaml")
    # Serve one entry point exactly as the local stack does, from the directory deploy ships.
    port = _free_port()
    argv = list(serve_command(bundle, "on_run_request", port))
    argv[0] = str(Path(sys.executable).parent / argv[0])
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", data=b"{}", timeout=2) as reply:
                    # Not a CloudEvent: the function records a dead letter and acknowledges.
                    assert reply.status == 200
                    assert b"rejected (recorded as a dead letter)" in reply.read()
                break
            except urllib.error.HTTPError as err:
                raise AssertionError(f"the served bundle answered {err.code}") from None
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(
                        f"functions-framework did not serve the bundle: {proc.stderr!r}"
                    ) from None
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_default_plan_delivers_the_consoles_alias_move() -> None:
    """Moving `champion` in the Cloud console is logged as the `ui` spelling; on the old main only
    the v1 method names had a trigger, so that alias move deployed nothing."""
    d = _deployment()
    plan = deploy_plan(d, _rules(default_rules_text(), d), "build/bundle")
    filters = {
        f.split("=", 2)[2]
        for a in plan.actions
        if isinstance(a, Ensure) and a.create[:4] == ("gcloud", "eventarc", "triggers", "create")
        for f in a.create
        if f.startswith("--event-filters=methodName=")
    }
    assert "google.cloud.aiplatform.ui.ModelService.MergeVersionAliases" in filters
    # Every spelling a caller writes for the methods the shipped rules need: the SDK (v1), the
    # console (ui), `gcloud beta ai models upload` (v1beta1).
    assert filters == {
        f"google.cloud.aiplatform.{v}.ModelService.{m}"
        for m, versions in {
            "UploadModel": ("v1", "v1beta1", "ui"),
            "MergeVersionAliases": ("v1", "ui"),
            "UpdateModel": ("v1", "ui"),
        }.items()
        for v in versions
    }
    # Each spelling is a trigger of its own, named after it, and parses as the registry event the
    # rule expects (the samples under tests/data/events).
    names = [
        a.check[4]
        for a in plan.actions
        if isinstance(a, Ensure) and a.check[:3] == ("gcloud", "eventarc", "triggers")
    ]
    assert "mlops-registry-ui-merge-version-aliases" in names and len(names) == len(set(names)) == 7
    from events.routing import route
    from tests.samples import event

    decision = route(event("vertex-merge-version-aliases-ui.json"), _rules(default_rules_text(), d))
    assert decision.decision == "launch" and decision.rule == "deploy-champion", decision
    upload = event("vertex-upload-model-v1beta1.json")
    assert upload.kind == "model_registry" and upload.fields()["api_version"] == "v1beta1"


def test_audit_api_versions_given_are_exactly_those() -> None:
    d = _deployment(audit_api_versions=("v1",))
    methods = {t.method for t in d.audit_triggers(_rules(default_rules_text(), d))}
    assert methods == {
        model_service_method(m, "v1") for m in ("MergeVersionAliases", "UpdateModel", "UploadModel")
    }
    with pytest.raises(DeployConfigError, match="'v2' is not one of v1, v1beta1, ui"):
        _deployment(audit_api_versions=("v2",))


def test_triggers_of_spellings_no_longer_delivered_are_pruned() -> None:
    d = _deployment()
    plan = deploy_plan(d, _rules(default_rules_text(), d), "build/bundle")
    (prune,) = [
        a for a in plan.actions if isinstance(a, Prune) and a.list[:3] == ("gcloud", "eventarc", "triggers")
    ]
    assert "--filter=name~/triggers/mlops-registry-" in prune.list
    assert set(prune.keep) == {
        a.check[4]
        for a in plan.actions
        if isinstance(a, Ensure) and a.check[:3] == ("gcloud", "eventarc", "triggers")
    }
    assert prune.delete_argv("mlops-registry-v1-copy-model") == (
        "gcloud", "eventarc", "triggers", "delete", "mlops-registry-v1-copy-model",
        f"--project={PROJECT}", f"--location={REGION}", "--quiet",
    )  # fmt: skip
