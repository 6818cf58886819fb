"""What the served model answers: instance shapes, errors naming instance and feature, probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.components import training
from pipelines.serving.predictor import InstanceError, ServedModel
from tests.pipelines.datasets import generated
from tests.serving.conftest import FEATURES


@pytest.fixture(scope="module")
def model(classifier_dir: Path) -> ServedModel:
    return ServedModel.load(str(classifier_dir))


def test_object_and_array_instances_give_the_estimators_own_answers(model: ServedModel) -> None:
    frame = generated(20, seed=11)
    objects = frame.to_dict(orient="records")  # label column and all: it is ignored
    arrays = frame[FEATURES].to_numpy().tolist()
    estimator, meta = training.load_model(model.artifact_uri)
    X = training.features_of(frame, meta["feature_names"])
    expected_labels = estimator.predict(X).tolist()
    expected_proba = estimator.predict_proba(X)
    for instances in (objects, arrays):
        predictions = model.predict(model.named(instances))
        assert [p["prediction"] for p in predictions] == expected_labels
        for p, row in zip(predictions, expected_proba, strict=True):
            assert set(p["probabilities"]) == {"0", "1"}
            assert p["probabilities"]["1"] == pytest.approx(row[1], abs=1e-6)
            assert sum(p["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_the_label_column_and_unknown_keys_are_not_kept(model: ServedModel) -> None:
    rows = model.named([{"plan": "pro", "tenure": 2.0, "usage": 12.0, "target": 1, "customer_id": "c1"}])
    assert rows == [{"usage": 12.0, "tenure": 2.0, "plan": "pro"}]


def test_nulls_are_missing_values_the_imputer_fills(model: ServedModel) -> None:
    (p,) = model.predict(model.named([{"usage": None, "tenure": 2.0, "plan": None}]))
    assert p["prediction"] in (0, 1)


@pytest.mark.parametrize(
    ("instances", "message"),
    [
        (
            [{"usage": 1.0, "tenure": 2.0, "plan": "pro"}, {"usage": 1.0, "plan": "pro"}],
            "instance 1 lacks feature(s) 'tenure'",
        ),
        ([[1.0, 2.0]], "instance 0 has 2 values; the model takes 3, in this order: usage, tenure, plan"),
        (
            [{"usage": "lots", "tenure": 2.0, "plan": "pro"}],
            "instance 0: feature 'usage' must be a number or null, got 'lots'",
        ),
        (
            [{"usage": True, "tenure": 2.0, "plan": "pro"}],
            "feature 'usage' must be a number or null, got True",
        ),
        ([{"usage": 1.0, "tenure": 2.0, "plan": ["pro"]}], "feature 'plan' must be a string, number or null"),
        (["usage=1"], "instance 0 must be an object {feature: value} or an array in feature order, got str"),
    ],
)
def test_bad_instances_name_the_instance_and_the_feature(
    model: ServedModel, instances: list, message: str
) -> None:
    with pytest.raises(InstanceError) as info:
        model.named(instances)
    assert message in str(info.value)


def test_several_problems_are_listed_together(model: ServedModel) -> None:
    with pytest.raises(InstanceError) as info:
        model.named([{"usage": 1.0}, [1.0], {"tenure": 1.0, "usage": 2.0, "plan": "x"}, {}])
    text = str(info.value)
    assert "instance 0 lacks feature(s) 'tenure', 'plan'" in text
    assert "instance 1 has 1 values" in text
    assert "instance 3 lacks" in text and "instance 2" not in text


def test_regression_answers_numbers(regressor_dir: Path) -> None:
    model = ServedModel.load(str(regressor_dir))
    predictions = model.predict(
        model.named([[10.0, 3.0, "pro"], {"usage": 10.0, "tenure": 3.0, "plan": "basic"}])
    )
    assert all(isinstance(p, float) for p in predictions)
    assert predictions[0] - predictions[1] == pytest.approx(5.0, abs=0.01)  # target = 2 usage + 5 pro


def test_array_instances_work_where_the_prebuilt_sklearn_image_fails(model: ServedModel) -> None:
    """Vertex's prebuilt image calls ``predict(np.asarray(instances))``: the artifact's
    ColumnTransformer selects columns by name and refuses a plain array. The container names them."""
    estimator, _ = training.load_model(model.artifact_uri)
    instances = [[12.0, 3.0, "pro"], [8.0, 30.0, "basic"]]
    with pytest.raises(ValueError, match="Specifying the columns using strings is only supported for"):
        estimator.predict(np.asarray(instances, dtype=object))
    numeric_only = [[12.0, 3.0, 0.0]]
    with pytest.raises(ValueError, match="Specifying the columns using strings"):
        estimator.predict(np.asarray(numeric_only))
    predictions = model.predict(model.named(instances))
    assert [set(p) for p in predictions] == [{"prediction", "probabilities"}] * 2
