"""``python -m bench.serving``: the serving container's cold start and predict latency.

- cold start: a fresh ``mlops-events serve`` process to the first 200 of its health route, polled
  every 20 ms (median of ``--reps``); the model is the demo's (gradient boosting, 4 mixed features);
- predict latency p50/p99 for 1 and 100 instances over one kept-alive connection (as Vertex's
  front end sends them), with serving records off and on (sample rate 1, written to
  fake-gcs-server every second), and with a records bucket that never answers: records must not
  show in the latency.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import median, percentile
from stack.emulators import free_port, start_fake_gcs

HEALTH = "/health"
PREDICT = "/predict"


def train(folder: Path) -> Path:
    from pipelines.components import data, steps
    from stack import demo_data

    frame = demo_data.reference()
    work = folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    data.write_frame(frame.iloc[:1200], str(work / "train.parquet"))
    data.write_frame(frame.iloc[1200:], str(work / "test.parquet"))
    model = folder / "model"
    steps.train(
        str(work / "train.parquet"),
        str(work / "test.parquet"),
        label_column=demo_data.LABEL,
        task="classification",
        model_family="gradient_boosting",
        hyperparameters={},
        seed=0,
        data_uri="bench",
        model_dir=str(model),
        model_uri=str(model),
    )
    return model


def _command() -> list[str]:
    script = Path(sys.executable).with_name("mlops-events")
    return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "mlops_cli.main", "serve"]


@contextmanager
def serving(env: Mapping[str, str], log: Path) -> Iterator[tuple[int, float]]:
    """A running server: (port, seconds from spawn to healthy)."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AIP_", "MLOPS_"))}
    full.update(env, AIP_HTTP_PORT=str(port))
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(_command(), env=full, stdout=out, stderr=out)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}; see {log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", HEALTH)
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.02)  # polling harder steals the loader's CPU on a small machine
        yield port, time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(30)


def latencies(port: int, body: bytes, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for _ in range(n):
        started = time.perf_counter()
        conn.request("POST", PREDICT, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        out.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise RuntimeError(f"predict answered {response.status}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__)
    parser.add_argument("--reps", type=int, default=5, help="cold starts (median reported)")
    parser.add_argument("--requests", type=int, default=500, help="predict requests per case and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of records off, then on")
    args = parser.parse_args(argv)
    from stack import demo_data

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        root = Path(tmp)
        model = train(root)
        log = root / "serve.log"
        env = {"AIP_STORAGE_URI": str(model), "MLOPS_MODEL_NAME": "churn"}
        starts = []
        for _ in range(args.reps):
            with serving(env, log) as (_, seconds):
                starts.append(seconds)
        results["cold_start_s"] = {"median": round(median(starts), 3), "all": [round(s, 3) for s in starts]}

        rows = demo_data.reference(100, seed=3).drop(columns=[demo_data.LABEL]).to_dict(orient="records")
        bodies = {n: json.dumps({"instances": rows[:n]}).encode() for n in (1, 100)}
        # A bucket that accepts connections and never answers: the writer thread hangs in
        # its upload, requests must not notice (records are dropped and counted instead).
        stalled = socket.socket()
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(1024)
        gcs = start_fake_gcs(root / "gcs")
        try:
            os.environ["STORAGE_EMULATOR_HOST"] = gcs.host
            from pipelines import storage_io

            storage_io.ensure_bucket("bench")
            records_on = {
                **env,
                "STORAGE_EMULATOR_HOST": gcs.host,
                "GOOGLE_CLOUD_PROJECT": "local-project",
                "MLOPS_SERVING_RECORDS_URI": "gs://bench/serving-records",
                "MLOPS_SERVING_RECORDS_FLUSH_SECONDS": "1",
            }
            records_stalled = {
                **records_on,
                "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{stalled.getsockname()[1]}",
            }
            cases = (
                ("records_off", env),
                ("records_on", records_on),
                ("records_on_stalled_bucket", records_stalled),
            )
            samples: dict[str, list[float]] = {}
            for _ in range(args.rounds):  # interleaved: a shared machine's load hits all alike
                for label, case_env in cases:
                    with serving(case_env, log) as (port, _):
                        for n, body in bodies.items():
                            latencies(port, body, 20)  # warm up
                            samples.setdefault(f"{label}_{n}", []).extend(
                                latencies(port, body, args.requests)
                            )
            for key, ms in samples.items():
                results[key] = {
                    "requests": len(ms),
                    "p50_ms": round(percentile(ms, 50), 2),
                    "p99_ms": round(percentile(ms, 99), 2),
                }
            written = storage_io.list_uris("gs://bench/serving-records/churn/")
            results["records_objects_written"] = len(written)
            results["records_lines_written"] = sum(len(storage_io.read_text(u).splitlines()) for u in written)
            stops = [json.loads(x) for x in log.read_text().splitlines() if '"serving.stop"' in x]
            results["records_at_stop"] = [line["records"] for line in stops]  # records_on cases, in order
        finally:
            gcs.stop()
            stalled.close()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
