from __future__ import annotations

import io
import json
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines import backends, storage_io
from pipelines.ports import ModelVersion
from pipelines.serving import check_traffic, rescale, route
from pipelines.serving.local import EndpointError, LocalEndpoint, read_serving_records


def test_route_is_deterministic_and_follows_the_split() -> None:
    traffic = {"1": 90, "2": 10}
    ids = [f"req-{i}" for i in range(2000)]
    counts = Counter(route(i, traffic) for i in ids)
    assert 0.86 < counts["1"] / len(ids) < 0.94
    assert all(route(i, traffic) == route(i, dict(reversed(traffic.items()))) for i in ids[:50])
    assert route("x", {"1": 0}) is None and route("x", {"3": 100}) == "3"


def test_rescale_and_check_traffic() -> None:
    assert rescale({}, "1", 10) == {"1": 100}  # the only version takes everything
    assert rescale({"1": 100}, "2", 10) == {"1": 90, "2": 10}
    assert rescale({"1": 50, "2": 50}, "3", 25) == {"1": 38, "2": 37, "3": 25}
    assert sum(rescale({"1": 33, "2": 33, "3": 34}, "4", 1).values()) == 100
    assert check_traffic({"2": 100}, frozenset({"1", "2"})) == {"1": 0, "2": 100}
    with pytest.raises(ValueError, match="add up to 100"):
        check_traffic({"1": 50}, frozenset({"1"}))
    with pytest.raises(ValueError, match="not deployed"):
        check_traffic({"9": 100}, frozenset({"1"}))


def _write_model(uri: str, constant_class: int) -> None:
    """A real sklearn classifier in the artifact format that always predicts ``constant_class``."""
    import joblib
    from sklearn.dummy import DummyClassifier

    features = ["x1", "x2"]
    import pandas as pd

    frame = pd.DataFrame({"x1": [0.0, 1.0], "x2": [1.0, 0.0]})
    model = DummyClassifier(strategy="constant", constant=constant_class).fit(frame, [0, 1])
    buf = io.BytesIO()
    joblib.dump(model, buf)
    storage_io.write_bytes(storage_io.join(uri, "model.joblib"), buf.getvalue())
    meta = {"feature_names": features, "task": "classification", "label_column": "y"}
    storage_io.write_text(storage_io.join(uri, "metadata.json"), json.dumps(meta))


def test_endpoint_state_and_in_process_predictions(tmp_path: Path) -> None:
    root = str(tmp_path / "registry")
    for v in (1, 2):
        _write_model(str(tmp_path / "models" / str(v)), constant_class=v - 1)
    endpoint = LocalEndpoint("iris", root)
    m1 = ModelVersion("iris", "1", str(tmp_path / "models" / "1"))
    m2 = ModelVersion("iris", "2", str(tmp_path / "models" / "2"))
    assert endpoint.deploy(m1, traffic_percent=0).traffic == {"1": 100}
    assert endpoint.deploy(m2, traffic_percent=10).traffic == {"1": 90, "2": 10}
    assert endpoint.predict([{"x1": 1, "x2": 2}], version="2") == [1]
    assert endpoint.predict([[1, 2]], version="1") == [0]  # type: ignore[list-item]
    with pytest.raises(EndpointError, match=r"lacks feature\(s\) \['x2'\]"):
        endpoint.predict([{"x1": 1}])
    assert endpoint.set_traffic({"2": 100}).traffic == {"1": 0, "2": 100}
    assert endpoint.undeploy("2").traffic == {"1": 0}
    assert endpoint.describe().deployed == ("1",)
    records = read_serving_records(root, "iris")
    assert {r["version"] for r in records} == {"1", "2"} and records[0]["instance"].keys() == {"x1", "x2"}


@pytest.fixture
def prediction_server(gcs_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from pipelines.serving.server import serve

    handle = serve()
    monkeypatch.setenv("MLOPS_ENDPOINT_URL", handle.url)
    yield handle.url
    handle.stop()


def _post(url: str, body: dict[str, Any], request_id: str) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "X-Request-Id": request_id},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
        return answer


@pytest.mark.slow
def test_prediction_server_splits_traffic_and_logs_requests(gcs_env: str, prediction_server: str) -> None:
    registry = backends.model_registry()
    for v in (1, 2):
        uri = f"gs://{gcs_env}/models/iris/{v}"
        _write_model(uri, constant_class=v - 1)
        registry.register("iris", uri, labels={}, metrics={})
    endpoint = backends.endpoint("iris")
    endpoint.deploy(registry.get("iris", "1"), traffic_percent=100)  # type: ignore[arg-type]
    endpoint.deploy(registry.get("iris", "2"), traffic_percent=10)  # type: ignore[arg-type]

    url = f"{prediction_server}/v1/endpoints/iris:predict"
    n = 150
    served: Counter[str] = Counter()
    for i in range(n):
        answer = _post(url, {"instances": [{"x1": i, "x2": 0.5}]}, request_id=f"r-{i}")
        assert answer["predictions"] == [int(answer["modelVersionId"]) - 1]  # the routed model answered
        served[answer["modelVersionId"]] += 1
    assert served["1"] + served["2"] == n and 0.8 < served["1"] / n < 0.97
    assert endpoint.predict([{"x1": 0, "x2": 0}], version="2") == [1]  # through the port, over HTTP

    records = read_serving_records(backends.registry_root(), "iris")
    assert len(records) == n + 1
    assert Counter(r["version"] for r in records) == served + Counter({"2": 1})
    first = next(r for r in records if r["request_id"] == "r-0")
    assert first["instance"] == {"x1": 0, "x2": 0.5} and first["model_name"] == "iris"
    day_prefixes = {
        u.split("/serving/iris/")[1].split("/")[0] for u in storage_io.list_uris(f"gs://{gcs_env}/serving/")
    }
    assert len(day_prefixes) >= 1

    with pytest.raises(urllib.error.HTTPError) as err:
        _post(f"{prediction_server}/v1/endpoints/nothing:predict", {"instances": [[1, 2]]}, str(uuid.uuid4()))
    assert err.value.code == 503
