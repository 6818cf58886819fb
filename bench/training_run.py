"""Whole pipeline runs under kfp.local against the Vertex AI emulator: training, then deployment.

    python -m bench.training_run [--rows 100000] [--features 20] [--reps 3] [--family hist_gradient_boosting]

Where ``bench.training`` times the fit alone, this times what a user waits for: the compiled
``training`` template run by ``pipelines.local_run`` (its task a subprocess, as on Vertex: imports,
load, validation, split, fit, evaluation, the comparison with the champion, the upload to the
registry with the SDK staging the model folder), and the ``deployment`` template (smoke test of
the version alone on a short-lived endpoint, canary, promote; each deployment starts real
``mlops-events serve`` processes). Storage is fake-gcs-server, Vertex is ``stack.vertex``. The
data is ``bench.training.table`` (numeric and categorical columns, binary label) as Parquet in a
bucket. Run ``i`` registers version ``i``; deployment ``i`` deploys version ``i`` (the first one
onto an empty endpoint at 100%, the next ones as a canary, then promoted). Prints each run and the
medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.training_run", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--family", default="hist_gradient_boosting")
    args = p.parse_args(argv)

    from bench.training import table
    from pipelines import storage_io
    from pipelines.compile import compile_all
    from pipelines.components.data import to_bytes
    from pipelines.local_run import run_pipeline
    from stack.emulators import start_fake_gcs
    from stack.vertex import VertexEmulator

    print(f"cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(tmp)
        gcs = start_fake_gcs(work / "gcs")
        try:
            os.environ.update(
                {
                    "STORAGE_EMULATOR_HOST": gcs.host,
                    "GOOGLE_CLOUD_PROJECT": "bench-project",
                    "GOOGLE_CLOUD_REGION": "us-central1",
                    "MLOPS_STAGING_BUCKET": "bench-staging",
                    "MLOPS_SERVING_RECORDS_URI": "gs://bench-data/serving-records",
                }
            )
            for bucket in ("bench-data", "bench-staging"):
                storage_io.ensure_bucket(bucket)
            data = "gs://bench-data/incoming/bench/table.parquet"
            storage_io.write_bytes(data, to_bytes(table(args.rows, args.features), "parquet"))
            compile_all(work / "templates", names=["training", "deployment"])
            with VertexEmulator(work / "vertex", env={"STORAGE_EMULATOR_HOST": gcs.host}) as vertex:
                os.environ["VERTEX_API_ENDPOINT"] = vertex.url

                def run(name: str, **params: Any) -> float:
                    result = run_pipeline(
                        name, params, work / "root", template_dir=work / "templates", echo=lambda _: None
                    )
                    if not result.ok:
                        raise SystemExit(f"{name} failed at {result.failed_task}: {result.reason}")
                    return result.seconds

                trainings, deployments = [], []
                for i in range(1, args.reps + 1):
                    seconds = run("training", data_uri=data, model_name="bench", model_family=args.family)
                    trainings.append(seconds)
                    print(f"training run {i} ({args.rows} rows): {seconds:.2f} s", flush=True)
                for i in range(1, args.reps + 1):
                    seconds = run("deployment", model_name="bench", version=str(i))
                    deployments.append(seconds)
                    print(
                        f"deployment run {i} (v{i}{', canary' if i > 1 else ''}): {seconds:.2f} s", flush=True
                    )
        finally:
            gcs.stop()
    print(
        f"median of {args.reps}: training {statistics.median(trainings):.2f} s, "
        f"deployment {statistics.median(deployments):.2f} s (load now {os.getloadavg()[0]:.1f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
