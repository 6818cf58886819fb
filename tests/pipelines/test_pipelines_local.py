"""The compiled pipelines end to end under kfp.local (SubprocessRunner, no venv: each task a real
subprocess, as on Vertex) against the production code path: the Vertex registry and endpoint
adapters talking to the Vertex AI emulator (``VERTEX_API_ENDPOINT``), Cloud Storage on
fake-gcs-server, alerts on the Pub/Sub emulator when it is installed. Deployed models are served
by real ``mlops-events serve`` processes that the emulator starts; monitoring reads the serving
records they write.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.main import main
from pipelines import backends, storage_io
from pipelines.components import errors, steps, training
from pipelines.local_run import RunResult, run_pipeline
from tests.pipelines.conftest import Vertex
from tests.pipelines.datasets import breast_cancer, generated

pytestmark = [
    pytest.mark.slow,
    # kfp.local's SubprocessRunner warns about any image that is not python:*; here the environment is the image.
    pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning"),
]

# What `mlops-events compile --base-image` writes: every upload must name this image (issue 11).
IMAGE = "europe-docker.pkg.dev/p/r/mlops-events@sha256:" + "b" * 64


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.compile import compile_all

    out = tmp_path_factory.mktemp("templates")
    compile_all(out, base_image=IMAGE)
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pipeline-root")


@pytest.fixture(scope="module")
def run(templates: Path, root: Path, vertex: Vertex) -> Any:
    def run(name: str, **params: Any) -> RunResult:
        return run_pipeline(name, params, root, template_dir=templates, echo=lambda _: None)

    return run


def put(uri: str, frame: Any, fmt: str = "csv") -> str:
    from pipelines.components.data import to_bytes

    storage_io.write_bytes(uri, to_bytes(frame, fmt))
    return uri


# --- training ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cancer(run: Any, vertex: Vertex) -> dict[str, Any]:
    """Model ``cancer``: version 1, trained by the training pipeline, the champion."""
    data = put(vertex.uri("incoming/cancer/part-1.csv"), breast_cancer())
    first = run("training", data_uri=data, model_name="cancer", trigger="gs://b/o#1")
    assert first.ok, (first.failed_task, first.reason)
    return {"data": data, "outputs": first.outputs, "tasks": first.tasks}


def test_first_model_becomes_champion_and_a_worse_one_does_not(
    cancer: dict[str, Any], run: Any, vertex: Vertex
) -> None:
    first = cancer["outputs"]
    assert [t.name for t in cancer["tasks"]] == ["train-and-register"]  # one Vertex task
    assert first["promoted"] is True and first["version"] == "1"
    assert first["metrics"]["roc_auc"] > 0.95

    # Crippled hyperparameters: a one-tree stump scores worse on the same holdout.
    worse = run(
        "training",
        data_uri=cancer["data"],
        model_name="cancer",
        model_family="random_forest",
        hyperparameters={"n_estimators": 1, "max_depth": 1},
    )
    assert worse.ok, (worse.failed_task, worse.reason)
    assert worse.outputs["promoted"] is False and worse.outputs["version"] == "2"
    assert "does not beat champion v1" in worse.outputs["reasons"][0]

    registry = backends.model_registry()
    champion, challenger = registry.get("cancer", "champion"), registry.get("cancer", "challenger")
    assert champion is not None and champion.version == "1"
    assert challenger is not None and challenger.version == "2"
    assert challenger.labels["model_family"] == "random_forest" and challenger.labels["trigger"] == "manual"
    # The model folder was staged to Cloud Storage by the SDK at upload; it is self-contained.
    assert champion.artifact_uri.startswith(vertex.staging_bucket + "/")
    meta = training.load_metadata(champion.artifact_uri)
    assert meta["data_uris"] == [cancer["data"]] and meta["metrics"]["roc_auc"] == first["metrics"]["roc_auc"]
    assert storage_io.exists(training.resolve_uri(meta["reference_uri"], champion.artifact_uri))
    # The upload named the image compile wrote into the task (issue 11: never unset).
    spec = vertex.sdk().Model(champion.resource_name).gca_resource.container_spec
    assert spec.image_uri == IMAGE and list(spec.command) == ["mlops-events", "serve"]


def test_manual_promotion_registers_the_challenger_without_moving_champion(
    cancer: dict[str, Any], run: Any
) -> None:
    """A first version passes the gate (no champion to beat), yet only a person may make it champion."""
    waiting = run("training", data_uri=cancer["data"], model_name="cancer_manual", promotion="manual")
    assert waiting.ok, (waiting.failed_task, waiting.reason)
    out = waiting.outputs
    assert out["promoted"] is False and out["promotion"] == "manual" and out["version"] == "1"
    assert "promotion is manual: the gate would pass; awaiting approval" in out["reasons"][-1]
    registry = backends.model_registry()
    assert registry.get("cancer_manual", "champion") is None
    version = registry.get("cancer_manual", "challenger")
    assert version is not None and version.version == "1"
    meta = training.load_metadata(version.artifact_uri)
    assert meta["promotion"] == "manual" and meta["gate"]["promote"] is True
    # The approval: a person moves champion and the decision is recorded with who and why.
    registry.set_alias("cancer_manual", "1", "champion")
    approved = registry.record_decision(
        "cancer_manual", "1", "approved", principal="alice@example.com", reason="holdout report reviewed"
    )
    assert "champion" in approved.aliases and approved.decisions[-1]["principal"] == "alice@example.com"


@pytest.mark.parametrize(
    ("case", "failed_task", "message"),
    [
        ("missing_label", "DataValidationError", "label column 'target' is missing"),
        ("empty_file", "DataError", "is empty (0 rows)"),
    ],
)
def test_bad_data_fails_the_run_with_a_report(
    run: Any, tmp_path: Path, case: str, failed_task: str, message: str
) -> None:
    path = tmp_path / f"{case}.csv"
    if case == "empty_file":
        path.write_text("")
    else:
        breast_cancer().drop(columns=["target"]).to_csv(path, index=False)
    result = run("training", data_uri=str(path), model_name="cancer")
    assert not result.ok
    assert result.failed_task == "train-and-register"
    assert (result.reason or "").startswith(failed_task) and message in (result.reason or "")
    assert [t.status for t in result.tasks][-1] == "FAILURE"


# --- deployment, serving, monitoring -----------------------------------------------------------------


@pytest.fixture(scope="module")
def churn(run: Any, vertex: Vertex) -> dict[str, Any]:
    """Model ``churn``: v1 trained and deployed (first deployment: 100%)."""
    train_uri = put(vertex.uri("incoming/churn/train.parquet"), generated(600, seed=1), "parquet")
    trained = run("training", data_uri=train_uri, model_name="churn", model_family="logistic_regression")
    assert trained.ok and trained.outputs["promoted"], trained.reason
    started = time.perf_counter()
    deployed = run("deployment", model_name="churn")
    seconds = time.perf_counter() - started
    assert deployed.ok, (deployed.failed_task, deployed.reason)
    return {"train_uri": train_uri, "deployment": deployed.outputs, "deploy_seconds": seconds}


def smoke_test_endpoints(vertex: Vertex) -> list[Any]:
    return list(vertex.sdk().Endpoint.list(filter='labels.mlops_role="smoke-test"'))


def test_deployment_smoke_tests_alone_then_canary_then_promotes_or_refuses(
    churn: dict[str, Any], run: Any, vertex: Vertex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = churn["deployment"]
    assert first["status"] == "promoted" and first["traffic"] == {"1": 100}
    assert first["smoke_test"]["model_version_id"] == "1"
    assert backends.endpoint("churn").describe().deployed == ("1",)

    again = run("training", data_uri=churn["train_uri"], model_name="churn", model_family="random_forest")
    assert again.ok and again.outputs["version"] == "2", again.reason

    # A smoke test that fails: v2 never reaches the real endpoint, which stays as it was.
    no_features = tmp_path / "smoke.csv"
    no_features.write_text("colour,size\nred,1\n")
    refused = run("deployment", model_name="churn", version="2", smoke_test_uri=str(no_features))
    assert not refused.ok and refused.failed_task == "deploy-model"
    reason = refused.reason or ""
    assert "v2 of churn not deployed: smoke test failed" in reason and "lacks feature(s)" in reason
    assert "endpoint churn unchanged (traffic {'1': 100})" in reason
    state = backends.endpoint("churn").describe()
    assert dict(state.traffic) == {"1": 100} and state.deployed == ("1",)
    assert smoke_test_endpoints(vertex) == []  # deleted, failed or not

    # Issue 12: instances are objects; column order and the label column do not matter.
    rows = generated(5, seed=3)[["target", "plan", "tenure", "usage"]]
    shuffled = tmp_path / "shuffled.csv"
    rows.to_csv(shuffled, index=False)
    promoted = run(
        "deployment", model_name="churn", version="2", smoke_test_uri=str(shuffled), canary_percent=20
    )
    assert promoted.ok, (promoted.failed_task, promoted.reason)
    out = promoted.outputs
    assert out["status"] == "promoted" and out["traffic"] == {"2": 100}
    # The smoke test provably reached v2, on its own endpoint, while v1 served all of "churn".
    assert out["smoke_test"]["model_version_id"] == "2" and out["smoke_test"]["endpoint"] != "churn"
    assert (
        out["smoke_test"]["deployed_model_id"]
        not in backends.endpoint("churn").describe().deployed_ids.values()
    )
    assert backends.endpoint("churn").describe().deployed == ("2",)
    assert smoke_test_endpoints(vertex) == []

    # Dict order and a label column: the endpoint's answer is the model's own prediction.
    v2 = backends.model_registry().get("churn", "2")
    assert v2 is not None
    estimator, meta = training.load_model(v2.artifact_uri)
    expected = estimator.predict(rows[meta["feature_names"]]).tolist()
    answer = backends.endpoint("churn").predict(rows.to_dict(orient="records"))
    assert [int(p["prediction"]) for p in answer.predictions] == expected
    assert answer.model_version_id == "2"

    # The canary phase's failure path, on the real endpoint: v1 as a 20% canary beside v2.
    canary = steps.deploy_canary(model_name="churn", version="1", endpoint_name="", canary_percent=20)
    assert canary["traffic"] == {"2": 80, "1": 20} and canary["previous_traffic"] == {"2": 100}
    with pytest.raises(errors.CanaryFailed, match=r"rolled back v1 of churn: the canary failed: told to"):
        steps.finalize_deployment(
            model_name="churn", canary=canary, check={"passed": False, "reason": "told to"}
        )
    state = backends.endpoint("churn").describe()
    assert dict(state.traffic) == {"2": 100} and state.deployed == ("2",)
    with capsys.disabled():
        print(
            f"\n[measure] deployment pipeline (smoke-test endpoint + 100%): {churn['deploy_seconds']:.1f} s"
        )


@pytest.fixture(scope="module")
def pubsub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """The Pub/Sub emulator's host (installed with google-cloud-cli), or None."""
    from stack.emulators import start_pubsub_emulator

    emulator = start_pubsub_emulator(tmp_path_factory.mktemp("pubsub"))
    if emulator is None:
        yield None
        return
    try:
        yield emulator.host
    finally:
        emulator.stop()


