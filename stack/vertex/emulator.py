"""``VertexEmulator``: the Vertex AI v1 REST API on one local port, its state in a directory.

    with VertexEmulator(Path(".mlops-local/vertex")) as vertex:
        aiplatform.init(project="p", location="us-central1", api_endpoint=vertex.url,
                        api_transport="rest", credentials=AnonymousCredentials())

Services (plain classes, no HTTP): ``jobs`` (PipelineService), ``models`` (ModelService),
``endpoints`` (EndpointService, PredictionService), ``operations``; ``server`` maps REST to them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from google.protobuf.message import Message

from stack.json_http import JsonHandler
from stack.vertex import protos
from stack.vertex.audit import DEFAULT_PRINCIPAL, AuditSink
from stack.vertex.context import Caller, Context
from stack.vertex.endpoints import Endpoints
from stack.vertex.errors import ApiError
from stack.vertex.faults import FaultPlan, Faults, Stats
from stack.vertex.models import Models
from stack.vertex.names import DEFAULT_PROJECT_NUMBER, Projects
from stack.vertex.operations import Operations
from stack.vertex.pipeline_jobs import Execute, PipelineJobs
from stack.vertex.routes import Route, build_routes
from stack.vertex.server import Server, handler_class, sleep
from stack.vertex.serving import DEFAULT_COMMAND, Serving
from stack.vertex.store import Store

log = logging.getLogger(__name__)

AUDIT_OUTBOX = "audit-outbox.jsonl"


class VertexEmulator:
    def __init__(
        self,
        state_dir: Path,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        audit_events_url: str | None = None,
        execute: Execute = "kfp-local",
        faults: Faults | None = None,
        env: Mapping[str, str] | None = None,
        project_number: str = DEFAULT_PROJECT_NUMBER,
        principal: str = DEFAULT_PRINCIPAL,
        serving_command: Sequence[str] = DEFAULT_COMMAND,
        startup_timeout: float = 60.0,
        max_parallel_jobs: int = 4,
        predict_seed: int | None = None,
        lro_hold_seconds: float = 5.0,
    ) -> None:
        if execute not in ("kfp-local", "none"):
            raise ValueError(f"execute must be 'kfp-local' or 'none', got {execute!r}")
        self.state_dir = Path(state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.principal = principal
        self.faults = faults or Faults()
        self.stats = Stats()
        self.lro_hold_seconds = lro_hold_seconds
        self._plan = FaultPlan(self.faults, self.stats)
        self._stats_lock = threading.Lock()
        self._stopping = False
        lock = threading.RLock()
        store = Store(self.state_dir)
        self.audit = AuditSink(audit_events_url, self.state_dir / AUDIT_OUTBOX)
        self.operations = Operations(store, lock)
        self.ctx = Context(
            state_dir=self.state_dir,
            store=store,
            lock=lock,
            projects=Projects(self.state_dir / "projects.json", project_number),
            operations=self.operations,
            audit=self.audit,
            principal=principal,
            env=dict(env or {}),
        )
        self.jobs = PipelineJobs(self.ctx, execute, max_parallel_jobs)
        self.models = Models(self.ctx)
        self.serving = Serving(self.ctx, serving_command, startup_timeout)
        self.endpoints = Endpoints(self.ctx, self.models, self.serving, predict_seed)
        self.routes = build_routes()
        self._methods = self._method_table()
        self._server = Server((host, port), self.handler_class())
        self.ctx.url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="vertex-emulator", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def audit_outbox(self) -> Path:
        return self.state_dir / AUDIT_OUTBOX

    def start(self) -> Self:
        """Reload the state directory (restarting deployed models) and serve."""
        self.operations.load()
        self.models.load()
        self.jobs.load()
        self.endpoints.load()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, every pipeline worker and serving process; deliver pending audit events."""
        self._stopping = True
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self.jobs.stop()
        self.serving.stop_all()
        self.operations.join(timeout=5.0)
        self.audit.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_job_state(self, name: str, state: str) -> None:
        """Force a pipeline job's state (``PIPELINE_STATE_FAILED``...), e.g. to test what reads it."""
        self.jobs.set_state(name, state)

    def created_jobs(self) -> dict[str, dict[str, Any]]:
        """Job id -> the PipelineJob as stored, in REST JSON (camelCase; what ``get`` answers), in
        creation order. What tests assert on: the body as the proto parsed it, not as it was sent."""
        return {job.name.rsplit("/", 1)[-1]: protos.to_dict(job) for job in self.jobs.created()}

    def forget_pipeline_jobs(self) -> None:
        """Drop every pipeline job and zero ``stats``: a benchmark's repetitions start alike."""
        self.jobs.forget_all()
        with self._stats_lock:
            self.stats.reset()

    def handler_class(self) -> type[JsonHandler]:
        """The HTTP handler; a subclass may wrap it (the benchmarks time each create call)."""
        return handler_class(self)

    # --- dispatch -----------------------------------------------------------------------------

    def count_request(self) -> None:
        with self._stats_lock:
            self.stats.requests += 1

    def call(self, route: Route, request: Any, caller: Caller) -> Message:
        result: Message = self._methods[route.method](request, caller)
        if route.lro and not getattr(result, "done", True) and self.lro_hold_seconds > 0:
            # Answer fast operations already done: saves the client's first poll (>= 1 s).
            result = self.operations.wait(result.name, self.lro_hold_seconds)
        return result

    def _method_table(self) -> dict[str, Callable[[Any, Caller], Message]]:
        jobs, models, endpoints, ops, canonical = (
            self.jobs,
            self.models,
            self.endpoints,
            self.operations,
            self.ctx.canonical,
        )
        return {
            "PipelineService.CreatePipelineJob": lambda r, c: self._create_job(r),
            "PipelineService.GetPipelineJob": lambda r, c: self._get_job(r.name),
            "PipelineService.ListPipelineJobs": lambda r, c: jobs.list(r),
            "PipelineService.CancelPipelineJob": lambda r, c: jobs.cancel(r.name),
            "ModelService.UploadModel": models.upload,
            "ModelService.GetModel": lambda r, c: models.get(r.name),
            "ModelService.ListModels": lambda r, c: models.list(r),
            "ModelService.ListModelVersions": lambda r, c: models.list_versions(r),
            "ModelService.MergeVersionAliases": models.merge_version_aliases,
            "ModelService.UpdateModel": models.update,
            "ModelService.DeleteModelVersion": models.delete_version,
            "ModelService.DeleteModel": models.delete,
            "EndpointService.CreateEndpoint": lambda r, c: endpoints.create(r),
            "EndpointService.GetEndpoint": lambda r, c: endpoints.get(r.name),
            "EndpointService.ListEndpoints": lambda r, c: endpoints.list(r),
            "EndpointService.UpdateEndpoint": lambda r, c: endpoints.update(r),
            "EndpointService.DeleteEndpoint": lambda r, c: endpoints.delete(r.name),
            "EndpointService.DeployModel": lambda r, c: endpoints.deploy(r),
            "EndpointService.UndeployModel": lambda r, c: endpoints.undeploy(r),
            "PredictionService.Predict": lambda r, c: endpoints.predict(r),
            "Operations.GetOperation": lambda r, c: ops.get(canonical(r.name)),
        }

    def _get_job(self, name: str) -> Message:
        with self._stats_lock:
            self.stats.get_calls += 1
        job: Message = self.jobs.get(name)
        return job

    def _create_job(self, request: Any) -> Message:
        faults = self.faults

        def stopping() -> bool:
            return self._stopping

        if faults.delay_seconds:
            sleep(faults.delay_seconds, stopping)
        with self._stats_lock:
            self.stats.create_calls += 1
        fault = self._plan.draw()
        if fault == "400":
            raise ApiError("INVALID_ARGUMENT", "injected fault: 400 (a permanent rejection)")
        if fault == "429":
            raise ApiError("RESOURCE_EXHAUSTED", "injected fault: 429 (quota)")
        if fault == "aborted":
            raise ApiError("ABORTED", "injected fault: 409 ABORTED (concurrent modification, try again)")
        if fault == "503":
            raise ApiError("UNAVAILABLE", "injected fault: 503")
        if fault == "timeout":
            sleep(faults.timeout_seconds, stopping)
            raise ApiError("UNAVAILABLE", "injected fault: timeout")
        try:
            job = self.jobs.create(request)
        except ApiError as exc:
            if exc.status == "ALREADY_EXISTS":
                with self._stats_lock:
                    self.stats.conflicts += 1
            raise
        with self._stats_lock:
            self.stats.created += 1
        if fault == "timeout_after_create":
            sleep(faults.timeout_seconds, stopping)
        result: Message = job
        return result
