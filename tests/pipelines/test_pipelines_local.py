"""End to end under kfp.local (SubprocessRunner, no venv) against the local backends: the
registry and endpoints in a fake-gcs-server bucket, datasets in gs:// and local paths, alerts
in the file publisher. Each task is a real subprocess, as on Vertex.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.main import main
from pipelines import storage_io
from pipelines.local_run import RunResult, run_pipeline
from tests.pipelines.datasets import breast_cancer, generated

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.compile import compile_all

    out = tmp_path_factory.mktemp("templates")
    compile_all(out)
    return out


@pytest.fixture(autouse=True)
def _templates(templates: Path) -> None:
    global TEMPLATES
    TEMPLATES = templates


TEMPLATES: Path


def run(name: str, root: Path, **params: Any) -> RunResult:
    return run_pipeline(name, params, root, template_dir=TEMPLATES, echo=lambda _: None)


def put(uri: str, frame: Any, fmt: str = "csv") -> str:
    from pipelines.components.data import to_bytes

    storage_io.write_bytes(uri, to_bytes(frame, fmt))
    return uri


def test_first_model_becomes_champion_and_a_worse_one_does_not(gcs_env: str, tmp_path: Path) -> None:
    from pipelines import backends

    data = put(f"gs://{gcs_env}/incoming/cancer/part-1.csv", breast_cancer())
    first = run("training", tmp_path, data_uri=data, model_name="cancer", trigger="gs://b/o#1")
    assert first.ok, (first.failed_task, first.reason)
    assert [t.name for t in first.tasks] == ["train-and-register"]  # one Vertex task
    assert first.outputs["promoted"] is True and first.outputs["version"] == "1"
    assert first.outputs["metrics"]["roc_auc"] > 0.95

    # Crippled hyperparameters: a one-tree stump scores worse on the same holdout.
    worse = run(
        "training",
        tmp_path,
        data_uri=data,
        model_name="cancer",
        model_family="random_forest",
        hyperparameters={"n_estimators": 1, "max_depth": 1},
    )
    assert worse.ok, (worse.failed_task, worse.reason)
    assert worse.outputs["promoted"] is False
    assert "does not beat champion v1" in worse.outputs["reasons"][0]

    registry = backends.model_registry()
    champion, challenger = registry.get("cancer", "champion"), registry.get("cancer", "challenger")
    assert champion is not None and champion.version == "1"
    assert challenger is not None and challenger.version == "2"
    assert challenger.labels["model_family"] == "random_forest" and challenger.labels["trigger"] == "manual"
    meta = json.loads(storage_io.read_text(champion.artifact_uri + "/metadata.json"))
    assert meta["data_uris"] == [data] and meta["metrics"]["roc_auc"] == first.outputs["metrics"]["roc_auc"]


@pytest.mark.parametrize(
    ("case", "failed_task", "message"),
    [
        ("missing_label", "DataValidationError", "label column 'target' is missing"),
        ("wrong_types", "DataValidationError", "column 'mean area' mixes numbers and text"),
        ("empty_file", "DataError", "is empty (0 rows)"),
    ],
)
def test_bad_data_fails_the_run_with_a_report(
    gcs_env: str, tmp_path: Path, case: str, failed_task: str, message: str
) -> None:
    frame = breast_cancer()
    if case == "missing_label":
        frame = frame.drop(columns=["target"])
    elif case == "wrong_types":
        frame["mean area"] = frame["mean area"].astype(object)
        frame.loc[:4, "mean area"] = "1001 sq px"
    path = tmp_path / f"{case}.csv"
    if case == "empty_file":
        path.write_text("")
    else:
        frame.to_csv(path, index=False)
    result = run("training", tmp_path / "root", data_uri=str(path), model_name="cancer")
    assert not result.ok
    assert result.failed_task == "train-and-register"
    assert (result.reason or "").startswith(failed_task) and message in (result.reason or "")
    assert [t.status for t in result.tasks][-1] == "FAILURE"


def test_drift_alert_and_canary_deployment_lifecycle(
    gcs_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines import backends

    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    train_uri = put(f"gs://{gcs_env}/incoming/churn/train.parquet", generated(600, seed=1), "parquet")
    trained = run(
        "training",
        tmp_path / "root",
        data_uri=train_uri,
        model_name="churn",
        model_family="logistic_regression",
    )
    assert trained.ok and trained.outputs["promoted"], trained.reason

    calm = put(f"gs://{gcs_env}/serving/calm.jsonl", generated(300, seed=7).drop(columns=["target"]), "jsonl")
    drifted = put(
        f"gs://{gcs_env}/serving/drifted.jsonl",
        generated(300, seed=8, shift=1.5, plan_mix=(0.1, 0.1, 0.8)).drop(columns=["target"]),
        "jsonl",
    )
    ok = run(
        "monitoring", tmp_path / "root", model_name="churn", serving_uri=calm, alerts_topic="drift-alerts"
    )
    assert ok.ok and ok.outputs == {"drift": False, "drifted_features": [], "published": False}
    alerts_file = tmp_path / "state" / "pubsub" / "drift-alerts.jsonl"
    assert not alerts_file.exists()

    bad = run(
        "monitoring", tmp_path / "root", model_name="churn", serving_uri=drifted, alerts_topic="drift-alerts"
    )
    assert bad.ok, bad.reason
    assert bad.outputs["published"] is True and bad.outputs["drifted_features"] == ["usage", "plan"]
    (envelope,) = [json.loads(line) for line in alerts_file.read_text().splitlines()]
    alert = json.loads(base64.b64decode(envelope["message"]["data"]))
    from events.schemas import drift_alert_problems

    assert drift_alert_problems(alert) == []
    assert alert["model"] == "churn" and {f["feature"] for f in alert["features"]} == {"usage", "plan"}
    assert (
        Path(alert["report_uri"]).is_file() and Path(alert["report_uri"]).with_name("report_html").is_file()
    )

    # Deploy the champion (first deployment: 100%), then a second version whose smoke test fails.
    deployed = run("deployment", tmp_path / "root", model_name="churn")
    assert deployed.ok and deployed.outputs["traffic"] == {"1": 100}, deployed.reason
    again = run(
        "training", tmp_path / "root", data_uri=train_uri, model_name="churn", model_family="random_forest"
    )
    assert again.ok and again.outputs["version"] == "2"
    no_features = tmp_path / "smoke.csv"
    no_features.write_text("colour,size\nred,1\n")
    rolled = run(
        "deployment",
        tmp_path / "root",
        model_name="churn",
        version="2",
        smoke_test_uri=str(no_features),
        canary_percent=20,
    )
    assert not rolled.ok and rolled.failed_task == "deploy-model"
    assert "rolled back v2 of churn: smoke test failed" in (rolled.reason or "")
    assert "instance lacks feature(s)" in (rolled.reason or "")
    state = backends.endpoint("churn").describe()
    assert dict(state.traffic) == {"1": 100} and "2" not in state.deployed

    scored = run("batch_prediction", tmp_path / "root", model_name="churn", data_uri=calm)
    assert scored.ok and scored.outputs["output_uri"] == calm + ".predictions.jsonl"
    lines = storage_io.read_text(scored.outputs["output_uri"]).splitlines()
    assert len(lines) == 300 and {"prediction", "probability"} <= set(json.loads(lines[0]))


def test_cli_run_reports_the_failed_task_and_exits_non_zero(
    gcs_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "few.csv"
    generated(5, seed=1).to_csv(data, index=False)
    code = main(
        [
            "run",
            "training",
            "--local",
            "--param",
            f"data_uri={data}",
            "--param",
            "model_name=churn",
            "--param",
            "min_rows=10",
            "--pipeline-root",
            str(tmp_path / "root"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "[ 1] train-and-register" in captured.out
    assert "training: FAILED" in captured.err and "at task 'train-and-register'" in captured.err
    assert "too few rows: 5 < min_rows 10" in captured.err
    assert main(["run", "training", "--local", "--param", "min_rows=ten"]) == 2
    assert "not a valid int" in capsys.readouterr().err
