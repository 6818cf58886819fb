"""The background worker of the local launcher: ``python -m pipelines.launch.local_worker JOB_DIR``.

Runs the job's compiled template under ``kfp.local`` and records progress in ``status.json``.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from pipelines.launch.local import write_json


def run_job(job_dir: Path) -> int:
    request: dict[str, Any] = json.loads((job_dir / "request.json").read_text(encoding="utf-8"))
    status: dict[str, Any] = {"state": "RUNNING", "started_at": time.time(), "pid": _pid()}
    write_json(job_dir / "status.json", status)
    try:
        from pipelines.local_run import run_template

        result = run_template(
            Path(request["template"]),
            request["parameters"],
            pipeline_root=Path(request["pipeline_root"]),
            enable_caching=request.get("enable_caching"),
            on_progress=lambda task, state: _progress(job_dir, status, task, state),
        )
        status.update(state="SUCCEEDED" if result.ok else "FAILED", outputs=result.outputs, error=result.error)
        if result.failed_task:
            status["failed_task"] = result.failed_task
    except Exception as exc:  # the worker's whole job is to record failures, whatever they are
        status.update(state="FAILED", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    status["finished_at"] = time.time()
    write_json(job_dir / "status.json", status)
    return 0 if status["state"] == "SUCCEEDED" else 1


def _progress(job_dir: Path, status: dict[str, Any], task: str, state: str) -> None:
    status.setdefault("tasks", {})[task] = state
    write_json(job_dir / "status.json", status)


def _pid() -> int:
    import os

    return os.getpid()


if __name__ == "__main__":
    sys.exit(run_job(Path(sys.argv[1])))
