"""Steps of training, retraining and evaluation: load, validate, split, train, evaluate, compare, register."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pipelines.components import data as data_mod
from pipelines.components.errors import (
    ComponentError,
    DataValidationError,
)
from pipelines.components.steps.common import (
    CHALLENGER,
    CHAMPION,
    _digest,
    _now,
    _registry,
    get_version,
    label_value,
)

# --- data ---------------------------------------------------------------------------------------


def load(data_uri: str, out_path: str) -> dict[str, Any]:
    frame = data_mod.load_dataset(data_uri)
    data_mod.write_frame(frame, out_path)
    print(f"loaded {len(frame)} rows x {frame.shape[1]} columns from {data_uri}")
    return {"rows": len(frame), "columns": [str(c) for c in frame.columns], "data_uri": data_uri}


def validate(
    dataset_path: str, *, model_name: str, label_column: str, task: str, min_rows: int, report_path: str
) -> dict[str, Any]:
    from pipelines.components import training, validation

    frame = data_mod.read_frame(dataset_path)
    reference_schema = None
    champion = get_version(model_name, CHAMPION, required=False)
    if champion is not None:
        reference_schema = training.load_metadata(champion.artifact_uri).get("schema")
    report = validation.validate(
        frame, label_column=label_column, task=task, min_rows=min_rows, reference_schema=reference_schema
    )
    if champion is not None:
        report.warnings.append(f"schema compared with champion v{champion.version}")
    with open(report_path, "w", encoding="utf-8") as fh:
        json.dump(report.to_dict(), fh, indent=2)
    text = report.render()
    print(text)
    if not report.ok:
        raise DataValidationError(text)
    return report.to_dict()


def split(
    dataset_path: str,
    *,
    label_column: str,
    task: str,
    test_fraction: float,
    seed: int,
    train_path: str,
    test_path: str,
) -> dict[str, int]:
    from pipelines.components import training

    train, test = training.split(
        data_mod.read_frame(dataset_path),
        label_column=label_column,
        task=task,
        test_fraction=test_fraction,
        seed=seed,
    )
    data_mod.write_frame(train, train_path)
    data_mod.write_frame(test, test_path)
    print(f"split: {len(train)} training rows, {len(test)} holdout rows")
    return {"train_rows": len(train), "test_rows": len(test)}


# --- training -----------------------------------------------------------------------------------


def train(
    train_path: str,
    test_path: str,
    *,
    label_column: str,
    task: str,
    model_family: str,
    hyperparameters: Mapping[str, Any],
    seed: int,
    data_uri: str,
    model_dir: str,
    model_uri: str,
) -> dict[str, Any]:
    import shutil

    from pipelines.components import training, validation

    train_frame = data_mod.read_frame(train_path)
    estimator, features = training.fit(
        train_frame,
        label_column=label_column,
        task=task,
        model_family=model_family,
        hyperparameters=hyperparameters,
        seed=seed,
    )
    os.makedirs(model_dir, exist_ok=True)
    sample = train_frame.sample(min(len(train_frame), training.REFERENCE_ROWS), random_state=seed)
    data_mod.write_frame(sample, os.path.join(model_dir, training.REFERENCE_FILE))
    shutil.copyfile(test_path, os.path.join(model_dir, training.HOLDOUT_FILE))
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(estimator, "classes_", [])]
    metadata = {
        "feature_names": features,
        "task": task,
        "label_column": label_column,
        "model_family": model_family,
        "hyperparameters": dict(hyperparameters),
        "metrics": {},
        "data_uris": data_mod.split_uris(data_uri),
        # Relative to the model folder: the registry may stage the folder elsewhere (a local
        # folder under kfp.local is copied to Cloud Storage at upload).
        "reference_uri": training.REFERENCE_FILE,
        "holdout_uri": training.HOLDOUT_FILE,
        "schema": validation.infer_schema(train_frame),
        "classes": classes,
        "training_rows": len(train_frame),
        "trained_at": _now(),
    }
    training.save_model(model_dir, estimator, metadata)
    print(f"trained {model_family} ({task}) on {len(train_frame)} rows, {len(features)} features")
    return metadata


def evaluate(model_dir: str, test_path: str) -> dict[str, float]:
    from pipelines.components import evaluation, training

    estimator, metadata = training.load_model(model_dir)
    metrics = evaluation.score(
        estimator,
        data_mod.read_frame(test_path),
        label_column=metadata["label_column"],
        task=metadata["task"],
        feature_names=metadata["feature_names"],
    )
    print("holdout metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return metrics


def compare_with_champion(
    *,
    model_name: str,
    test_path: str,
    metrics: Mapping[str, float],
    task: str,
    metric_floor: float,
    promotion_margin: float,
    primary_metric: str = "",
) -> dict[str, Any]:
    """Score the current champion on the challenger's holdout and decide."""
    from pipelines.components import evaluation, gate, training

    metric = evaluation.primary_metric(task, dict(metrics), primary_metric)
    champion = get_version(model_name, CHAMPION, required=False)
    champion_score = None
    if champion is not None:
        estimator, meta = training.load_model(champion.artifact_uri)
        holdout = data_mod.read_frame(test_path)
        champ_metrics = evaluation.score(
            estimator,
            holdout,
            label_column=meta["label_column"],
            task=meta["task"],
            feature_names=meta["feature_names"],
        )
        champion_score = champ_metrics.get(metric)
        print(
            f"champion v{champion.version} on the same holdout: "
            + ", ".join(f"{k}={v:.4f}" for k, v in champ_metrics.items())
        )
    decision = gate.decide(
        metric=metric,
        challenger=float(metrics[metric]),
        champion=champion_score,
        champion_version=champion.version if champion else None,
        floor=metric_floor,
        margin=promotion_margin,
    )
    print(("PROMOTE: " if decision.promote else "KEEP CHAMPION: ") + "; ".join(decision.reasons))
    return decision.to_dict()


