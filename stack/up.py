"""Start and stop the whole local stack.

What runs (every child in its own process group, logs under ``<state>/logs`` or beside them):

- fake-gcs-server (data, pipeline-root, staging, serving-records and state buckets);
- the Pub/Sub emulator when installed, else the embedded dispatcher (a thread of this process);
- the Vertex AI emulator (``mlops-events emulator vertex``, state under ``<state>/vertex``): it runs
  the pipeline jobs the functions create (kfp.local workers), holds the model registry (its audit
  events go to the bridge's relay) and the endpoints (a serving process per deployed model);
- the four functions, each ``python -m functions_framework --source bundle/main.py --target T``,
  with ``MLOPS_LAUNCHER=vertex`` and ``VERTEX_API_ENDPOINT`` = the emulator: the code that runs on
  Google Cloud;
- the bridge (threads of this process): storage notifications -> ``on_new_data``, registry audit
  events -> ``on_model_registry_event``;
- the schedule player (a thread, ``stack.scheduler``): the rules' schedules -> run requests.

``stack.json`` in the state directory says what runs where; ``Stack.stop`` (Ctrl-C, SIGTERM from
``stack.teardown.down``) stops all of it (the emulator stops its own pipeline workers and serving
processes).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from stack import emulators
from stack.bridge import Deliverer, RelayServer, StorageBridge
from stack.config import (
    FUNCTIONS,
    NOTIFICATIONS_TOPIC,
    STACK_MARKER,
    TOPICS,
    StackConfig,
    StackError,
    command_hint,
    read_stack,
    stack_file,
    task_env,
)
from stack.dispatch import Dispatcher, setup_emulator
from stack.scheduler import start_player
from stack.teardown import sweep

Echo = Callable[[str], None]
FUNCTION_READY_TIMEOUT_S = 30.0


@dataclass
class Stack:
    """A running (or starting) local stack. Use as a context manager, or ``start()``/``stop()``."""

    config: StackConfig
    echo: Echo = print
    info: dict[str, Any] = field(default_factory=dict)
    _procs: list[Any] = field(default_factory=list)  # the emulators (FakeGcs, PubSubEmulator)
    _served: list[tuple[emulators._Process, int]] = field(default_factory=list)  # functions, server
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _stop_first: list[Callable[[], None]] = field(default_factory=list)  # what brings new events
    env: dict[str, str] = field(default_factory=dict)
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.config.root

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- start -----------------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> dict[str, Any]:
        cfg, root = self.config, self.root
        running = read_stack(root)
        if running is not None:
            raise StackError(
                f"a stack is already running from {root} (pid {running['pid']}): "
                f"{command_hint('down', cfg.state_dir)} first"
            )
        for sub in ("logs", "dead-letters"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        ports = cfg.ports()
        fn_ports = {name: ports[name] for name in FUNCTIONS}
        fn_urls = {name: f"http://127.0.0.1:{port}" for name, port in fn_ports.items()}
        storage_host = f"http://127.0.0.1:{ports['storage']}"
        relay_url = f"http://127.0.0.1:{ports['bridge']}"
        pubsub_cmd = None if cfg.pubsub == "embedded" else emulators.find_pubsub_emulator()
        if pubsub_cmd is None and cfg.pubsub == "emulator":
            raise StackError("the Pub/Sub emulator was asked for (--pubsub emulator) but is not installed")
        pubsub_env = (
            {"PUBSUB_EMULATOR_HOST": f"127.0.0.1:{ports['pubsub']}"}
            if pubsub_cmd is not None
            else {"MLOPS_PUBSUB_PUSH_URL": f"http://127.0.0.1:{ports['dispatcher']}"}
        )

        # The Vertex AI emulator first: its start is mostly imports, which overlap with the rest.
        # Every port is known already, so its environment (that of its tasks and serving
        # processes) can name the storage and Pub/Sub emulators before they run.
        vertex = emulators.spawn_vertex_emulator(
            root / "vertex",
            ports["vertex"],
            log_path=root / "vertex-emulator.log",
            env=self._vertex_env(storage_host, pubsub_env),
            audit_events_url=f"{relay_url}/registry-events",
            project=cfg.project,
            region=cfg.region,
        )
        self._procs.append(vertex)

        from functions.bundle import build_bundle
        from pipelines.compile import compile_all

        compile_all(root / "templates")
        bundle = build_bundle(root / "bundle", root / "templates", cfg.rules)
        deliverer = Deliverer(root / "logs" / "deliveries.jsonl", cfg.retry)
        self._closers.append(deliverer.close)

        # Pub/Sub before storage: fake-gcs-server publishes its notifications to an existing topic.
        pubsub = emulators.start_pubsub_emulator(root, ports["pubsub"]) if pubsub_cmd is not None else None
        env = {**self._base_env(bundle), **pubsub_env}
        if pubsub is not None:
            self._procs.append(pubsub)
            self._setenv("PUBSUB_EMULATOR_HOST", pubsub.host)  # this process's clients (setup, bridge)
            env["DEAD_LETTER_TOPIC"] = "dead-letters"
            setup_emulator(cfg.project, {}, {}, extra=(NOTIFICATIONS_TOPIC,))
            notify = emulators.PubSubNotify(
                pubsub.host, cfg.project, NOTIFICATIONS_TOPIC, bucket=cfg.data_bucket
            )
            self.echo(
                f"pubsub: the Pub/Sub emulator at {pubsub.host} (topics {', '.join(TOPICS)}; "
                "storage notifications via fake-gcs-server)"
            )
        else:
            notify = None
            why = (
                "asked for"
                if cfg.pubsub == "embedded"
                else "no Pub/Sub emulator installed (google-cloud-cli)"
            )
            self.echo(
                f"pubsub: embedded dispatcher at {env['MLOPS_PUBSUB_PUSH_URL']} ({why}); "
                "storage events by polling the bucket listing"
            )

        gcs = emulators.start_fake_gcs(root, ports["storage"], pubsub=notify)
        self._procs.append(gcs)
        self._setenv("STORAGE_EMULATOR_HOST", gcs.host)
        self._setenv("GOOGLE_CLOUD_PROJECT", cfg.project)
        env["STORAGE_EMULATOR_HOST"] = gcs.host
        self._create_buckets()

        relay = RelayServer(ports["bridge"], deliverer, fn_urls["on_model_registry_event"])
        relay.start()
        self._closers.append(relay.stop)
        env["VERTEX_API_ENDPOINT"] = vertex.host
        self.env = env

        processes: dict[str, dict[str, Any]] = {}
        for name in FUNCTIONS:
            proc = self._serve(name, bundle / "main.py", name, "cloudevent", fn_ports[name], bundle, env)
            processes[name] = {"url": fn_urls[name], "pid": proc.process.pid, "log": str(proc.log_path)}
        for proc, port in self._served:
            emulators._wait_http(proc, f"http://127.0.0.1:{port}/", FUNCTION_READY_TIMEOUT_S)
        try:
            vertex.wait_ready()
        except emulators.EmulatorError as exc:
            raise StackError(str(exc)) from exc
        self.echo(f"vertex: the Vertex AI emulator at {vertex.host} (state in {vertex.root})")

        if pubsub is not None:
            routes = setup_emulator(cfg.project, TOPICS, fn_urls)
            subscription = f"projects/{cfg.project}/subscriptions/{NOTIFICATIONS_TOPIC}-bridge"
            pubsub_info = {"mode": "emulator", "host": pubsub.host, "pid": pubsub.pid, "routes": routes}
        else:
            dispatcher = Dispatcher(
                ports["dispatcher"], deliverer, cfg.project, TOPICS, fn_urls, root / "pubsub"
            )
            dispatcher.start()
            self._closers.append(dispatcher.stop)
            subscription = None
            pubsub_info = {"mode": "embedded", "url": dispatcher.url, "routes": dispatcher.routes()}

        # Cloud Scheduler's part: the rules' schedules publish run requests (stack/scheduler.py).
        player = start_player(bundle / "rules.yaml", env, project=cfg.project, pubsub=pubsub_info,
                              log_path=root / "logs" / "schedules.jsonl", echo=self.echo,
                              start=cfg.play_schedules)  # fmt: skip
        self._stop_first.append(player.stop)

        bridge = StorageBridge(
            deliverer,
            fn_urls["on_new_data"],
            bucket=cfg.data_bucket,
            storage_host=gcs.host,
            subscription=subscription,
        )
        bridge.start()
        self._stop_first.append(bridge.stop)

        self.info = {
            "pid": os.getpid(),
            "state_dir": str(root),
            "project": cfg.project,
            "region": cfg.region,
            "started_at": time.time(),
            "buckets": {
                "data": cfg.data_bucket,
                "pipeline_root": cfg.pipeline_root_bucket,
                "staging": cfg.staging_bucket,
                "serving_records": cfg.serving_records_bucket,
                "state": cfg.state_bucket,
            },
            "storage": {"host": gcs.host, "pid": gcs.pid, "log": str(gcs.log_path)},
            "pubsub": pubsub_info,
            "vertex": {
                "url": vertex.host,
                "pid": vertex.pid,
                "log": str(vertex.log_path),
                "state_dir": str(vertex.root),
                "env": task_env(cfg, gcs.host, pubsub_env),  # what its tasks and serving processes get
            },
            "bridge": {"url": relay.url, "storage_mode": bridge.mode},
            "schedules": player.describe(),
            "functions": processes,
            "bundle": str(bundle),
            "env": {
                k: v
                for k, v in env.items()
                if k.startswith(("MLOPS_", "STORAGE_", "PUBSUB_", "DATA_", "GOOGLE_", "DEAD_", "VERTEX_"))
            },
        }
        path = stack_file(root)
        path.write_text(json.dumps(self.info, indent=2), encoding="utf-8")
        self.echo(f"stack up in {time.monotonic() - started:.1f}s; state in {root}")
        return self.info

    def _setenv(self, name: str, value: str) -> None:
        """Set a variable for this process's own clients; ``stop`` puts the old value back."""
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def _inherited_env(self) -> dict[str, str]:
        """This process's environment without what points at another Pub/Sub or Vertex AI, plus
        the marker that lets ``down`` find every process of this stack (``sweep``)."""
        drop = ("PUBSUB_EMULATOR_HOST", "MLOPS_PUBSUB_PUSH_URL", "VERTEX_API_ENDPOINT", "MLOPS_LAUNCHER")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env[STACK_MARKER] = str(self.root)
        return env

    def _vertex_env(self, storage_host: str, pubsub: dict[str, str]) -> dict[str, str]:
        """The Vertex AI emulator's environment, which its pipeline tasks and serving processes
        inherit (it adds ``VERTEX_API_ENDPOINT`` and the project and region itself)."""
        return {**self._inherited_env(), **task_env(self.config, storage_host, pubsub)}

    def _base_env(self, bundle: Path) -> dict[str, str]:
        cfg, root = self.config, self.root
        env = self._inherited_env()
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "GOOGLE_CLOUD_PROJECT": cfg.project,
                "GOOGLE_CLOUD_REGION": cfg.region,
                "DATA_BUCKET": cfg.data_bucket,
                "PIPELINE_ROOT": f"gs://{cfg.pipeline_root_bucket}",
                "MLOPS_LAUNCHER": "vertex",  # VERTEX_API_ENDPOINT (the emulator) is set once known
                "MLOPS_STATE_DIR": str(root),
                "MLOPS_DEAD_LETTER_DIR": str(root / "dead-letters"),
                "MLOPS_TEMPLATES": str(bundle / "templates"),
                "MLOPS_CONFIG": str(bundle / "rules.yaml"),
                "MLOPS_STATE_BUCKET": cfg.state_bucket,
            }
        )
        env.update(dict(self.config.extra_env))
        return env

    def _create_buckets(self) -> None:
        from google.api_core import exceptions as gexc

        from pipelines.storage_io import storage_client

        client = storage_client()
        for bucket in self.config.buckets():
            with contextlib.suppress(gexc.Conflict):
                client.create_bucket(bucket)

    def _serve(
        self, name: str, source: Path, target: str, signature: str, port: int, cwd: Path, env: dict[str, str]
    ) -> emulators._Process:
        cmd = [
            sys.executable, "-m", "functions_framework",
            "--source", str(source), "--target", target, "--signature-type", signature,
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        log_path = self.root / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
        # cwd = the bundle: the functions and their pipeline workers run the bundle's code.
        process = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = emulators._Process(name, process, log_path, log)
        self._served.append((proc, port))
        return proc

    # --- stop ------------------------------------------------------------------------------------

    def stop(self) -> None:
        # No new events (the storage bridge), then no new launches (the functions), then the Vertex
        # AI emulator (it stops its pipeline workers and serving processes, and delivers the audit
        # events it holds to the relay, still up), then the rest.
        for close in self._stop_first:
            with contextlib.suppress(Exception):
                close()
        self._stop_first.clear()
        for proc, _port in self._served:  # all at once, then wait for each
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.process.pid, signal.SIGTERM)
        for proc, _port in self._served:
            proc.stop()
        self._served.clear()
        for handle in [h for h in self._procs if isinstance(h, emulators.VertexEmulatorProcess)]:
            with contextlib.suppress(Exception):
                handle.stop()
        for close in self._closers:
            with contextlib.suppress(Exception):
                close()
        self._closers.clear()
        for handle in reversed(self._procs):
            with contextlib.suppress(Exception):
                handle.stop()
        self._procs.clear()
        sweep(self.root)
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        path = stack_file(self.root)
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink()
