"""Split, train, evaluate and the champion/challenger gate, as plain functions (no kfp)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.components import evaluation, gate, training
from pipelines.components.errors import ComponentError
from tests.pipelines.datasets import breast_cancer, generated


def test_classification_families_score_well_on_real_data() -> None:
    train, test = training.split(
        breast_cancer(), label_column="target", task="classification", test_fraction=0.25, seed=0
    )
    assert (len(train), len(test)) == (426, 143)
    for family in ("gradient_boosting", "random_forest", "logistic_regression"):
        est, features = training.fit(
            train,
            label_column="target",
            task="classification",
            model_family=family,
            hyperparameters={},
            seed=0,
        )
        metrics = evaluation.score(
            est, test, label_column="target", task="classification", feature_names=features
        )
        assert set(metrics) == {"accuracy", "f1", "roc_auc"}
        assert metrics["roc_auc"] > 0.95, (family, metrics)


def test_regression_with_a_categorical_feature() -> None:
    frame = generated(300, seed=1)
    frame["target"] = frame["usage"] * 2 + (frame["plan"] == "pro") * 5
    train, test = training.split(frame, label_column="target", task="regression", test_fraction=0.3, seed=0)
    est, features = training.fit(
        train,
        label_column="target",
        task="regression",
        model_family="linear_regression",
        hyperparameters={},
        seed=0,
    )
    metrics = evaluation.score(est, test, label_column="target", task="regression", feature_names=features)
    assert set(metrics) == {"rmse", "mae", "r2"}
    assert metrics["r2"] > 0.99
    assert evaluation.primary_metric("regression", metrics) == "r2"


def test_struct_floats_become_ints_only_where_the_estimator_wants_ints() -> None:
    from sklearn.ensemble import RandomForestClassifier

    params = training.restore_ints(
        RandomForestClassifier, {"n_estimators": 5.0, "max_depth": 2.0, "max_features": 1.0}
    )
    assert params == {"n_estimators": 5, "max_depth": 2, "max_features": 1.0}
    assert type(params["n_estimators"]) is int and type(params["max_features"]) is float


@pytest.mark.parametrize(
    ("family", "task", "hyper", "message"),
    [
        ("xgboost", "classification", {}, "model_family must be one of"),
        ("linear_regression", "classification", {}, "does not do classification"),
        (
            "random_forest",
            "classification",
            {"n_trees": 3},
            "unknown hyperparameters for random_forest: n_trees",
        ),
    ],
)
def test_bad_model_choices_are_named(family: str, task: str, hyper: dict[str, object], message: str) -> None:
    with pytest.raises(ComponentError, match=message):
        training.fit(
            generated(40, seed=1),
            label_column="target",
            task=task,
            model_family=family,
            hyperparameters=hyper,
            seed=0,
        )


def test_model_artifact_round_trip(tmp_path: Path) -> None:
    frame = generated(80, seed=2)
    est, features = training.fit(
        frame,
        label_column="target",
        task="classification",
        model_family="random_forest",
        hyperparameters={"n_estimators": 5},
        seed=0,
    )
    training.save_model(
        str(tmp_path / "m"),
        est,
        {"feature_names": features, "task": "classification", "label_column": "target"},
    )
    loaded, meta = training.load_model(str(tmp_path / "m"))
    assert meta["feature_names"] == ["usage", "tenure", "plan"]
    assert list(loaded.predict(training.features_of(frame, features))) == list(
        est.predict(training.features_of(frame, features))
    )
    with pytest.raises(ComponentError, match=r"has no metadata\.json"):
        training.load_model(str(tmp_path / "missing"))


def test_first_model_is_promoted_when_it_passes_the_floor() -> None:
    d = gate.decide(
        metric="roc_auc", challenger=0.9, champion=None, champion_version=None, floor=0.5, margin=0.0
    )
    assert d.promote
    assert d.reasons == ["no current champion", "roc_auc 0.9000 passes the floor 0.5000"]
    assert "champion" not in d.to_dict()  # no nulls in a KFP struct


@pytest.mark.parametrize(
    ("challenger", "champion", "margin", "floor", "promote"),
    [
        (0.95, 0.90, 0.0, 0.5, True),
        (0.90, 0.90, 0.0, 0.5, False),  # a tie keeps the incumbent
        (0.92, 0.90, 0.05, 0.5, False),  # better, but not by the margin
        (0.40, None, 0.0, 0.5, False),  # below the floor, even with no champion
        (0.85, 0.95, 0.0, 0.5, False),  # worse never takes champion
    ],
)
def test_gate(challenger: float, champion: float | None, margin: float, floor: float, promote: bool) -> None:
    d = gate.decide(
        metric="roc_auc",
        challenger=challenger,
        champion=champion,
        champion_version="1",
        floor=floor,
        margin=margin,
    )
    assert d.promote is promote, d.reasons
