"""What the services of the emulator share: the state directory, one lock, project numbers,
operations, the audit sink, and the environment given to the processes it starts."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from stack.vertex.audit import AuditSink
from stack.vertex.names import Projects, split_location
from stack.vertex.operations import Operations
from stack.vertex.store import Store

_PROJECT: Final = re.compile(r"^projects/([^/]+)/")


@dataclass(frozen=True)
class Parent:
    """A ``projects/P/locations/L`` parent as the caller spelled it and as Vertex names it."""

    project_id: str  # the caller's spelling (an id, or a number)
    number: str
    location: str

    @property
    def name(self) -> str:
        return f"projects/{self.number}/locations/{self.location}"


@dataclass
class Context:
    state_dir: Path
    store: Store
    lock: threading.RLock
    projects: Projects
    operations: Operations
    audit: AuditSink
    principal: str
    env: Mapping[str, str] = field(default_factory=dict)
    url: str = ""  # the emulator's own URL, known once the server is bound

    def parent(self, parent: str, field_name: str = "parent") -> Parent:
        project, location = split_location(parent, field_name)
        return Parent(project, self.projects.number(project), location)

    def canonical(self, name: str) -> str:
        """``name`` with its project as a number (the key resources are kept under)."""
        m = _PROJECT.match(name)
        if not m:
            return name
        return f"projects/{self.projects.number(m.group(1))}/{name[m.end() :]}"

    def project_id(self, name: str) -> str:
        """The project id of a resource name (the id first seen for its number)."""
        m = _PROJECT.match(name)
        project = m.group(1) if m else ""
        return self.projects.project_id(project) if project.isdigit() else project

    def process_env(self, name: str, location: str) -> dict[str, str]:
        """The environment of a process the emulator starts for resource ``name``: its own
        environment, the configured ``env``, and the variables that point the process at the
        emulator and name its project and region (as a Vertex task would see them)."""
        project = self.project_id(name)
        return {
            **os.environ,
            **self.env,
            "VERTEX_API_ENDPOINT": self.url,
            "CLOUD_ML_PROJECT_ID": project,
            "CLOUD_ML_REGION": location,
            "GOOGLE_CLOUD_PROJECT": project,
            "GOOGLE_CLOUD_REGION": location,
        }


@dataclass(frozen=True)
class Caller:
    """Who made a request, as far as the audit log is concerned."""

    principal: str
    user_agent: str = ""
