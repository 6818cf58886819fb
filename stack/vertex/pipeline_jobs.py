"""PipelineService: pipeline jobs created, listed, cancelled, and run by ``kfp.local`` workers.

A job moves through Vertex's states: PENDING when created (and while it waits for a worker slot),
RUNNING once its worker started, then SUCCEEDED or FAILED; ``cancel`` makes it CANCELLING and,
once its worker is stopped, CANCELLED. Each job has a directory (``<state>/<job name>/``) with
``run.json`` (what the worker runs), ``progress.json`` (what it reports) and ``worker.log``.

The job's pipeline root (``runtimeConfig.gcsOutputDirectory``, else the template's
``defaultPipelineRoot``; ``gs://`` as Vertex requires) is mapped to a local directory,
``<state>/pipeline-root/<bucket>/<path>/<project number>/<job id>``: kfp.local writes local files.
With ``execute="none"`` a job is recorded and moves straight to SUCCEEDED without running.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Any, Final, Literal

from google.cloud import aiplatform_v1 as v1
from google.protobuf import empty_pb2, json_format

from stack.vertex import job_progress, parameters, processes, protos
from stack.vertex.context import Context
from stack.vertex.errors import already_exists, failed_precondition, invalid_argument, not_found
from stack.vertex.filters import compile_filter, page
from stack.vertex.names import numeric_id, write_atomic

Execute = Literal["kfp-local", "none"]

_JOB_ID: Final = re.compile(r"^[a-z][-a-z0-9]{0,127}$")
_STOPPED: Final = "the emulator stopped while the job ran"
_WORKER: Final = "stack.vertex.runner"
S = v1.PipelineState


def _ts_text(ts: Any) -> str | None:
    return ts.ToJsonString() if ts.seconds or ts.nanos else None


_FIELDS: Final = {
    "display_name": lambda j: j.display_name,
    "state": lambda j: S(j.state).name,
    "pipeline_name": lambda j: (
        j.pipeline_spec["pipelineInfo"]["name"] if "pipelineInfo" in j.pipeline_spec else ""
    ),
    "create_time": lambda j: _ts_text(j.create_time),
    "update_time": lambda j: _ts_text(j.update_time),
    "end_time": lambda j: _ts_text(j.end_time),
}


class PipelineJobs:
    def __init__(self, ctx: Context, execute: Execute = "kfp-local", max_parallel: int = 4) -> None:
        self.ctx = ctx
        self.execute = execute
        self.max_parallel = max_parallel
        self._jobs: dict[str, Any] = {}  # name -> PipelineJob pb
        self._queue: list[str] = []  # PENDING jobs waiting for a worker slot, oldest first
        self._workers: dict[str, Any] = {}  # name -> Popen
        self._cancelled: set[str] = set()
        self._mtimes: dict[str, float] = {}
        self._stopping = False

    # --- state on disk ----------------------------------------------------------------------

    def job_dir(self, name: str) -> Path:
        return self.ctx.state_dir / name

    def _save(self, job: Any) -> None:
        self.ctx.store.save(job.name, job)

    def load(self) -> None:
        """Reload every job. A job that was running when the emulator stopped has failed (its
        worker, if still there, is stopped); a job still waiting for a worker is queued again."""
        for name, job in self.ctx.store.load_all("projects/*/locations/*/pipelineJobs/*", protos.PipelineJob):
            self._jobs[name] = job
            if job.state in job_progress.TERMINAL:
                continue
            pid_file = self.job_dir(name) / "worker.pid"
            if pid_file.exists():
                processes.stop_stale(int(pid_file.read_text()), _WORKER)
            if job.state == S.PIPELINE_STATE_PENDING and not pid_file.exists():
                self._queue.append(name)
                continue
            self._refresh(job)
            if job.state not in job_progress.TERMINAL:
                cancelling = job.state == S.PIPELINE_STATE_CANCELLING
                job.state = S.PIPELINE_STATE_CANCELLED if cancelling else S.PIPELINE_STATE_FAILED
                if not cancelling:
                    job.error.code, job.error.message = 10, _STOPPED  # ABORTED
                job.end_time.CopyFrom(protos.timestamp())
                job.update_time.CopyFrom(protos.timestamp())
            self._save(job)
        self._start_queued()

    # --- the API ------------------------------------------------------------------------------

    def create(self, request: Any) -> Any:
        parent = self.ctx.parent(request.parent)
        job_id = request.pipeline_job_id or numeric_id()  # Vertex generates a numeric id
        if request.pipeline_job_id and not _JOB_ID.match(job_id):
            raise invalid_argument(
                f"Invalid pipeline_job_id {job_id!r}: it must match [a-z][-a-z0-9]{{0,127}}.",
                "pipeline_job_id",
            )
        job = protos.PipelineJob()
        job.CopyFrom(request.pipeline_job)
        spec = json_format.MessageToDict(job.pipeline_spec)
        if not (spec.get("root") or {}).get("dag"):
            raise invalid_argument(
                "pipeline_job.pipeline_spec has no root DAG (root.dag).", "pipeline_job.pipeline_spec"
            )
        if job.runtime_config.parameters:
            raise invalid_argument(
                "runtime_config.parameters is the KFP v1 schema; send runtime_config.parameter_values.",
                "pipeline_job.runtime_config.parameters",
            )
        values = {k: json_format.MessageToDict(v) for k, v in job.runtime_config.parameter_values.items()}
        arguments, problems = parameters.resolve(spec, values)
        if problems:
            raise invalid_argument(
                "Invalid runtime parameters: " + "; ".join(problems),
                "pipeline_job.runtime_config.parameter_values",
            )
        root_uri = job.runtime_config.gcs_output_directory or str(spec.get("defaultPipelineRoot") or "")
        if not root_uri.startswith("gs://"):
            raise invalid_argument(
                f"The pipeline root must be a gs:// URI (runtime_config.gcs_output_directory or the template's "
                f"defaultPipelineRoot), got {root_uri or 'nothing'!r}.",
                "pipeline_job.runtime_config.gcs_output_directory",
            )
        name = f"{parent.name}/pipelineJobs/{job_id}"
        with self.ctx.lock:
            if name in self._jobs:
                raise already_exists(f"PipelineJob {name} already exists.")
            now = protos.timestamp()
            job.name = name
            job.display_name = job.display_name or job_id
            job.create_time.CopyFrom(now)
            job.update_time.CopyFrom(now)
            job.state = S.PIPELINE_STATE_PENDING
            job.service_account = (
                job.service_account or f"{parent.number}-compute@developer.gserviceaccount.com"
            )
            for output_only in ("start_time", "end_time", "error", "job_detail"):
                job.ClearField(output_only)
            self._jobs[name] = job
            if self.execute == "none":
                job.state = S.PIPELINE_STATE_SUCCEEDED
                job.start_time.CopyFrom(now)
                job.end_time.CopyFrom(now)
            else:
                self._prepare(job, spec, arguments, root_uri, job_id, parent.number)
                self._queue.append(name)
            self._save(job)
            self._start_queued()
            return self._copy(job)

    def get(self, name: str) -> Any:
        with self.ctx.lock:
            return self._copy(self._find(name))

    def list(self, request: Any) -> Any:
        parent = self.ctx.parent(request.parent)
        keep = compile_filter(request.filter, _FIELDS, lambda j: j.labels)
        with self.ctx.lock:
            jobs = [j for n, j in self._jobs.items() if n.startswith(parent.name + "/")]
            for job in jobs:
                self._refresh(job)
            jobs = [j for j in jobs if keep(j)]
        key, reverse = self._order(request.order_by)
        jobs.sort(key=key, reverse=reverse)
        selected, token = page(jobs, request.page_size, request.page_token)
        response = v1.ListPipelineJobsResponse.pb()(next_page_token=token)
        for job in selected:
            if request.read_mask.paths:
                out = response.pipeline_jobs.add()
                request.read_mask.MergeMessage(job, out)
            else:
                response.pipeline_jobs.add().CopyFrom(job)
        return response

    def cancel(self, name: str) -> Any:
        with self.ctx.lock:
            job = self._find(name)
            if job.state in job_progress.TERMINAL or job.state == S.PIPELINE_STATE_CANCELLING:
                raise failed_precondition(
                    f"Cannot cancel PipelineJob {job.name}: it is already {S(job.state).name}."
                )
            self._cancelled.add(job.name)
            if job.name in self._queue:  # never started: nothing to stop
                self._queue.remove(job.name)
                job.state = S.PIPELINE_STATE_CANCELLED
                job.end_time.CopyFrom(protos.timestamp())
            else:
                job.state = S.PIPELINE_STATE_CANCELLING
                proc = self._workers.get(job.name)
                if proc is not None:
                    threading.Thread(target=processes.stop, args=(proc,), daemon=True).start()
            job.update_time.CopyFrom(protos.timestamp())
            self._save(job)
        return empty_pb2.Empty()

    def set_state(self, name: str, state: str) -> None:
        """Force a job's state (``PIPELINE_STATE_FAILED``...), for tests of what reads jobs."""
        with self.ctx.lock:
            job = self._find(name)
            job.state = S.__members__[state]
            if job.state in job_progress.TERMINAL:
                job.end_time.CopyFrom(protos.timestamp())
            job.update_time.CopyFrom(protos.timestamp())
            self._save(job)

    def created(self) -> tuple[Any, ...]:
        """Every job (copies), in creation order."""
        with self.ctx.lock:
            return tuple(self._copy(self._find(name)) for name in tuple(self._jobs))

    def forget_all(self) -> None:
        """Stop every worker and drop every job, from memory and from the state directory."""
        self.stop()
        with self.ctx.lock:
            for name in self._jobs:
                self.ctx.store.delete(name)
                shutil.rmtree(self.job_dir(name), ignore_errors=True)
            self._jobs.clear()
            self._cancelled.clear()
            self._mtimes.clear()
            self._stopping = False

    def stop(self) -> None:
        with self.ctx.lock:
            self._stopping = True
            workers = list(self._workers.values())
            self._queue.clear()
        for proc in workers:
            processes.stop(proc)

    # --- running ------------------------------------------------------------------------------

    def _find(self, name: str) -> Any:
        job = self._jobs.get(self.ctx.canonical(name))
        if job is None:
            raise not_found(f"PipelineJob {name}")
        self._refresh(job)
        return job

    @staticmethod
    def _copy(job: Any) -> Any:
        out = protos.PipelineJob()
        out.CopyFrom(job)
        return out

    @staticmethod
    def _order(order_by: str) -> tuple[Any, bool]:
        text = order_by.strip() or "create_time desc"
        field, _, direction = text.partition(" ")
        if field not in ("create_time", "update_time", "end_time") or direction.strip() not in (
            "",
            "asc",
            "desc",
        ):
            raise invalid_argument(
                f"Unsupported order_by {order_by!r} (create_time, update_time, end_time [desc]).", "order_by"
            )
        return (lambda j: protos.seconds(getattr(j, field))), direction.strip() == "desc"

    def _prepare(
        self,
        job: Any,
        spec: dict[str, Any],
        arguments: dict[str, Any],
        root_uri: str,
        job_id: str,
        number: str,
    ) -> None:
        bucket_path = root_uri[len("gs://") :].strip("/")
        root = self.ctx.state_dir / "pipeline-root" / bucket_path / number / job_id
        run = {
            "pipeline_spec": spec,
            "arguments": arguments,
            "pipeline_root": str(root),
            "cache_root": str(self.ctx.state_dir / "kfp-cache"),
        }
        write_atomic(self.job_dir(job.name) / "run.json", json.dumps(run))

    def _start_queued(self) -> None:
        with self.ctx.lock:
            while self._queue and len(self._workers) < self.max_parallel:
                name = self._queue.pop(0)
                location = name.split("/")[3]
                job_dir = self.job_dir(name)
                proc = processes.spawn(
                    [sys.executable, "-m", _WORKER, str(job_dir)],
                    job_dir / "worker.log",
                    self.ctx.process_env(name, location),
                )
                (job_dir / "worker.pid").write_text(str(proc.pid))
                self._workers[name] = proc
                threading.Thread(target=self._reap, args=(name, proc), daemon=True).start()

    def _reap(self, name: str, proc: Any) -> None:
        code = proc.wait()
        with self.ctx.lock:
            self._workers.pop(name, None)
            job = self._jobs[name]
            self._refresh(job, final=True)
            if job.state not in job_progress.TERMINAL and name in self._cancelled:
                job.state = S.PIPELINE_STATE_CANCELLED
                job.end_time.CopyFrom(protos.timestamp())
            elif job.state not in job_progress.TERMINAL and self._stopping:
                job.state = S.PIPELINE_STATE_FAILED
                job.error.code, job.error.message = 10, _STOPPED  # ABORTED
                job.end_time.CopyFrom(protos.timestamp())
            elif job.state not in job_progress.TERMINAL:
                job.state = S.PIPELINE_STATE_FAILED
                tail = processes.log_tail(self.job_dir(name) / "worker.log")
                job.error.code = 13
                job.error.message = (
                    f"The pipeline worker exited with code {code} before the job finished:\n{tail}"
                )
                job.end_time.CopyFrom(protos.timestamp())
            self._save(job)
            if not self._stopping:
                self._start_queued()

    def _refresh(self, job: Any, final: bool = False) -> None:
        """Bring a running job up to date with its worker's progress."""
        if job.state in job_progress.TERMINAL:
            return
        path = self.job_dir(job.name) / "progress.json"
        try:
            mtime = path.stat().st_mtime
            if not final and self._mtimes.get(job.name) == mtime:
                return
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # no progress yet (or mid-rename): the job is as it was
        self._mtimes[job.name] = mtime
        cancelled = job.name in self._cancelled and (final or job.state == S.PIPELINE_STATE_CANCELLING)
        if job.state == S.PIPELINE_STATE_CANCELLING and not final:
            return
        job_progress.apply_progress(job, doc, cancelled=cancelled and final)
        if job.state in job_progress.TERMINAL or final:
            self._save(job)
