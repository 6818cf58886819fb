"""Launch semantics that cannot lose a run, against the Vertex AI emulator (which parses every body
with Google's protos), driven through the real functions-framework app and the CLI:

- a redelivered event whose job FAILED or was CANCELLED logs ``exists_failed`` as a WARNING that
  names ``mlops-events rerun JOB_ID`` (it used to be an INFO line like any duplicate);
- ``mlops-events rerun`` starts ``<id>-r2`` with the same parameters and labels plus
  ``mlops-attempt``; a second rerun while ``-r2`` runs starts nothing; the lineage joins them;
- a 409 whose status is ``ABORTED`` is transient: 20 of 20 launches are retried, none is counted
  as launched (issue 11: a fake answering ABORTED lost 20 of 20 launches); the emulator injects it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.runtime import reset_runtime
from tests import samples
from tests.function_env import set_function_env

PROJECT, REGION = "demo-project", "europe-west4"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.compile import compile_all

    out = tmp_path_factory.mktemp("templates")
    compile_all(out)
    return out


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from stack.vertex import VertexEmulator

    # execute="none": jobs are checked against their spec and recorded, not run (states are set).
    with VertexEmulator(tmp_path_factory.mktemp("vertex"), execute="none") as emu:
        yield emu


def _env(monkeypatch: pytest.MonkeyPatch, templates: Path, tmp_path: Path, endpoint: str) -> None:
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "GOOGLE_CLOUD_REGION": REGION,
        "DATA_BUCKET": "demo-data",
        "PIPELINE_ROOT": "gs://demo-data/pipeline-root",
        "VERTEX_API_ENDPOINT": endpoint,
        "MLOPS_TEMPLATES": str(templates),
        "MLOPS_DEAD_LETTER_DIR": str(tmp_path / "dead-letters"),
        "MLOPS_STATE_DIR": str(tmp_path / "state"),
        "MLOPS_LAUNCHER": "vertex",
        "MAX_EVENT_AGE_SECONDS": "0",
    }
    set_function_env(monkeypatch, env)


@pytest.fixture
def on_emulator(
    monkeypatch: pytest.MonkeyPatch, templates: Path, tmp_path: Path, emulator: Any
) -> Iterator[Any]:
    _env(monkeypatch, templates, tmp_path, emulator.url)
    yield emulator
    reset_runtime()


def _app() -> Any:
    from functions_framework import create_app

    return create_app("on_run_request", str(REPO / "functions" / "main.py"), "cloudevent").test_client()


def _deliver(app: Any, message_id: str, model: str = "churn") -> int:
    payload = {
        "pipeline": "training",
        "parameters": {"data_uri": f"gs://demo-data/incoming/{model}/a.csv", "model_name": model},
    }
    headers, body = samples.binary_request(
        samples.pubsub_event(payload, message_id=message_id, event_id=f"e-{message_id}")
    )
    status: int = app.post("/", data=body, headers=headers).status_code
    return status


def _log_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _client() -> Any:
    import os

    from stack.vertex_client import VertexClient

    return VertexClient(os.environ["VERTEX_API_ENDPOINT"], PROJECT, REGION)


def _job_name(job_id: str) -> str:
    return f"projects/{PROJECT}/locations/{REGION}/pipelineJobs/{job_id}"


@pytest.mark.parametrize("state", ["PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"])
def test_a_redelivered_event_whose_job_failed_says_so_and_names_the_rerun(
    on_emulator: Any, capsys: pytest.CaptureFixture[str], state: str
) -> None:
    app = _app()
    message_id = f"m-{state[-6:].lower()}"
    assert _deliver(app, message_id) == 200
    (first,) = [line for line in _log_lines(capsys.readouterr().out) if line.get("decision") == "launch"]
    assert first["status"] == "created" and first["severity"] == "INFO"
    job_id = first["job_id"]

    on_emulator.set_job_state(_job_name(job_id), state)
    assert _deliver(app, message_id) == 200  # a redelivery: same message, same job id
    (again,) = [line for line in _log_lines(capsys.readouterr().out) if line.get("decision") == "launch"]
    assert again["job_id"] == job_id and again["status"] == "exists_failed"
    assert again["severity"] == "WARNING"
    assert state in again["message"] and f"mlops-events rerun {job_id}" in again["message"]

    # A redelivery of an event whose job is fine stays the quiet duplicate it is.
    on_emulator.set_job_state(_job_name(job_id), "PIPELINE_STATE_RUNNING")
    assert _deliver(app, message_id) == 200
    (dup,) = [line for line in _log_lines(capsys.readouterr().out) if line.get("decision") == "launch"]
    assert dup["status"] == "already_exists" and dup["severity"] == "INFO"


def test_rerun_starts_a_second_attempt_once_with_the_same_parameters_and_labels(
    on_emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_cli.main import main
    from stack.lineage import EventNode, Lineage
    from stack.lineage_read import read_runs

    app = _app()
    assert _deliver(app, "m-rerun", model="fraud") == 200
    (line,) = [x for x in _log_lines(capsys.readouterr().out) if x.get("decision") == "launch"]
    job_id = line["job_id"]
    client = _client()
    first = client.get_job(job_id)

    assert main(["rerun", job_id]) == 0  # still SUCCEEDED (execute="none"): nothing to rerun
    assert "nothing to rerun" in capsys.readouterr().out
    on_emulator.set_job_state(_job_name(job_id), "PIPELINE_STATE_FAILED")
    assert main(["rerun", job_id, "--reason", "the data was fixed"]) == 0
    assert f"started {job_id}-r2 (attempt 2)" in capsys.readouterr().out

    second = client.get_job(f"{job_id}-r2")
    assert second["runtimeConfig"]["parameterValues"] == first["runtimeConfig"]["parameterValues"]
    assert second["runtimeConfig"]["gcsOutputDirectory"] == first["runtimeConfig"]["gcsOutputDirectory"]
    assert second["pipelineSpec"] == first["pipelineSpec"]
    assert second["labels"] == {**first["labels"], "mlops-attempt": "2", "mlops-first-attempt": job_id}
    assert "the data was fixed" in second["displayName"]

    # While -r2 runs, rerunning (the first id or -r2 itself) starts nothing.
    on_emulator.set_job_state(_job_name(f"{job_id}-r2"), "PIPELINE_STATE_RUNNING")
    for target in (job_id, f"{job_id}-r2"):
        assert main(["rerun", target]) == 0
        assert (
            f"{job_id}-r2 (attempt 2) is PIPELINE_STATE_RUNNING: nothing to rerun" in capsys.readouterr().out
        )
    attempts = client.list_jobs(f'labels.mlops-first-attempt="{job_id}"')
    assert [j["name"].rsplit("/", 1)[-1] for j in attempts] == [f"{job_id}-r2"]

    # -r2 failed too: the next rerun is -r3. The lineage shows the event's three attempts in order.
    on_emulator.set_job_state(_job_name(f"{job_id}-r2"), "PIPELINE_STATE_FAILED")
    assert main(["rerun", job_id]) == 0
    assert f"started {job_id}-r3 (attempt 3)" in capsys.readouterr().out
    lineage = Lineage(runs=read_runs(client, "training"))
    event = EventNode("e-m-rerun", "on_run_request", "run-request", "x", "launch", job_id=job_id)
    assert [(r.job_id, r.attempt) for r in lineage.runs_of_event(event)] == [
        (job_id, 1),
        (f"{job_id}-r2", 2),
        (f"{job_id}-r3", 3),
    ]


def test_rerun_of_an_unknown_job_or_a_bad_id_fails_naming_it(
    on_emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_cli.main import main

    assert main(["rerun", "training-no-such-job"]) == 1
    assert "no pipeline job 'training-no-such-job'" in capsys.readouterr().err
    assert main(["rerun", "Not_A_Job"]) == 1
    assert "is not a Vertex pipeline job id" in capsys.readouterr().err


# --- 409 ABORTED ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "launched"), [("ABORTED", False), ("ALREADY_EXISTS", True)])
def test_only_already_exists_means_launched_a_409_aborted_is_retried(
    monkeypatch: pytest.MonkeyPatch,
    templates: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    status: str,
    launched: bool,
) -> None:
    from stack.vertex import Faults, ephemeral_emulator

    # ABORTED: the emulator answers every create 409 ABORTED. ALREADY_EXISTS: a first delivery of
    # each event created its job, so the redelivery measured here gets 409 ALREADY_EXISTS.
    faults = Faults(rate=1.0, kinds=("aborted",)) if status == "ABORTED" else None
    with ephemeral_emulator(faults) as vertex:
        try:
            _env(monkeypatch, templates, tmp_path, vertex.url)
            app = _app()
            if launched:
                assert [_deliver(app, f"m-{status}-{i}", model=f"model{i}") for i in range(20)] == [200] * 20
                vertex.stats.reset()
                capsys.readouterr()
            answers = [_deliver(app, f"m-{status}-{i}", model=f"model{i}") for i in range(20)]
            lines = [x for x in _log_lines(capsys.readouterr().out) if x.get("decision") == "launch"]
        finally:
            reset_runtime()
        stats = vertex.stats
    assert stats.create_calls == 20
    if launched:  # ALREADY_EXISTS: a previous delivery created it; one GET says it did not fail
        assert answers == [200] * 20 and stats.conflicts == 20 and stats.get_calls == 20
        assert [x["status"] for x in lines] == ["already_exists"] * 20
    else:  # ABORTED: nothing was created; the platform must redeliver every one of them
        assert answers == [500] * 20 and stats.created == 0 and stats.get_calls == 0
        assert stats.faults == {"aborted": 20}
        assert [x["severity"] for x in lines] == ["WARNING"] * 20
        assert all("will be retried" in x["message"] and "409 ABORTED" in x["message"] for x in lines)
        assert not any(x.get("status") == "already_exists" for x in lines)