def test_monitoring_reads_the_serving_records_and_alerts_on_drift(
    churn: dict[str, Any], run: Any, vertex: Vertex, pubsub: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    calm = put(vertex.uri("serving/calm.jsonl"), generated(300, seed=7).drop(columns=["target"]), "jsonl")
    ok = run("monitoring", model_name="churn", serving_uri=calm, alerts_topic="")
    assert ok.ok and ok.outputs == {"drift": False, "drifted_features": [], "published": False}, ok.reason

    # Drifted traffic to the endpoint's :predict; the serving process records it.
    endpoint = backends.endpoint("churn").describe().resource_name
    drifted = generated(300, seed=8, shift=1.5, plan_mix=(0.1, 0.1, 0.8)).drop(columns=["target"])
    for chunk in range(0, 300, 100):
        body = {"instances": drifted.iloc[chunk : chunk + 100].to_dict(orient="records")}
        answer = requests.post(f"{vertex.url}/v1/{endpoint}:predict", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
    records = f"{vertex.records_uri}/churn/"

    def recorded() -> int:
        uris = [u for u in storage_io.list_uris(records) if u.endswith(".jsonl")]
        return sum(len(storage_io.read_text(u).splitlines()) for u in uris)

    deadline = time.monotonic() + 30
    while recorded() < 300 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert recorded() >= 300

    topic = ""
    if pubsub is not None:
        from google.cloud import pubsub_v1

        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub)  # the task inherits it
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic_path = publisher.create_topic(name=publisher.topic_path("local-project", "drift-alerts")).name
        sub = subscriber.create_subscription(
            name=subscriber.subscription_path("local-project", "drift-alerts-test"), topic=topic_path
        ).name
        topic = "drift-alerts"
    bad = run("monitoring", model_name="churn", alerts_topic=topic)  # serving_uri empty: the records
    assert bad.ok, (bad.failed_task, bad.reason)
    assert bad.outputs["drift"] is True and set(bad.outputs["drifted_features"]) >= {"usage", "plan"}
    if pubsub is None:
        pytest.skip(
            "drift found in the serving records; the Pub/Sub emulator (google-cloud-cli) is not installed, so publishing the alert is not checked"
        )
    assert bad.outputs["published"] is True
    pulled = subscriber.pull(request={"subscription": sub, "max_messages": 5}, timeout=30)
    (message,) = pulled.received_messages
    alert = json.loads(message.message.data)
    from events.schemas import drift_alert_problems

    assert drift_alert_problems(alert) == [] and alert["alert_id"] == bad.outputs["alert_id"]
    assert alert["model"] == "churn" and {f["feature"] for f in alert["features"]} >= {"usage", "plan"}
    assert dict(message.message.attributes)["model"] == "churn"


def test_batch_prediction(churn: dict[str, Any], run: Any, vertex: Vertex) -> None:
    data = put(vertex.uri("scoring/today.jsonl"), generated(300, seed=9).drop(columns=["target"]), "jsonl")
    scored = run("batch_prediction", model_name="churn", data_uri=data)
    assert scored.ok and scored.outputs["output_uri"] == data + ".predictions.jsonl", scored.reason
    lines = storage_io.read_text(scored.outputs["output_uri"]).splitlines()
    assert len(lines) == 300 and {"prediction", "probability"} <= set(json.loads(lines[0]))


def test_cli_run_reports_the_failed_task_and_exits_non_zero(
    vertex: Vertex, templates: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "few.csv"
    generated(5, seed=1).to_csv(data, index=False)
    args = ["--param", f"data_uri={data}", "--param", "model_name=churn", "--param", "min_rows=10"]
    code = main(["run", "training", "--local", "--templates", str(templates), *args,
                 "--pipeline-root", str(tmp_path / "root")])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "[ 1] train-and-register" in captured.out
    assert "training: FAILED" in captured.err and "at task 'train-and-register'" in captured.err
    assert "too few rows: 5 < min_rows 10" in captured.err
    assert main(["run", "training", "--local", "--templates", str(templates), "--param", "min_rows=ten"]) == 2
    assert "not a valid int" in capsys.readouterr().err
