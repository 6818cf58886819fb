"""Start and stop the whole local stack.

What runs (every child in its own process group, logs under ``<state>/logs``):

- fake-gcs-server (data, registry, pipeline-root and state buckets);
- the Pub/Sub emulator when installed, else the embedded dispatcher (a thread of this process);
- the four functions, each ``python -m functions_framework --source bundle/main.py --target T``,
  with ``MLOPS_LAUNCHER=local``: a launch starts a background worker (``pipelines.launch.local_worker``)
  that runs the compiled template under kfp.local and inherits the function's environment;
- the prediction server (``pipelines/serving/server.py`` under functions-framework);
- the bridge (threads of this process): storage notifications -> ``on_new_data``, registry audit
  events -> ``on_model_registry_event``;
- the schedule player (a thread, ``stack.scheduler``): the rules' schedules -> run requests.

``stack.json`` in the state directory says what runs where; ``stop_stack`` (Ctrl-C, ``down``) stops
all of it, the pipeline workers included.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
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
    TOPICS,
    StackConfig,
    StackError,
    command_hint,
    pid_alive,
    read_stack,
    stack_file,
)
from stack.dispatch import Dispatcher, setup_emulator
from stack.scheduler import start_player

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
        for sub in ("logs", "jobs", "dead-letters", "pipeline-root"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        started = time.monotonic()

        from functions.bundle import build_bundle
        from pipelines.compile import compile_all

        compile_all(root / "templates")
        bundle = build_bundle(root / "bundle", root / "templates", cfg.rules)

        ports = cfg.ports()
        fn_ports = {name: ports[name] for name in FUNCTIONS}
        fn_urls = {name: f"http://127.0.0.1:{port}" for name, port in fn_ports.items()}
        deliverer = Deliverer(root / "logs" / "deliveries.jsonl", cfg.retry)
        self._closers.append(deliverer.close)

        # Pub/Sub first: fake-gcs-server publishes its notifications to an existing topic.
        pubsub = None if cfg.pubsub == "embedded" else emulators.start_pubsub_emulator(root, ports["pubsub"])
        if pubsub is None and cfg.pubsub == "emulator":
            raise StackError("the Pub/Sub emulator was asked for (--pubsub emulator) but is not installed")
        env = self._base_env(bundle)
        if pubsub is not None:
            self._procs.append(pubsub)
            self._setenv("PUBSUB_EMULATOR_HOST", pubsub.host)  # this process's clients (setup, bridge)
            env["PUBSUB_EMULATOR_HOST"] = pubsub.host
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
            env["MLOPS_PUBSUB_PUSH_URL"] = f"http://127.0.0.1:{ports['dispatcher']}"
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
        env["MLOPS_REGISTRY_EVENTS_URL"] = f"{relay.url}/registry-events"
        env["MLOPS_ENDPOINT_URL"] = f"http://127.0.0.1:{ports['prediction']}"
        self.env = env

        processes: dict[str, dict[str, Any]] = {}
        for name in FUNCTIONS:
            proc = self._serve(name, bundle / "main.py", name, "cloudevent", fn_ports[name], bundle, env)
            processes[name] = {"url": fn_urls[name], "pid": proc.process.pid, "log": str(proc.log_path)}
        predict = self._serve(
            "prediction-server",
            bundle / "pipelines" / "serving" / "server.py",
            "predict",
            "http",
            ports["prediction"],
            bundle,
            env,
        )
        for proc, port in self._served:
            emulators._wait_http(proc, f"http://127.0.0.1:{port}/", FUNCTION_READY_TIMEOUT_S)

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
        self._closers.insert(0, player.stop)

        bridge = StorageBridge(
            deliverer,
            fn_urls["on_new_data"],
            bucket=cfg.data_bucket,
            storage_host=gcs.host,
            subscription=subscription,
        )
        bridge.start()
        self._closers.insert(0, bridge.stop)

        self.info = {
            "pid": os.getpid(),
            "state_dir": str(root),
            "project": cfg.project,
            "started_at": time.time(),
            "buckets": {
                "data": cfg.data_bucket,
                "registry": cfg.registry_bucket,
                "pipeline_root": cfg.pipeline_root_bucket,
                "state": cfg.state_bucket,
            },
            "storage": {"host": gcs.host, "pid": gcs.pid, "log": str(gcs.log_path)},
            "pubsub": pubsub_info,
            "bridge": {"url": relay.url, "storage_mode": bridge.mode},
            "schedules": player.describe(),
            "functions": processes,
            "prediction": {
                "url": env["MLOPS_ENDPOINT_URL"],
                "pid": predict.process.pid,
                "log": str(predict.log_path),
            },
            "bundle": str(bundle),
            "env": {
                k: v
                for k, v in env.items()
                if k.startswith(("MLOPS_", "STORAGE_", "PUBSUB_", "DATA_", "GOOGLE_", "DEAD_"))
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

    def _base_env(self, bundle: Path) -> dict[str, str]:
        cfg, root = self.config, self.root
        env = {
            k: v for k, v in os.environ.items() if k not in ("PUBSUB_EMULATOR_HOST", "MLOPS_PUBSUB_PUSH_URL")
        }
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "GOOGLE_CLOUD_PROJECT": cfg.project,
                "GOOGLE_CLOUD_REGION": cfg.region,
                "DATA_BUCKET": cfg.data_bucket,
                "PIPELINE_ROOT": f"gs://{cfg.pipeline_root_bucket}",
                "MLOPS_LAUNCHER": "local",
                "MLOPS_BACKEND": "local",
                "MLOPS_STATE_DIR": str(root),
                "MLOPS_DEAD_LETTER_DIR": str(root / "dead-letters"),
                "MLOPS_TEMPLATES": str(bundle / "templates"),
                "MLOPS_CONFIG": str(bundle / "rules.yaml"),
                "MLOPS_REGISTRY_BUCKET": cfg.registry_bucket,
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
        for close in self._closers:
            with contextlib.suppress(Exception):
                close()
        self._closers.clear()
        # Functions first (no new workers), then the workers they started, then the emulators.
        for proc, _port in self._served:
            proc.stop()
        self._served.clear()
        stop_workers(self.root)
        for handle in reversed(self._procs):
            with contextlib.suppress(Exception):
                handle.stop()
        self._procs.clear()
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


# --- pipeline workers ------------------------------------------------------------------------------


def worker_pids(root: Path) -> set[int]:
    """Pids of the local launcher's workers of this state directory: those recorded in the jobs'
    status.json, and any process whose command line runs the worker on one of our job directories
    (a worker that has not written its pid yet)."""
    jobs = root / "jobs"
    pids: set[int] = set()
    for status_path in jobs.glob("*/status.json"):
        with contextlib.suppress(OSError, ValueError, json.JSONDecodeError):
            status = json.loads(status_path.read_text(encoding="utf-8"))
            if status.get("state") in ("PENDING", "RUNNING") and status.get("pid"):
                pids.add(int(status["pid"]))
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                if b"pipelines.launch.local_worker" in cmdline and any(
                    arg.startswith(str(jobs).encode()) for arg in cmdline
                ):
                    pids.add(int(entry.name))
    return {p for p in pids if pid_alive(p)}


def stop_workers(root: Path, timeout: float = 5.0) -> list[int]:
    """Stop every pipeline worker of ``root`` with its process group (the kfp.local task
    subprocesses), and mark their jobs CANCELLED. Returns the pids stopped."""
    from pipelines.launch.local import TERMINAL_STATES, write_json

    pids = worker_pids(root)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)  # the worker leads its own session (start_new_session)
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for status_path in (root / "jobs").glob("*/status.json"):
        with contextlib.suppress(OSError, ValueError):
            status = json.loads(status_path.read_text(encoding="utf-8"))
            if status.get("state") not in TERMINAL_STATES and status.get("state") != "CANCELLED":
                status.update(
                    state="CANCELLED", error="stopped with the local stack", finished_at=time.time()
                )
                write_json(status_path, status)
    return sorted(pids)


# --- down (from another process) -------------------------------------------------------------------


def down(root: Path, echo: Echo = print, timeout: float = 20.0) -> bool:
    """Stop the stack running from ``root``: ask its supervisor (SIGTERM), then make sure that
    every process it listed and every pipeline worker is gone. False when nothing was running."""
    root = root.resolve()
    path = stack_file(root)
    try:
        info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        stopped = stop_workers(root)
        if stopped:
            echo(f"no stack.json in {root}; stopped {len(stopped)} leftover pipeline worker(s)")
        return bool(stopped)
    supervisor = int(info.get("pid", 0))
    if supervisor and pid_alive(supervisor):
        with contextlib.suppress(ProcessLookupError):
            os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(supervisor) and time.monotonic() < deadline:
            time.sleep(0.1)
    # Whatever is left (a supervisor killed with -9 leaves its children): stop their groups.
    pids = [int(fn["pid"]) for fn in info.get("functions", {}).values()]
    pids += [int(info[k]["pid"]) for k in ("prediction", "storage") if info.get(k, {}).get("pid")]
    if info.get("pubsub", {}).get("pid"):
        pids.append(int(info["pubsub"]["pid"]))
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    stop_workers(root)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    echo(f"stack in {root} stopped")
    return True


def run_foreground(config: StackConfig, echo: Echo = print) -> int:
    """``mlops-events up``: start, print where everything is, wait for Ctrl-C or SIGTERM, stop."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = Stack(config, echo)
    try:
        info = stack.start()
        describe(info, echo)
        echo(f"Ctrl-C (or {command_hint('down', config.state_dir)}) stops everything")
        while not stop.wait(0.5):
            pass
        echo("stopping ...")
    finally:
        stack.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def start_detached(config: StackConfig, argv: list[str], timeout: float = 120.0) -> dict[str, Any]:
    """Run ``mlops-events up`` (``argv``, without --detach) in the background; wait until it is up."""
    root = config.root
    running = read_stack(root)
    if running is not None:  # say so now, not after a child has failed to start
        raise StackError(
            f"a stack is already running from {config.state_dir} (pid {running['pid']}): "
            f"{command_hint('down', config.state_dir)} first"
        )
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "stack.log"
    offset = log_path.stat().st_size if log_path.exists() else 0  # earlier stacks' lines are not ours
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops_cli.main", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_stack(root)
        if info is not None and info.get("pid") == process.pid:
            return info
        if process.poll() is not None:
            with log_path.open("rb") as f:
                f.seek(offset)
                lines = f.read().decode(errors="replace").splitlines()
            # The reason first: the child's own `mlops-events: ...` message; else its last lines.
            reasons = [
                line.removeprefix("mlops-events: ") for line in lines if line.startswith("mlops-events: ")
            ]
            if reasons:
                raise StackError(f"{reasons[-1]} (the stack exited {process.returncode}; log: {log_path})")
            raise StackError(
                f"the stack did not start (exit {process.returncode}); {log_path}:\n" + "\n".join(lines[-15:])
            )
        time.sleep(0.2)
    raise StackError(f"the stack was not up after {timeout:.0f}s; see {log_path}")


def describe(info: dict[str, Any], echo: Echo = print) -> None:
    echo(f"  storage     {info['storage']['host']}  buckets: {', '.join(info['buckets'].values())}")
    ps = info["pubsub"]
    echo(f"  pubsub      {ps.get('host') or ps.get('url')} ({ps['mode']})")
    for topic, route in ps["routes"].items():
        echo(f"    {topic:<14} {route}")
    for name, fn in info["functions"].items():
        echo(f"  {name:<24} {fn['url']}")
    echo(f"  prediction  {info['prediction']['url']}/v1/endpoints/<model>:predict")
    echo(f"  bridge      {info['bridge']['url']} (storage events: {info['bridge']['storage_mode']})")
    echo(f"  logs        {info['state_dir']}/logs/")


def health(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) < 500
    except OSError:
        return False
