"""Dry-run launcher: returns what would be submitted, submits nothing."""

from __future__ import annotations

from events.decision import RunRequest
from pipelines.launch.base import LaunchResult, Templates
from pipelines.launch.vertex import VertexConfig, job_body


class DryRunLauncher:
    name = "dry-run"

    def __init__(self, config: VertexConfig, templates: Templates | None = None) -> None:
        self.config = config
        self.templates = templates

    def launch(self, request: RunRequest) -> LaunchResult:
        # The body is built from the real template when it is there, so a dry run also proves
        # that the template exists and the parameters fit the request shape.
        spec = (
            self.templates.load(request.pipeline)
            if self.templates
            else {"pipelineInfo": {"name": request.pipeline}}
        )
        body = job_body(request, spec, self.config)
        body["pipelineSpec"] = {
            "pipelineInfo": spec.get("pipelineInfo", {}),
            "digest": request.template_digest,
        }
        return LaunchResult(request.job_id, "dry_run", "(dry run)", {"body": body})
