"""The background worker of the local launcher: ``python -m pipelines.launch.local_worker JOB_DIR``.

Runs the job's compiled template under ``kfp.local`` and records progress in ``status.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from pipelines.launch.local import write_json


def run_job(job_dir: Path) -> int:
    request: dict[str, Any] = json.loads((job_dir / "request.json").read_text(encoding="utf-8"))
    status: dict[str, Any] = {"state": "RUNNING", "started_at": time.time(), "pid": os.getpid()}
    write_json(job_dir / "status.json", status)
    try:
        from pipelines.local_run import run_pipeline

        result = run_pipeline(
            request["pipeline"],
            request["parameters"],
            request["pipeline_root"],
            template_dir=str(Path(request["template"]).parent),  # the same compiled template Vertex gets
            echo=lambda line: _progress(job_dir, status, line),
        )
        status.update(
            state="SUCCEEDED" if result.ok else "FAILED",
            outputs=result.outputs,
            error=result.reason,
            failed_task=result.failed_task,
            tasks={t.name: {"status": t.status, "seconds": round(t.seconds, 2)} for t in result.tasks},
        )
    except Exception as exc:  # the worker's whole job is to record failures, whatever they are
        status.update(state="FAILED", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    status["finished_at"] = time.time()
    write_json(job_dir / "status.json", status)
    return 0 if status["state"] == "SUCCEEDED" else 1


def _progress(job_dir: Path, status: dict[str, Any], line: str) -> None:
    status.setdefault("progress", []).append(line)
    write_json(job_dir / "status.json", status)


if __name__ == "__main__":
    sys.exit(run_job(Path(sys.argv[1])))
