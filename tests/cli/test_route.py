"""``mlops-events route``: the decision as JSON, and its exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_cli.main import main
from tests import samples

DATA = samples.DATA
CONFORMANCE = Path(__file__).resolve().parents[1] / "data" / "conformance" / "google-cloudevents"


def route(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["route", *args, "--json", "--dry-run", "--var", "DATA_BUCKET=demo-data"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {}


def test_launch_is_printed_with_event_fields_job_id_and_labels(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = route(capsys, str(DATA / "storage-finalized.json"))
    assert code == 0
    assert doc["decision"] == "launch"
    assert doc["event"]["kind"] == "storage.object.finalized"
    assert doc["event"]["bucket"] == "demo-data"
    assert doc["event"]["generation"] == 1714557492345678
    assert (doc["rule"], doc["pipeline"]) == ("new-training-data", "training")
    assert doc["job_id"].startswith("training-new-training-data-")
    assert doc["parameters"]["data_uri"] == "gs://demo-data/incoming/churn/2024-05-01.csv"
    assert doc["labels"]["mlops-rule"] == "new-training-data"
    assert doc["reason"].startswith("rule new-training-data matched")


def test_skip_exits_zero_with_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = route(capsys, str(DATA / "monitoring-incident-closed.json"))
    assert code == 0
    assert doc["decision"] == "skip"
    assert doc["job_id"] is None
    assert "state 'closed' is not open" in doc["reason"]


def test_reject_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = route(capsys, str(DATA / "malformed" / "pubsub-bad-base64.json"))
    assert code == 1
    assert doc["decision"] == "reject"
    assert "base64" in doc["reason"]


def test_binary_body_needs_type_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    body = CONFORMANCE / "testdata/google/events/cloud/storage/v1/StorageObjectData-simple.json"
    code, doc = route(capsys, str(body))
    assert code == 1
    assert "type" in doc["reason"]
    code, doc = route(
        capsys,
        str(body),
        "--type",
        "google.cloud.storage.object.v1.finalized",
        "--source",
        "//storage.googleapis.com/projects/_/buckets/sample-bucket",
    )
    assert code == 0
    assert doc["event"]["generation"] == 1587627537231057
    assert doc["decision"] == "skip"


def test_usage_errors_exit_two(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["route", str(tmp_path / "missing.json")]) == 2
    bad_rules = tmp_path / "rules.yaml"
    bad_rules.write_text("rules:\n- name: x\n  on: nothing\n  skip: y\n")
    assert main(["route", str(DATA / "run-request.json"), "--config", str(bad_rules)]) == 2
    assert "rule x: on: 'nothing' is not an event kind" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["route"])
    assert info.value.code == 2


@pytest.mark.slow
def test_console_script_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("mlops-events")
    result = subprocess.run(
        [str(exe), "route", str(DATA / "run-request.json"), "--json"],
        capture_output=True,
        text=True,
        env={"DATA_BUCKET": "demo-data", "PATH": ""},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pipeline"] == "training"
