"""``mlops-events up`` runs the production path: the functions launch pipeline jobs on the Vertex AI
emulator it started, whose tasks reach the stack's storage emulator; ``stack.json`` and ``status``
name the emulator; ``run --local`` uses the stack's emulators; ``down`` leaves nothing running,
even after the supervisor was killed with -9 while a pipeline worker ran."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from stack.config import StackConfig, pid_alive
from stack.dispatch import publish
from stack.runs import router_filter
from stack.supervise import start_detached
from stack.teardown import down, stack_processes
from stack.vertex_client import VertexClient, for_stack
from tests.waiting import until

pytestmark = pytest.mark.slow


def _job(client: VertexClient, data_uri: str, states: tuple[str, ...]) -> dict[str, Any] | None:
    for job in client.list_jobs(router_filter("training")):
        params = (job.get("runtimeConfig") or {}).get("parameterValues") or {}
        if params.get("data_uri") == data_uri and job.get("state") in states:
            return job
    return None


def _request(info: dict[str, Any], data_uri: str) -> None:
    payload = {"pipeline": "training", "parameters": {"data_uri": data_uri, "model_name": "churn"}}
    publish(info, "run-requests", json.dumps(payload).encode())


@pytest.mark.timeout(400)
def test_up_launches_on_the_vertex_emulator_and_down_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_cli.cmd_stack import status_document
    from mlops_cli.main import main

    root = (tmp_path / "stack").resolve()
    info = start_detached(
        StackConfig(state_dir=root, pubsub="embedded"),
        ["up", "--state-dir", str(root), "--pubsub", "embedded"],
    )
    try:
        vertex = info["vertex"]
        assert pid_alive(int(vertex["pid"])) and vertex["state_dir"] == str(root / "vertex")
        assert vertex["env"]["STORAGE_EMULATOR_HOST"] == info["storage"]["host"]
        assert vertex["env"]["MLOPS_STAGING_BUCKET"] == "gs://mlops-staging"
        assert vertex["env"]["MLOPS_SERVING_RECORDS_URI"] == "gs://mlops-serving-records"
        assert (
            info["env"]["MLOPS_LAUNCHER"] == "vertex" and info["env"]["VERTEX_API_ENDPOINT"] == vertex["url"]
        )
        assert "prediction" not in info
        status = status_document(root)
        assert status["running"] and status["vertex"]["url"] == vertex["url"]

        # A run request -> on_run_request -> pipelineJobs.create on the emulator -> its task reads
        # the stack's storage emulator (not Cloud Storage: no credentials here) and fails on the
        # missing object, as on Vertex.
        client = for_stack(info)
        missing = "gs://mlops-data/incoming/churn/missing.csv"
        _request(info, missing)
        failed = until(
            "the failed job", lambda: _job(client, missing, ("PIPELINE_STATE_FAILED",)), timeout=120
        )
        assert "does not exist" in failed["error"]["message"], failed["error"]
        assert failed["labels"]["mlops-rule"] == "run-request"
        assert [r["state"] for r in status_document(root)["runs"]] == ["FAILED"]

        # `run --local` with the stack up uses the stack's emulators (here its registry: the model
        # does not exist there), not emulators of its own, and not Google Cloud.
        code = main(
            ["run", "evaluation", "--local", "--state-dir", str(root), "--runs-dir", str(tmp_path / "runs"),
             "--param", "model_name=nobody", "--param", f"data_uri={missing}"]
        )  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 1 and f"using the local stack running from {root}" in out
        assert "nobody" in err and "Credentials" not in err, err
        assert not (tmp_path / "runs" / "vertex").exists()

        # A job that is running when the supervisor is killed with -9 ...
        running = "gs://mlops-data/incoming/churn/also-missing.csv"
        _request(info, running)
        until("a running job", lambda: _job(client, running, ("PIPELINE_STATE_RUNNING",)), timeout=120)
        assert len(stack_processes(root)) >= 7  # emulators, functions, the job's worker
        os.kill(int(info["pid"]), signal.SIGKILL)
        os.waitpid(int(info["pid"]), 0)  # our child (start_detached): reap it
    finally:
        stopped = down(root, echo=lambda _: None)
    assert stopped
    assert not (root / "stack.json").exists()
    assert stack_processes(root) == [], [
        Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in stack_processes(root)
    ]
    assert not pid_alive(int(info["vertex"]["pid"]))
