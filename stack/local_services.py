"""What ``mlops-events run PIPELINE --local`` runs against: the same services as on Google Cloud,
emulated, so that its tasks use the same registry and endpoint code (the Vertex adapters).

- A stack runs from ``stack_dir``: its storage emulator, Pub/Sub and Vertex AI emulator (models
  registered by the run are the stack's, and its functions see their audit events).
- Otherwise fake-gcs-server, the embedded Pub/Sub dispatcher (messages spooled to
  ``<runs>/pubsub/<topic>.jsonl``) and the Vertex AI emulator are started for the duration of the
  run, with their state under ``runs_dir`` (default ``.mlops-local/runs``): models registered by
  one run are there for the next.

Nothing here reaches Google Cloud: every client is pointed at an emulator (``STORAGE_EMULATOR_HOST``,
``VERTEX_API_ENDPOINT`` = ``http://...``, ``PUBSUB_EMULATOR_HOST`` or ``MLOPS_PUBSUB_PUSH_URL``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from stack.config import DEFAULT_STATE_DIR, StackConfig, read_stack, task_env

RUNS_DIR: Final = DEFAULT_STATE_DIR / "runs"
Echo = Callable[[str], None]
# Variables that would point a task at something else than the emulators chosen here.
_REPLACED: Final = (
    "STORAGE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "MLOPS_PUBSUB_PUSH_URL",
    "VERTEX_API_ENDPOINT",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_REGION",
    "MLOPS_STAGING_BUCKET",
    "MLOPS_SERVING_RECORDS_URI",
)


@dataclass
class LocalServices:
    where: list[str]  # for the user: what runs, and where its state is
    env: dict[str, str]  # what the run's tasks need (set in this process's environment)
    pipeline_root: Path
    stack: dict[str, Any] | None = None  # the running stack's stack.json, when one is used
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)


def _from_stack(info: Mapping[str, Any]) -> dict[str, str]:
    pubsub = info["pubsub"]
    bus = (
        {"PUBSUB_EMULATOR_HOST": str(pubsub["host"])}
        if pubsub["mode"] == "emulator"
        else {"MLOPS_PUBSUB_PUSH_URL": str(pubsub["url"])}
    )
    env = dict((info.get("vertex") or {}).get("env") or {})
    env.update(bus)
    env["STORAGE_EMULATOR_HOST"] = str(info["storage"]["host"])
    env["VERTEX_API_ENDPOINT"] = str(info["vertex"]["url"])
    return env


@contextlib.contextmanager
def local_services(
    runs_dir: Path = RUNS_DIR, stack_dir: Path = DEFAULT_STATE_DIR, *, pipeline_root: Path | None = None
) -> Iterator[LocalServices]:
    """The emulators of the stack running from ``stack_dir``, else emulators of our own (state in
    ``runs_dir``) until the block ends. The environment is set for the block and restored after."""
    runs_dir = Path(runs_dir).resolve()
    root = Path(pipeline_root).resolve() if pipeline_root else runs_dir / "pipeline-root"
    info = read_stack(Path(stack_dir).resolve())
    if info is not None:
        services = LocalServices(
            where=[
                f"using the local stack running from {info['state_dir']}: its storage, Pub/Sub and "
                f"Vertex AI emulator ({info['vertex']['url']}); models and endpoints are the stack's",
                f"task artifacts in {root}",
            ],
            env=_from_stack(info),
            pipeline_root=root,
            stack=info,
        )
    else:
        services = _start_own(runs_dir, root, Path(stack_dir))
    saved = {name: os.environ.get(name) for name in (*_REPLACED, *services.env)}
    try:
        for name in _REPLACED:
            os.environ.pop(name, None)
        os.environ.update(services.env)
        yield services
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for stop in reversed(services._stops):
            with contextlib.suppress(Exception):
                stop()


def _start_own(runs_dir: Path, pipeline_root: Path, stack_dir: Path) -> LocalServices:
    from stack import emulators
    from stack.bridge import Deliverer
    from stack.config import RetryPolicy
    from stack.dispatch import Dispatcher

    config = StackConfig(state_dir=runs_dir)
    stops: list[Callable[[], None]] = []
    try:
        (runs_dir / "logs").mkdir(parents=True, exist_ok=True)
        dispatcher_port, storage_port = emulators.free_port(), emulators.free_port()
        storage_host = f"http://127.0.0.1:{storage_port}"
        bus = {"MLOPS_PUBSUB_PUSH_URL": f"http://127.0.0.1:{dispatcher_port}"}
        env = task_env(config, storage_host, bus)
        inherited = {k: v for k, v in os.environ.items() if k not in _REPLACED}
        # Spawned first: its start is imports, which overlap with starting the others.
        vertex = emulators.spawn_vertex_emulator(
            runs_dir / "vertex",
            log_path=runs_dir / "vertex-emulator.log",
            env={**inherited, **env},
            project=config.project,
            region=config.region,
        )
        stops.append(vertex.stop)
        gcs = emulators.start_fake_gcs(runs_dir, storage_port)
        stops.append(gcs.stop)
        deliverer = Deliverer(runs_dir / "logs" / "deliveries.jsonl", RetryPolicy())
        stops.append(deliverer.close)
        # No functions here: every topic is spooled, as a pull subscription would keep it.
        dispatcher = Dispatcher(dispatcher_port, deliverer, config.project, {}, {}, runs_dir / "pubsub")
        dispatcher.start()
        stops.append(dispatcher.stop)
        _create_buckets(storage_host, config)
        vertex.wait_ready()
    except BaseException:
        for stop in reversed(stops):
            with contextlib.suppress(Exception):
                stop()
        raise
    env["VERTEX_API_ENDPOINT"] = vertex.host
    where = [
        f"no stack runs from {stack_dir}: started fake-gcs-server ({storage_host}) and the Vertex AI "
        f"emulator ({vertex.host}) for this run",
        f"state kept in {runs_dir}: models and endpoints in vertex/, objects in gcs/ (buckets "
        f"{', '.join(config.buckets())}), Pub/Sub messages in pubsub/",
        f"task artifacts in {pipeline_root}",
    ]
    return LocalServices(where=where, env=env, pipeline_root=pipeline_root, _stops=stops)


def _create_buckets(storage_host: str, config: StackConfig) -> None:
    from google.api_core import exceptions as gexc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project=config.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": storage_host},
    )
    for bucket in config.buckets():
        with contextlib.suppress(gexc.Conflict):
            client.create_bucket(bucket)
