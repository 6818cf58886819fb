"""Endpoints: Vertex AI Endpoints (``vertex``) and the local prediction server (``local``, ``server``).

Model artifact format (what training writes and every endpoint loads)
----------------------------------------------------------------------
A model artifact is a directory (local path) or prefix (``gs://...``) holding:

- ``model.joblib``: the fitted scikit-learn estimator (a Pipeline is fine), saved with
  ``joblib.dump``. Vertex's prebuilt scikit-learn image loads this same file name.
- ``metadata.json``: ``{"feature_names": [...], "task": "classification" | "regression",
  "label_column": "<label>"}`` (more keys are allowed and kept). Predictions are made on a
  DataFrame with exactly ``feature_names`` as columns, in that order.

Prediction requests
-------------------
``POST /v1/endpoints/<endpoint>:predict`` with ``{"instances": [...], "version": "2"?,
"request_id": "..."?}``. An instance is an object ``{feature: value}`` or a list in
``feature_names`` order. Without ``version`` the request goes to a version chosen by the traffic
split, deterministically from the request id (``X-Request-Id`` header, ``request_id``, or a new
uuid). Answer: ``{"predictions": [...], "model": "<name>", "modelVersionId": "<v>",
"deployedModelId": "<v>", "requestId": "..."}``.

Serving logs (what ``monitoring`` reads)
----------------------------------------
Each request is written as one JSONL object at
``<registry root>/serving/<endpoint>/<YYYY-MM-DD>/<timestamp>-<uuid>.jsonl``, one line per instance::

    {"timestamp": "2025-01-01T12:00:00.123456+00:00", "request_id": "...", "endpoint": "iris",
     "model_name": "iris", "version": "2", "instance": {"sepal_length": 5.1, ...}, "prediction": 0}

``instance`` always has the feature names as keys (list instances are named on the way in).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

MODEL_FILE: Final = "model.joblib"
METADATA_FILE: Final = "metadata.json"


def route(request_id: str, traffic: Mapping[str, int]) -> str | None:
    """The version that serves ``request_id`` under ``traffic`` (version -> percent), or None.

    Deterministic: a request id maps to a bucket 0..99 by hash, buckets are handed out to versions
    in version order, so a 90/10 split sends 90% of distinct ids to the first version.
    """
    live = sorted(((v, p) for v, p in traffic.items() if p > 0), key=lambda vp: _version_key(vp[0]))
    if not live:
        return None
    bucket = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") % 100
    total = sum(p for _, p in live)
    point = bucket * total / 100  # tolerate splits that do not add up to 100
    cumulative = 0
    for version, percent in live:
        cumulative += percent
        if point < cumulative:
            return version
    return live[-1][0]


def rescale(traffic: Mapping[str, int], version: str, percent: int) -> dict[str, int]:
    """Give ``version`` ``percent`` of the traffic and scale the others to share the rest in
    proportion to their current shares (Vertex's behaviour for ``deploy(traffic_percentage=)``).
    Totals are exactly 100 (largest remainder). An endpoint with no other live version gives the
    new one 100."""
    if not 0 <= percent <= 100:
        raise ValueError(f"traffic percent must be within 0..100, got {percent}")
    others = {v: p for v, p in traffic.items() if v != version}
    live_total = sum(p for p in others.values() if p > 0)
    if live_total == 0:
        return {**dict.fromkeys(others, 0), version: 100}
    rest = 100 - percent
    exact = {v: p * rest / live_total for v, p in others.items()}
    out = {v: int(x) for v, x in exact.items()}
    short = rest - sum(out.values())
    for v in sorted(exact, key=lambda v: (-(exact[v] - int(exact[v])), _version_key(v)))[:short]:
        out[v] += 1
    out[version] = percent
    return out


def check_traffic(traffic: Mapping[str, int], deployed: set[str] | frozenset[str]) -> dict[str, int]:
    """Validate a full traffic split: deployed versions, non-negative ints, summing to 100."""
    problems = []
    for v, p in traffic.items():
        if v not in deployed:
            problems.append(f"version {v!r} is not deployed (deployed: {sorted(deployed, key=_version_key)})")
        if not isinstance(p, int) or isinstance(p, bool) or p < 0:
            problems.append(f"traffic of version {v!r} must be a non-negative int, got {p!r}")
    if not problems and sum(traffic.values()) != 100:
        problems.append(f"traffic must add up to 100, got {sum(traffic.values())}: {dict(traffic)}")
    if problems:
        raise ValueError("; ".join(problems))
    return {**dict.fromkeys(deployed, 0), **traffic}


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)
