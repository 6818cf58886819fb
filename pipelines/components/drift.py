"""Per-feature drift between reference (training) data and recent serving data.

Population stability index (PSI) for numeric features (deciles of the reference) and categorical
ones (categories), plus a two-sample Kolmogorov-Smirnov test (numeric) or the Jensen-Shannon
distance (categorical). A feature drifts when its PSI is above the threshold; the usual reading is
< 0.1 stable, 0.1-0.2 moderate, > 0.2 significant.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pandas as pd

_EPS: Final = 1e-4  # floor for empty bins, so PSI stays finite
BINS: Final = 10


def _psi(ref_share: Any, cur_share: Any) -> float:
    import numpy as np

    ref = np.clip(np.asarray(ref_share, dtype=float), _EPS, None)
    cur = np.clip(np.asarray(cur_share, dtype=float), _EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_numeric(reference: pd.Series, current: pd.Series, bins: int = BINS) -> float:
    import numpy as np

    ref = reference.dropna().to_numpy(dtype=float)
    cur = current.dropna().to_numpy(dtype=float)
    if len(ref) == 0 or len(cur) == 0:
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # constant reference: one bin for the value, one for anything else
        return _psi([1.0, 0.0], [np.mean(cur == edges[0]), np.mean(cur != edges[0])])
    edges[0], edges[-1] = -np.inf, np.inf
    ref_counts = np.histogram(ref, edges)[0] / len(ref)
    cur_counts = np.histogram(cur, edges)[0] / len(cur)
    return _psi(ref_counts, cur_counts)


def _shares(reference: pd.Series, current: pd.Series) -> tuple[list[float], list[float]]:
    ref = reference.dropna().astype(str).value_counts(normalize=True)
    cur = current.dropna().astype(str).value_counts(normalize=True)
    cats = sorted(set(ref.index) | set(cur.index))
    return [float(ref.get(c, 0.0)) for c in cats], [float(cur.get(c, 0.0)) for c in cats]


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    ref, cur = _shares(reference, current)
    return _psi(ref, cur) if ref else 0.0


def js_distance(reference: pd.Series, current: pd.Series) -> float:
    from scipy.spatial.distance import jensenshannon

    ref, cur = _shares(reference, current)
    if not ref or sum(ref) == 0 or sum(cur) == 0:
        return 0.0
    return float(jensenshannon(ref, cur, base=2))


def feature_drift(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], threshold: float
) -> dict[str, Any]:
    """The drift report: one entry per feature, which ones drifted, and whether any did."""
    from scipy.stats import ks_2samp

    from pipelines.components.validation import column_kind

    rows: list[dict[str, Any]] = []
    missing = [f for f in features if f not in current.columns or f not in reference.columns]
    for name in features:
        if name in missing:
            continue
        kind = column_kind(reference[name])
        entry: dict[str, Any] = {"feature": name, "kind": kind}
        cur = current[name]
        if kind == "numeric":
            cur = current[name].map(_as_float)
            entry["psi"] = round(psi_numeric(reference[name], cur), 6)
            ref_v, cur_v = reference[name].dropna(), cur.dropna()
            if len(ref_v) and len(cur_v):
                ks = ks_2samp(ref_v.to_numpy(dtype=float), cur_v.to_numpy(dtype=float))
                entry["ks_statistic"] = round(float(ks.statistic), 6)
                entry["ks_pvalue"] = float(ks.pvalue)
        else:
            entry["psi"] = round(psi_categorical(reference[name], cur), 6)
            entry["js_distance"] = round(js_distance(reference[name], cur), 6)
        entry["drifted"] = bool(entry["psi"] > threshold)
        rows.append(entry)
    drifted = [r["feature"] for r in rows if r["drifted"]]
    return {
        "threshold": threshold,
        "reference_rows": len(reference),
        "current_rows": len(current),
        "features": rows,
        "drifted_features": drifted,
        "missing_features": missing,
        "max_psi": max((r["psi"] for r in rows), default=0.0),
        "drift": bool(drifted),
    }


def _as_float(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def render_html(report: dict[str, Any], title: str) -> str:
    """A self-contained HTML page of the report (no scripts, values escaped)."""
    esc = html.escape
    head = "<tr><th>feature</th><th>kind</th><th>PSI</th><th>KS statistic</th><th>KS p-value</th><th>JS distance</th><th>drifted</th></tr>"
    body = []
    for r in report["features"]:
        style = ' style="background:#fdd"' if r["drifted"] else ""
        cells = [
            r["feature"],
            r["kind"],
            r.get("psi"),
            r.get("ks_statistic"),
            r.get("ks_pvalue"),
            r.get("js_distance"),
            r["drifted"],
        ]
        body.append(
            f"<tr{style}>" + "".join(f"<td>{esc('' if c is None else str(c))}</td>" for c in cells) + "</tr>"
        )
    verdict = (
        f"DRIFT in {len(report['drifted_features'])} feature(s): {', '.join(report['drifted_features'])}"
        if report["drift"]
        else "no drift"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title></head><body>"
        f"<h1>{esc(title)}</h1><p><b>{esc(verdict)}</b> (PSI threshold {report['threshold']}; "
        f"reference rows {report['reference_rows']}, serving rows {report['current_rows']})</p>"
        f"<table border='1' cellpadding='4'>{head}{''.join(body)}</table>"
        + (
            f"<p>Missing in serving data: {esc(', '.join(report['missing_features']))}</p>"
            if report["missing_features"]
            else ""
        )
        + "</body></html>"
    )
