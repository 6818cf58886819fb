"""Local launcher: runs the same compiled template under ``kfp.local`` in a background worker.

Each job is a directory ``<state>/jobs/<job_id>/``; creating it with ``mkdir`` is atomic, so the
job id is the idempotency key exactly as on Vertex (a second launch answers ``already_exists``).
The worker is a separate process (``python -m pipelines.launch.local_worker``) so the function
that launched it stays small and fast, and kfp's process-global ``kfp.local.init`` state never
mixes two runs. The worker records ``status.json`` (state, tasks, outputs, error) as it goes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from events.decision import RunRequest
from pipelines.launch.base import LaunchResult, Templates

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED"})


def write_json(path: Path, data: Any) -> None:
    """Write through a temporary file and rename, so readers never see half a document."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_status(job_dir: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((job_dir / "status.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"state": "PENDING"}
    return data


class LocalLauncher:
    name = "local"

    def __init__(self, state_dir: Path, templates: Templates, *, pipeline_root: Path | None = None) -> None:
        self.jobs = state_dir / "jobs"
        self.templates = templates
        self.pipeline_root = pipeline_root or state_dir / "pipeline-root"

    def launch(self, request: RunRequest) -> LaunchResult:
        template = self.templates.path(request.pipeline)  # a missing template is a permanent error
        self.jobs.mkdir(parents=True, exist_ok=True)
        job_dir = self.jobs / request.job_id
        try:
            job_dir.mkdir()
        except FileExistsError:
            return LaunchResult(request.job_id, "already_exists", str(job_dir), read_status(job_dir))
        write_json(
            job_dir / "request.json",
            {
                "job_id": request.job_id,
                "pipeline": request.pipeline,
                "template": str(template),
                "template_digest": request.template_digest,
                "parameters": dict(request.parameters),
                "labels": dict(request.labels),
                "rule": request.rule,
                "enable_caching": request.enable_caching,
                "pipeline_root": str(self.pipeline_root / request.job_id),
            },
        )
        write_json(job_dir / "status.json", {"state": "PENDING", "tasks": {}})
        with open(job_dir / "worker.log", "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "pipelines.launch.local_worker", str(job_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the function's request; `down` stops the group
                cwd=os.getcwd(),
            )
        return LaunchResult(request.job_id, "created", str(job_dir))