def register(
    *,
    model_name: str,
    model_uri: str,
    metrics: Mapping[str, float],
    decision: Mapping[str, Any],
    data_uri: str,
    trigger: str,
    run_id: str,
    alert_id: str = "",
    promotion: str = "auto",
) -> dict[str, Any]:
    """Register the version (alias ``challenger``); if the gate said so and promotion is ``auto``,
    move ``champion`` to it. With ``manual`` promotion the version waits as ``challenger`` with its
    comparison recorded, until a person moves ``champion`` (console or ``mlops-events promote``)."""
    if promotion not in ("auto", "manual"):
        raise ComponentError(f"promotion must be 'auto' or 'manual', got {promotion!r}")
    from pipelines import storage_io
    from pipelines.components import training

    meta_uri = training.join_uri(model_uri, training.METADATA_FILE)
    metadata = json.loads(storage_io.read_text(meta_uri))
    metadata["metrics"] = dict(metrics)
    metadata["gate"] = dict(decision)
    metadata["promotion"] = promotion
    storage_io.write_text(meta_uri, json.dumps(metadata, indent=2, sort_keys=True, default=str))
    labels = {
        "trigger": label_value(_digest(trigger)[:16]) if trigger else "manual",
        "run_id": label_value(run_id),
        "data_digest": _digest(data_uri)[:16],
        "model_family": label_value(metadata["model_family"]),
        **{f"metric_{k}": label_value(f"{v:.4f}".replace(".", "_")) for k, v in metrics.items()},
    }
    if alert_id:
        labels["alert_id"] = label_value(alert_id)
    registry = _registry()
    version = registry.register(
        model_name,
        model_uri,
        labels=labels,
        metrics=dict(metrics),
        aliases=[CHALLENGER],
        description=f"data: {data_uri}; trigger: {trigger or 'manual'}"
        + (f"; alert: {alert_id}" if alert_id else ""),
    )
    promoted = bool(decision["promote"]) and promotion == "auto"
    if promoted:
        version = registry.set_alias(model_name, version.version, CHAMPION)
    reasons = list(decision["reasons"])
    if promotion == "manual":
        verdict = "would pass" if decision["promote"] else "does not pass"
        reasons.append(f"promotion is manual: the gate {verdict}; awaiting approval (mlops-events promote)")
    summary = {
        "model_name": model_name,
        "version": version.version,
        "aliases": list(version.aliases),
        "promoted": promoted,
        "promotion": promotion,
        "reasons": reasons,
        "metrics": dict(metrics),
        "artifact_uri": model_uri,
    }
    if alert_id:
        summary["alert_id"] = alert_id
    print(f"registered {model_name} v{version.version} with aliases {', '.join(version.aliases)}")
    return summary


