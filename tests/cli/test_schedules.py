"""``mlops-events schedules``: each schedule with its next fire times (its zone and UTC), the run
request it publishes, the daylight-saving days it skips or doubles, and whether the rules launch it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
RULES = """
version: 1
rules:
  - name: run-request
    on: run.request
    launch: {pipeline: "{pipeline}", parameters: "{parameters}", allow: [monitoring]}
schedules:
  - name: monitor-churn
    description: every 6 hours
    cron: "0 */6 * * *"
    pipeline: monitoring
    parameters: {model_name: churn, alerts_topic: "${ALERTS_TOPIC:-alerts}"}
  - name: paris-night
    cron: "30 2 * * *"
    time_zone: Europe/Paris
    pipeline: batch_prediction
    parameters: {model_name: churn, data_uri: "gs://${DATA_BUCKET}/score/"}
"""


TEMPLATES: list[str] = []  # compiled once per module (else every call compiles the pipelines first)


@pytest.fixture(scope="module", autouse=True)
def templates(tmp_path_factory: pytest.TempPathFactory) -> None:
    from pipelines.compile import compile_all

    out = tmp_path_factory.mktemp("templates")
    compile_all(out)
    TEMPLATES[:] = [str(out)]


@pytest.fixture
def rules_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ALERTS_TOPIC", "DATA_BUCKET", "MLOPS_CONFIG", "RUN_REQUESTS_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def test_the_listing_names_fire_times_in_the_zone_and_utc(
    rules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "schedules",
            "--templates",
            TEMPLATES[0],
            "--config",
            str(rules_file),
            "--after",
            "2026-03-28T00:00:00Z",
            "--count",
            "2",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 1  # paris-night's pipeline is not allowed by the run-request rule
    assert out == [
        "monitor-churn: 0 */6 * * * (UTC) -> monitoring",
        "  every 6 hours",
        '  publishes: {"idempotency_key": "monitor-churn-<fire time, UTC>", "parameters": '
        '{"alerts_topic": "alerts", "model_name": "churn"}, "pipeline": "monitoring", '
        '"requested_by": "schedule monitor-churn"}',
        "  next: 2026-03-28 06:00 UTC (+0000)  = 2026-03-28T06:00:00Z",
        "  next: 2026-03-28 12:00 UTC (+0000)  = 2026-03-28T12:00:00Z",
        "  routing: launches monitoring",
        "paris-night: 30 2 * * * (Europe/Paris) -> batch_prediction",
        '  publishes: {"idempotency_key": "paris-night-<fire time, UTC>", "parameters": '
        '{"data_uri": "gs://${DATA_BUCKET}/score/", "model_name": "churn"}, "pipeline": "batch_prediction", '
        '"requested_by": "schedule paris-night"}',
        "  next: 2026-03-28 02:30 CET (+0100)  = 2026-03-28T01:30:00Z",
        "  next: 2026-03-30 02:30 CEST (+0200)  = 2026-03-30T00:30:00Z",
        "  daylight saving: 2026-03-29 02:30 does not exist in Europe/Paris: no fire",
        "  daylight saving: 2026-10-25 02:30 occurs twice in Europe/Paris: fires at 00:30Z and 01:30Z",
        "  daylight saving: 2027-03-28 02:30 does not exist in Europe/Paris: no fire",  # the next 366 days
        "  routing: WOULD NOT LAUNCH: its run request on topic 'run-requests' would not launch "
        "batch_prediction: reject (pipeline 'batch_prediction' is not allowed by rule run-request "
        "(allowed: monitoring))",
    ]


def test_json_gives_each_fire_its_idempotency_key(
    rules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["schedules", "--templates", TEMPLATES[0], "--config", str(rules_file), "--after", "2026-10-24T12:00:00Z", "--count", "3", "--json",
         "--var", "DATA_BUCKET=prod-data", "--topic", "mlops-run-requests"]
    )  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["topic"] == "mlops-run-requests"
    monitor, paris = doc["schedules"]
    assert monitor["launches"] and monitor["problem"] is None
    assert paris["parameters"]["data_uri"] == "gs://prod-data/score/"
    assert paris["next_fires"] == [
        {"local": "2026-10-25T02:30:00+02:00", "utc": "2026-10-25T00:30:00Z",
         "idempotency_key": "paris-night-2026-10-25T00:30:00Z"},
        {"local": "2026-10-25T02:30:00+01:00", "utc": "2026-10-25T01:30:00Z",
         "idempotency_key": "paris-night-2026-10-25T01:30:00Z"},
        {"local": "2026-10-26T02:30:00+01:00", "utc": "2026-10-26T01:30:00Z",
         "idempotency_key": "paris-night-2026-10-26T01:30:00Z"},
    ]  # fmt: skip
    assert paris["run_request"]["requested_by"] == "schedule paris-night"
    assert not paris["launches"] and "not allowed by rule run-request" in paris["problem"]


def test_the_demo_schedule_launches(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "schedules",
            "--templates",
            TEMPLATES[0],
            "--config",
            str(ROOT / "demo" / "rules.yaml"),
            "--count",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("monitor-churn: 0 */6 * * * (UTC) -> monitoring")
    assert "routing: launches monitoring" in out


def test_no_schedules_and_bad_ones(rules_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedules"]) == 0
    assert capsys.readouterr().out == "default rules: no schedules\n"
    rules_file.write_text(RULES.replace('cron: "30 2 * * *"', 'cron: "30 2 * *"'))
    assert main(["schedules", "--templates", TEMPLATES[0], "--config", str(rules_file)]) == 2
    err = capsys.readouterr().err
    assert "schedule paris-night: cron '30 2 * *': expected five fields" in err
    assert (
        main(
            [
                "schedules",
                "--templates",
                TEMPLATES[0],
                "--config",
                str(rules_file),
                "--after",
                "2026-01-01T00:00:00",
            ]
        )
        == 2
    )


def test_fire_needs_a_running_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedules", "fire", "monitor-churn", "--state-dir", str(tmp_path)]) == 2
    assert "no local stack is running" in capsys.readouterr().err


def test_fire_at_needs_a_time_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedules", "fire", "x", "--at", "2026-12-02T00:00:00", "--state-dir", str(tmp_path)]) == 2
    assert "--at '2026-12-02T00:00:00': give a time zone" in capsys.readouterr().err
