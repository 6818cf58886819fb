"""Training cost per model family and data size: time, peak memory and AUC, measured side by side.

    python -m bench.training [--rows 10000,100000,1000000] [--families hist_gradient_boosting,gradient_boosting]
                             [--features 20] [--reps 3] [--json PATH]

Each (family, rows) pair is fitted in a fresh process (so peak RSS is that fit's own), with the
training step's own code (``training.split`` / ``training.fit`` / ``evaluation.score``: the same
preprocessing and split as the pipeline) on a generated classification table with numeric and
categorical columns. Prints medians; ``--json`` keeps every run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def table(rows: int, features: int, seed: int = 7) -> Any:
    """``features`` numeric columns (a few informative), two categorical ones, a binary label."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=max(2, features // 3),
        n_redundant=max(0, features // 5),
        flip_y=0.03,
        random_state=seed,
    )
    frame = pd.DataFrame(x.round(4), columns=[f"x{i}" for i in range(features)])
    rng = np.random.default_rng(seed)
    frame["plan"] = np.where(
        y == 1,
        rng.choice(["basic", "plus", "pro"], rows, p=[0.2, 0.3, 0.5]),
        rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2]),
    )
    frame["region"] = rng.choice([f"r{i}" for i in range(12)], rows)
    frame["target"] = y
    return frame


def fit_once(family: str, rows: int, features: int) -> dict[str, Any]:
    """One fit in this process (called in a child): seconds of split+fit, seconds of scoring, AUC."""
    from pipelines.components import evaluation, training

    frame = table(rows, features)
    started = time.perf_counter()
    train, test = training.split(
        frame, label_column="target", task="classification", test_fraction=0.25, seed=42
    )
    estimator, names = training.fit(
        train, label_column="target", task="classification", model_family=family, hyperparameters={}, seed=42
    )
    fit_s = time.perf_counter() - started
    scores = evaluation.score(
        estimator, test, label_column="target", task="classification", feature_names=names
    )
    return {
        "family": family,
        "rows": rows,
        "columns": features + 2,
        "fit_s": round(fit_s, 3),
        "roc_auc": round(scores["roc_auc"], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure(family: str, rows: int, features: int) -> dict[str, Any]:
    code = (
        "import json, sys; from bench.training import fit_once; "
        f"print(json.dumps(fit_once({family!r}, {rows}, {features})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="10000,100000,1000000")
    p.add_argument("--families", default="hist_gradient_boosting,gradient_boosting")
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    runs: list[dict[str, Any]] = []
    print(f"cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{'family':<24} {'rows':>9} {'fit s (median)':>15} {'peak MB':>9} {'roc_auc':>8}", flush=True)
    for rows in (int(r) for r in args.rows.split(",")):
        medians: dict[str, float] = {}
        for family in args.families.split(","):
            reps = [measure(family, rows, args.features) for _ in range(args.reps)]
            runs += reps
            fit = statistics.median(r["fit_s"] for r in reps)
            medians[family] = fit
            rss = statistics.median(r["peak_rss_mb"] for r in reps)
            print(f"{family:<24} {rows:>9} {fit:>15.2f} {rss:>9.0f} {reps[0]['roc_auc']:>8.4f}", flush=True)
        if len(medians) == 2:
            a, b = medians.values()
            print(f"{'  ratio':<24} {rows:>9} {b / a:>14.1f}x", flush=True)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
