"""The step of batch prediction."""

from __future__ import annotations

from typing import Any

from pipelines.components import data as data_mod
from pipelines.components.steps.common import (
    get_version,
)

# --- batch prediction ---------------------------------------------------------------------------


def batch_predict(*, model_name: str, version: str, data_uri: str, output_uri: str) -> dict[str, Any]:
    from pipelines import storage_io
    from pipelines.components import predict, training

    mv = get_version(model_name, version)
    assert mv is not None
    estimator, meta = training.load_model(mv.artifact_uri)
    frame = data_mod.load_dataset(data_uri)
    scored = predict.predict_frame(estimator, meta, frame)
    target = output_uri or predict.default_output_uri(data_uri)
    storage_io.write_bytes(target, data_mod.to_bytes(scored, data_mod.data_format(target)))
    print(f"scored {len(scored)} rows with {model_name} v{mv.version}; wrote {target}")
    return {"model_name": model_name, "version": mv.version, "rows": len(scored), "output_uri": target}
