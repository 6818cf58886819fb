"""Configuration of the local stack, and ``stack.json``: where a running stack says what it is.

Everything the stack keeps lives under one state directory (default ``.mlops-local/``)::

    stack.json        pids, ports and URLs of the running stack (removed by ``down``)
    templates/        compiled pipelines + manifest.json
    bundle/           the functions bundle (what Cloud Build deploys), served by functions-framework
    gcs/              fake-gcs-server's objects (filesystem backend: survives restarts)
    pubsub/           the Pub/Sub emulator's data (or the embedded dispatcher's spooled topics)
    vertex/           the Vertex AI emulator's state: pipeline jobs (and their kfp.local outputs),
                      models, endpoints, serving logs (docs/vertex-emulator.md)
    dead-letters/     dead-letter records (JSONL)
    logs/             one log per function and emulator, deliveries.jsonl (every event the stack delivered)

Ports are free ports unless ``port_base`` is given (then consecutive ports from it, see ``PORT_NAMES``).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

DEFAULT_STATE_DIR: Final = Path(".mlops-local")  # `up`; the demo and `run --local` keep their own
DEMO_STATE_DIR: Final = DEFAULT_STATE_DIR / "demo"
STACK_FILE: Final = "stack.json"

# The four entry points of the bundle and the name each has in the stack (logs, ports).
FUNCTIONS: Final = ("on_new_data", "on_monitoring_alert", "on_model_registry_event", "on_run_request")
# Consecutive ports from ``port_base``, in this order.
PORT_NAMES: Final = ("storage", "pubsub", "bridge", "dispatcher", "vertex", *FUNCTIONS)

# Topics and which function each one's push subscription delivers to (None: a pull subscription,
# kept so that messages can be inspected).
TOPICS: Final[dict[str, str | None]] = {
    "alerts": "on_monitoring_alert",
    "run-requests": "on_run_request",
    "dead-letters": None,
}
NOTIFICATIONS_TOPIC: Final = "gcs-notifications"  # fake-gcs-server -> bridge (emulator mode)
# In the environment of every process started for a stack (value: its state directory), so that
# `down` finds them all, even those whose parent was killed.
STACK_MARKER: Final = "MLOPS_STACK_DIR"

PubSubMode = Literal["auto", "emulator", "embedded"]


class StackError(RuntimeError):
    """The stack cannot do what was asked; the message says what and what to do."""


@dataclass(frozen=True)
class RetryPolicy:
    """How the bridge and the embedded dispatcher redeliver a non-2xx answer (as Eventarc and Pub/Sub
    push do: exponential back-off, every non-2xx is retried)."""

    initial_s: float = 1.0
    maximum_s: float = 10.0
    give_up_after_s: float = 1800.0  # Eventarc retries for 24 h; a laptop stack gives up sooner

    def delay(self, attempt: int) -> float:
        return float(min(self.maximum_s, self.initial_s * (2 ** max(0, attempt - 1))))


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path = DEFAULT_STATE_DIR
    project: str = "local-project"
    region: str = "us-central1"
    data_bucket: str = "mlops-data"
    pipeline_root_bucket: str = "mlops-pipeline-root"  # PIPELINE_ROOT (the emulator keeps it local)
    staging_bucket: str = "mlops-staging"  # Model.upload stages model folders here (MLOPS_STAGING_BUCKET)
    serving_records_bucket: str = "mlops-serving-records"  # MLOPS_SERVING_RECORDS_URI: monitoring's data
    state_bucket: str = "mlops-state"  # the guards' documents; not the data bucket, so they raise no events
    rules: Path | None = None  # None: the shipped rules
    pubsub: PubSubMode = "auto"
    port_base: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    extra_env: tuple[tuple[str, str], ...] = ()  # more variables for the function processes
    play_schedules: bool = True  # False: the rules' schedules fire only when asked (stack.scheduler)

    @property
    def root(self) -> Path:
        return self.state_dir.resolve()

    def ports(self) -> dict[str, int]:
        """A port for every name of ``PORT_NAMES``: consecutive from ``port_base``, else free ports,
        all distinct (the sockets are held together while choosing, so no port comes twice)."""
        if self.port_base is not None:
            return {name: self.port_base + i for i, name in enumerate(PORT_NAMES)}
        sockets = []
        try:
            for _ in PORT_NAMES:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(s)
                s.bind(("127.0.0.1", 0))
            return {name: int(s.getsockname()[1]) for name, s in zip(PORT_NAMES, sockets, strict=True)}
        finally:
            for s in sockets:
                s.close()

    def buckets(self) -> tuple[str, ...]:
        return (
            self.data_bucket,
            self.pipeline_root_bucket,
            self.staging_bucket,
            self.serving_records_bucket,
            self.state_bucket,
        )


def task_env(config: StackConfig, storage_host: str, pubsub: Mapping[str, str]) -> dict[str, str]:
    """What the Vertex AI emulator's pipeline tasks and serving processes need from the stack (the
    emulator adds ``VERTEX_API_ENDPOINT``, project and region itself): the storage emulator, Pub/Sub
    (``PUBSUB_EMULATOR_HOST`` or the embedded dispatcher's ``MLOPS_PUBSUB_PUSH_URL``), the bucket
    ``Model.upload`` stages model folders to, and where serving records go (docs/serving.md)."""
    return {
        "PYTHONUNBUFFERED": "1",
        "STORAGE_EMULATOR_HOST": storage_host,
        **pubsub,
        "GOOGLE_CLOUD_PROJECT": config.project,
        "GOOGLE_CLOUD_REGION": config.region,
        "MLOPS_STAGING_BUCKET": f"gs://{config.staging_bucket}",
        "MLOPS_SERVING_RECORDS_URI": f"gs://{config.serving_records_bucket}",
        "MLOPS_SERVING_RECORDS_FLUSH_SECONDS": "1",
    }


# --- stack.json ----------------------------------------------------------------------------------


def stack_file(state_dir: Path) -> Path:
    return Path(state_dir) / STACK_FILE


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def state_dir_option(state_dir: Path) -> str:
    """`` --state-dir DIR`` for a hint, or "" for the default one: every hint must work as printed."""
    if Path(state_dir).resolve() == DEFAULT_STATE_DIR.resolve():
        return ""
    return f" --state-dir {shlex.quote(str(state_dir))}"


def command_hint(command: str, state_dir: Path) -> str:
    """``mlops-events COMMAND [--state-dir DIR]``, quoted for a message."""
    return f"`mlops-events {command}{state_dir_option(state_dir)}`"


def dead_stack(state_dir: Path) -> dict[str, Any] | None:
    """The ``stack.json`` of a stack whose supervisor is gone (killed: its children may still run)."""
    try:
        info: dict[str, Any] = json.loads(stack_file(state_dir).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return None if pid_alive(int(info.get("pid", 0))) else info


def read_stack(state_dir: Path) -> dict[str, Any] | None:
    """The running stack's description, or None when no stack runs from ``state_dir``."""
    path = stack_file(state_dir)
    try:
        info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not pid_alive(int(info.get("pid", 0))):
        return None  # a stale file from a stack that was killed
    return info


def require_stack(state_dir: Path) -> dict[str, Any]:
    info = read_stack(state_dir)
    if info is None:
        raise StackError(
            f"no local stack is running from {state_dir} (no live {stack_file(state_dir)}): "
            f"start one with {command_hint('up', state_dir)} (or add --detach)"
        )
    return info


def function_urls(state_dir: Path) -> dict[str, str]:
    """Entry point -> URL of the running stack's functions (for ``replay`` and tools)."""
    info = require_stack(state_dir)
    return {name: str(fn["url"]) for name, fn in info["functions"].items()}
