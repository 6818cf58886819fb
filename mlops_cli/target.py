"""Which Vertex AI a command that acts on Vertex (``rerun``, ``promote``, ``reject``) talks to.

``--state-dir DIR`` names a local stack: its Vertex AI emulator. Otherwise the functions' settings
from the environment (``GOOGLE_CLOUD_PROJECT``, ``GOOGLE_CLOUD_REGION``, ``VERTEX_API_ENDPOINT``);
and with none of those set, the stack running from the default state directory: a shell with
nothing of Google Cloud in it never reaches Google Cloud by accident.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stack.config import DEFAULT_STATE_DIR


class TargetError(RuntimeError):
    """Nothing to talk to: no stack runs there, or the environment does not name a project."""


@dataclass(frozen=True)
class Target:
    project: str
    region: str
    api_endpoint: str | None
    timeout_seconds: float
    where: str  # for messages: "the local stack in DIR (URL)" or "Vertex AI P/R (URL)"
    stack_dir: Path | None = None  # set when it is a local stack's emulator

    @property
    def local(self) -> bool:
        return self.stack_dir is not None


def resolve_target(state_dir: Path | None) -> Target:
    from stack.config import read_stack

    if state_dir is None and not (
        os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("VERTEX_API_ENDPOINT")
    ):
        state_dir = DEFAULT_STATE_DIR  # nothing says Google Cloud: the local stack, if one runs
    if state_dir is not None:
        info = read_stack(state_dir.resolve())
        if info is None:
            raise TargetError(
                f"no local stack is running from {state_dir}; start it (`mlops-events up --state-dir "
                f"{state_dir}`), or set GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_REGION) for Vertex AI"
            )
        url = str(info["vertex"]["url"])
        return Target(
            project=str(info["project"]),
            region=str(info.get("region") or "us-central1"),
            api_endpoint=url,
            timeout_seconds=30.0,
            where=f"the local stack in {info['state_dir']} ({url})",
            stack_dir=Path(str(info["state_dir"])),
        )
    from functions.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise TargetError(str(exc)) from exc
    if not settings.project:
        raise TargetError("set GOOGLE_CLOUD_PROJECT (VERTEX_API_ENDPOINT alone does not name a project)")
    endpoint = settings.vertex_api_endpoint
    url = endpoint or f"https://{settings.region}-aiplatform.googleapis.com"
    url = url if "://" in url else f"https://{url}"
    return Target(
        project=settings.project,
        region=settings.region,
        api_endpoint=endpoint,
        timeout_seconds=settings.vertex_timeout_seconds,
        where=f"Vertex AI {settings.project}/{settings.region} ({url.rstrip('/')})",
    )
