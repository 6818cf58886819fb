"""Model artifacts trained by the project's own training step, and a ``mlops-events serve`` runner."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stack.emulators import free_port
from tests.pipelines.datasets import generated

FEATURES = ["usage", "tenure", "plan"]  # generated(): two numeric, one categorical; label "target"


def train_artifact(folder: Path, *, task: str = "classification", rows: int = 300) -> Path:
    """A model folder written by ``steps.train`` (the training pipeline's step) on mixed features."""
    from pipelines.components import data, steps

    frame = generated(rows, seed=3)
    if task == "regression":
        frame["target"] = frame["usage"] * 2 + (frame["plan"] == "pro") * 5
    train, test = frame.iloc[: rows * 3 // 4], frame.iloc[rows * 3 // 4 :]
    work = folder.parent / f"{folder.name}-work"
    work.mkdir(parents=True, exist_ok=True)
    data.write_frame(train, str(work / "train.parquet"))
    data.write_frame(test, str(work / "test.parquet"))
    steps.train(
        str(work / "train.parquet"),
        str(work / "test.parquet"),
        label_column="target",
        task=task,
        model_family="gradient_boosting" if task == "classification" else "linear_regression",
        hyperparameters={"n_estimators": 20} if task == "classification" else {},
        seed=0,
        data_uri="gs://data/incoming/churn/a.csv",
        model_dir=str(folder),
        model_uri=str(folder),
    )
    return folder


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_artifact(tmp_path_factory.mktemp("artifacts") / "classifier")


@pytest.fixture(scope="session")
def regressor_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_artifact(tmp_path_factory.mktemp("artifacts") / "regressor", task="regression")


def http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@dataclass
class Served:
    """A running ``mlops-events serve`` process."""

    process: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path
    health_seen: list[int | None] = field(default_factory=list)  # statuses polled until 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line.startswith("{")]

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def serve_command() -> list[str]:
    script = Path(sys.executable).with_name("mlops-events")
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "mlops_cli.main", "serve"]


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIP_", "MLOPS_", "STORAGE_EMULATOR"))}
    return {**env, **extra}


@contextlib.contextmanager
def serving(env: Mapping[str, str], workdir: Path, *, timeout: float = 60.0) -> Iterator[Served]:
    """Start the container entry point as Vertex would (AIP_* env) and wait until it is healthy."""
    port = free_port()
    full = clean_env(
        {
            "AIP_HTTP_PORT": str(port),
            "AIP_HEALTH_ROUTE": "/v1/endpoints/123/deployedModels/456",
            "AIP_PREDICT_ROUTE": "/v1/endpoints/123/deployedModels/456:predict",
            "AIP_ENDPOINT_ID": "123",
            "AIP_DEPLOYED_MODEL_ID": "456",
            "AIP_MODE": "PREDICTION",
            "AIP_MODE_VERSION": "1.0.0",
            "AIP_FRAMEWORK": "CUSTOM_CONTAINER",
            **env,
        }
    )
    workdir.mkdir(parents=True, exist_ok=True)
    out, err = workdir / f"serve-{port}.out", workdir / f"serve-{port}.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(serve_command(), env=full, stdout=o, stderr=e)
    served = Served(proc, port, out, err)
    try:
        health = f"{served.url}{full['AIP_HEALTH_ROUTE']}"
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited with {proc.returncode}: {err.read_text()[-2000:]}")
            try:
                status, _ = http("GET", health, timeout=2)
            except OSError:
                status = None  # not listening yet
            if not served.health_seen or served.health_seen[-1] != status:
                served.health_seen.append(status)
            if status == 200:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"serve not healthy after {timeout}s: {err.read_text()[-2000:]}")
            time.sleep(0.01)
        yield served
    finally:
        if proc.poll() is None:
            served.stop()
