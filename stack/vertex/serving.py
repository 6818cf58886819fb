"""Serving processes: what Vertex runs as a deployed model's prediction container.

There is no container engine here, so every image runs the one configured ``command`` (by
default ``[sys.executable, "-m", "mlops_cli.main", "serve"]``, the project's serving container
entry point); ``containerSpec.command``/``args`` and ``ports`` are not used. The process gets the
environment Vertex gives a custom container
(https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements#aip-variables):
``AIP_HTTP_PORT`` (a free local port here, not ``containerSpec.ports``), ``AIP_HEALTH_ROUTE``,
``AIP_PREDICT_ROUTE`` (the model's routes, or Vertex's defaults
``/v1/endpoints/E/deployedModels/D[:predict]``), ``AIP_STORAGE_URI`` (the model's ``artifactUri``
itself: Vertex would copy it to a bucket of its own first), ``AIP_DEPLOYED_MODEL_ID``,
``AIP_ENDPOINT_ID``, ``AIP_MODEL_NAME``, ``AIP_VERSION_NAME``, ``AIP_PROJECT_NUMBER``,
``AIP_MACHINE_TYPE``, ``AIP_ACCELERATOR_TYPE``, ``AIP_FRAMEWORK``, ``AIP_MODE``,
``AIP_MODE_VERSION``; then the model's ``containerSpec.env`` (``$(VAR)`` expanded as Vertex does),
on top of the emulator's own environment (``VERTEX_API_ENDPOINT``, ``STORAGE_EMULATOR_HOST``...).
It is ready when its health route answers 200.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from google.cloud import aiplatform_v1 as v1

from stack.emulators import free_port
from stack.vertex import processes
from stack.vertex.context import Context
from stack.vertex.errors import ApiError

DEFAULT_COMMAND: Final = (sys.executable, "-m", "mlops_cli.main", "serve")
_VAR: Final = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes-style ``$(VAR)`` expansion (``$$`` escapes; unknown references stay as they are)."""
    return _VAR.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


@dataclass
class Server:
    """One running serving process."""

    deployed_model_id: str
    endpoint_id: str
    port: int
    predict_route: str
    health_route: str
    log_path: Path
    proc: Any
    ready: threading.Event = field(default_factory=threading.Event)
    problem: str | None = None  # why it never became ready

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def aip_environment(
    *,
    endpoint_id: str,
    deployed_model_id: str,
    port: int,
    model: Any,
    deployed_model: Any,
    project_number: str,
) -> dict[str, str]:
    spec = model.container_spec
    machine = deployed_model.dedicated_resources.machine_spec
    env = {
        "AIP_HTTP_PORT": str(port),
        "AIP_HEALTH_ROUTE": spec.health_route
        or f"/v1/endpoints/{endpoint_id}/deployedModels/{deployed_model_id}",
        "AIP_PREDICT_ROUTE": spec.predict_route
        or f"/v1/endpoints/{endpoint_id}/deployedModels/{deployed_model_id}:predict",
        "AIP_STORAGE_URI": model.artifact_uri,
        "AIP_DEPLOYED_MODEL_ID": deployed_model_id,
        "AIP_ENDPOINT_ID": endpoint_id,
        "AIP_MODEL_NAME": endpoint_id,  # as Vertex sets it, "for compatibility"
        "AIP_VERSION_NAME": deployed_model_id,
        "AIP_PROJECT_NUMBER": project_number,
        "AIP_MACHINE_TYPE": machine.machine_type,
        "AIP_FRAMEWORK": "CUSTOM_CONTAINER",
        "AIP_MODE": "PREDICTION",
        "AIP_MODE_VERSION": "1.0.0",
    }
    if machine.accelerator_type:
        env["AIP_ACCELERATOR_TYPE"] = v1.AcceleratorType(machine.accelerator_type).name
    return env


class Serving:
    def __init__(
        self, ctx: Context, command: Sequence[str] = DEFAULT_COMMAND, startup_timeout: float = 60.0
    ) -> None:
        self.ctx = ctx
        self.command = list(command)
        self.startup_timeout = startup_timeout
        self._servers: dict[str, Server] = {}  # deployed model id -> server
        self._lock = threading.Lock()

    def start(self, endpoint_name: str, deployed_model: Any, model: Any) -> Server:
        """Start the serving process of ``deployed_model`` (a version ``model``); returns at once."""
        endpoint_id = endpoint_name.rsplit("/", 1)[-1]
        deployed_id = deployed_model.id
        port = free_port()
        aip = aip_environment(
            endpoint_id=endpoint_id,
            deployed_model_id=deployed_id,
            port=port,
            model=model,
            deployed_model=deployed_model,
            project_number=endpoint_name.split("/")[1],
        )
        env = self.ctx.process_env(endpoint_name, endpoint_name.split("/")[3])
        for var in model.container_spec.env:
            env[var.name] = expand(var.value, {**env, **aip})
        env.update(aip)  # Vertex owns the AIP_ prefix
        log_path = self.ctx.state_dir / "serving" / endpoint_id / f"{deployed_id}.log"
        proc = processes.spawn(self.command, log_path, env)
        server = Server(
            deployed_id, endpoint_id, port, aip["AIP_PREDICT_ROUTE"], aip["AIP_HEALTH_ROUTE"], log_path, proc
        )
        with self._lock:
            old = self._servers.pop(deployed_id, None)
            self._servers[deployed_id] = server
        if old is not None:
            processes.stop(old.proc)
        threading.Thread(target=self._watch, args=(server,), daemon=True).start()
        return server

    def _watch(self, server: Server) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                server.problem = f"the serving process exited with code {server.proc.returncode}"
                break
            try:
                with urllib.request.urlopen(server.base + server.health_route, timeout=2.0) as resp:
                    if resp.status == 200:
                        server.ready.set()
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        else:
            server.problem = f"the serving process was not healthy at {server.health_route} after {self.startup_timeout:.0f} s"
        server.ready.set()  # wakes waiters; ``problem`` says it failed

    def wait_ready(self, server: Server, timeout: float | None = None) -> None:
        """Return once ``server`` answers its health route, or raise naming why it never will."""
        server.ready.wait(self.startup_timeout + 5 if timeout is None else timeout)
        if server.problem or not server.ready.is_set():
            problem = server.problem or "the serving process is still starting"
            tail = processes.log_tail(server.log_path)
            raise ApiError(
                "FAILED_PRECONDITION",
                f"Deployed model {server.deployed_model_id} failed to start: {problem}. "
                f"Log {server.log_path}:\n{tail}",
            )

    def get(self, deployed_model_id: str) -> Server | None:
        with self._lock:
            return self._servers.get(deployed_model_id)

    def stop(self, deployed_model_id: str) -> None:
        with self._lock:
            server = self._servers.pop(deployed_model_id, None)
        if server is not None:
            processes.stop(server.proc)

    def stop_all(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            processes.stop(server.proc)