def retraining_window(*, model_name: str, data_uri: str, reference_uri: str) -> str:
    """The data of a retraining run: the newest data plus a reference window.

    Empty ``data_uri``: the dataset files now in the folders the champion was trained from that
    are this model's data (they hold its feature and label columns); other files there are left
    out and listed, never merged silently. Empty ``reference_uri``: the champion's training data.
    """
    from pipelines.components import training

    given = data_mod.split_uris(data_uri) + data_mod.split_uris(reference_uri)
    found: list[str] = []
    for uri in given:
        found += data_mod.expand(uri)
    if not data_uri or not reference_uri:
        champion = get_version(model_name, CHAMPION, required=False)
        if champion is None:
            if not given:
                raise ComponentError(f"model {model_name!r} has no champion: give data_uri for retraining")
        else:
            meta = training.load_metadata(champion.artifact_uri)
            trained_on = list(meta.get("data_uris", []))
            if not reference_uri:
                found += trained_on
            if not data_uri:
                needed = [*meta.get("feature_names", []), meta.get("label_column", "")]
                found += _own_data(trained_on, [c for c in needed if c], exclude=set(found))
    window = list(dict.fromkeys(found))  # keep order, drop repeats
    if not window:
        raise ComponentError(f"no data found for retraining {model_name!r}")
    print("retraining window:\n" + "\n".join(f"  {u}" for u in window))
    return ",".join(window)


def _own_data(trained_on: list[str], columns: list[str], *, exclude: set[str]) -> list[str]:
    """Files in the folders of ``trained_on`` that hold every one of ``columns``."""
    folders = list(dict.fromkeys(u.rsplit("/", 1)[0] + "/" for u in trained_on if "/" in u))
    kept: list[str] = []
    for folder in folders:
        for uri in data_mod.expand(folder):
            if uri in exclude:
                continue
            missing = [c for c in columns if c not in data_mod.columns_of(uri)]
            if missing:
                print(f"  left out {uri}: not this model's data (lacks {', '.join(missing[:5])})")
            else:
                kept.append(uri)
    return kept


# --- evaluation of a registered version ------------------------------------------------------------


def evaluate_version(*, model_name: str, version: str, data_uri: str, label_column: str) -> dict[str, Any]:
    from pipelines.components import evaluation, training

    mv = get_version(model_name, version)
    assert mv is not None
    estimator, meta = training.load_model(mv.artifact_uri)
    if data_uri:
        frame = data_mod.load_dataset(data_uri)
    else:
        holdout = meta.get("holdout_uri")
        if not holdout:
            raise ComponentError(f"{model_name} v{mv.version} records no holdout: give data_uri")
        frame = data_mod.read_table(training.resolve_uri(holdout, mv.artifact_uri))
    label = label_column or meta["label_column"]
    if label not in frame.columns:
        raise ComponentError(f"evaluation data lacks the label column {label!r}")
    metrics = evaluation.score(
        estimator, frame, label_column=label, task=meta["task"], feature_names=meta["feature_names"]
    )
    print(
        f"{model_name} v{mv.version} on {data_uri or 'its holdout'} ({len(frame)} rows): "
        + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
    )
    return {"model_name": model_name, "version": mv.version, "rows": len(frame), "metrics": metrics}
