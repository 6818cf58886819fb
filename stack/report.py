"""The demo's HTML report: one self-contained file (inline SVG and CSS, no external assets).

Sections: the lineage graph (events -> runs -> model versions -> deployments), the lineage as
text, champion vs challenger metrics, drift per feature.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stack.lineage import Lineage

_COLORS = {"event": "#e8f0fe", "run": "#fef7e0", "version": "#e6f4ea", "endpoint": "#fce8e6"}
_BORDER = {"event": "#4285f4", "run": "#f9ab00", "version": "#34a853", "endpoint": "#ea4335"}
NODE_W, NODE_H, COL_GAP, ROW_GAP = 190, 46, 40, 14


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _node_text(lineage: Lineage, node_id: str) -> tuple[str, str]:
    kind, _, key = node_id.partition(":")
    if kind == "event":
        event = next(e for e in lineage.events if e.event_id == key)
        subject = event.subject or event.identity
        return f"{event.kind} event", subject.rsplit("/", 1)[-1][:30]
    if kind == "run":
        run = lineage.runs[key]
        return f"{run.pipeline} run", run.state
    if kind == "version":
        version = lineage.versions.get(key)
        aliases = ", ".join(version.aliases) if version else ""
        return f"model {key}", aliases
    endpoint = lineage.endpoints.get(key)
    traffic = ", ".join(f"v{v}:{p}%" for v, p in endpoint.traffic.items() if p) if endpoint else ""
    return f"endpoint {key}", traffic


def lineage_svg(lineage: Lineage) -> str:
    """Layered drawing: a node's column is its depth from the root events."""
    edges = lineage.edges()
    nodes: list[str] = [f"event:{e.event_id}" for e in lineage.roots()]
    for a, b in edges:
        for n in (a, b):
            if n not in nodes:
                nodes.append(n)
    depth = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):  # longest path; the graph is a small DAG
        changed = False
        for a, b in edges:
            if depth[b] < depth[a] + 1:
                depth[b] = depth[a] + 1
                changed = True
        if not changed:
            break
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(depth[n], []).append(n)
    pos: dict[str, tuple[int, int]] = {}
    for col, members in columns.items():
        for row, n in enumerate(members):
            pos[n] = (10 + col * (NODE_W + COL_GAP), 10 + row * (NODE_H + ROW_GAP))
    width = 20 + (max(columns, default=0) + 1) * (NODE_W + COL_GAP)
    height = 20 + max((len(m) for m in columns.values()), default=1) * (NODE_H + ROW_GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>',
    ]
    for a, b in edges:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        parts.append(
            f'<line x1="{x1 + NODE_W}" y1="{y1 + NODE_H // 2}" x2="{x2}" y2="{y2 + NODE_H // 2}" '
            'stroke="#666" marker-end="url(#arrow)"/>'
        )
    for n in nodes:
        x, y = pos[n]
        kind = n.split(":", 1)[0]
        title, sub = _node_text(lineage, n)
        parts.append(
            f'<g><title>{_esc(n)}</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" '
            f'fill="{_COLORS[kind]}" stroke="{_BORDER[kind]}"/>'
            f'<text x="{x + 8}" y="{y + 18}" font-weight="bold">{_esc(title[:32])}</text>'
            f'<text x="{x + 8}" y="{y + 35}">{_esc(sub[:34])}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _metrics_table(lineage: Lineage) -> str:
    versions = sorted(
        lineage.versions.values(), key=lambda v: (v.model, int(v.version) if v.version.isdigit() else 0)
    )
    if not versions:
        return "<p>No model versions.</p>"
    names = sorted({k for v in versions for k in v.metrics})
    head = "".join(f"<th>{_esc(n)}</th>" for n in names)
    rows = []
    for v in versions:
        cells = "".join(f"<td>{v.metrics[n]:.4f}</td>" if n in v.metrics else "<td></td>" for n in names)
        verdict = "promoted" if v.promoted else "kept the champion" if v.promoted is False else ""
        rows.append(
            f"<tr><td>{_esc(v.key)}</td><td>{_esc(', '.join(v.aliases))}</td>{cells}"
            f"<td>{_esc(verdict)}</td><td>{_esc('; '.join(v.reasons))}</td><td><code>{_esc(v.job_id or '')}</code></td></tr>"
        )
    return (
        f"<table><tr><th>version</th><th>aliases</th>{head}<th>gate</th><th>why</th><th>run</th></tr>"
        + "".join(rows)
        + "</table><p>Metrics are each version's holdout scores; the gate scores the champion on the "
        "challenger's holdout (the reasons above).</p>"
    )


def _drift_section(report: Mapping[str, Any] | None) -> str:
    if not report:
        return "<p>No monitoring run with a drift report.</p>"
    threshold = float(report.get("threshold", 0.2))
    features = list(report.get("features") or [])
    top = max([threshold * 2, *(float(f.get("psi", 0)) for f in features)])
    bar_w = 360
    rows = []
    for f in features:
        psi = float(f.get("psi", 0))
        width = int(bar_w * min(psi, top) / top) if top else 0
        color = "#ea4335" if f.get("drifted") else "#34a853"
        extra = ", ".join(
            f"{k}={v:.4f}"
            for k, v in f.items()
            if k not in ("feature", "psi", "drifted") and isinstance(v, float)
        )
        rows.append(
            f"<tr><td>{_esc(f.get('feature'))}</td><td>{psi:.4f}</td>"
            f'<td><svg width="{bar_w}" height="14"><rect width="{width}" height="14" fill="{color}"/>'
            f'<line x1="{int(bar_w * threshold / top)}" x2="{int(bar_w * threshold / top)}" y1="0" y2="14" '
            f'stroke="#000" stroke-dasharray="2,2"/></svg></td><td>{"DRIFT" if f.get("drifted") else ""}</td>'
            f"<td>{_esc(extra)}</td></tr>"
        )
    window = report.get("window") or {}
    return (
        f"<p>Model {_esc(report.get('model_name'))} champion v{_esc(report.get('champion_version'))}; serving window "
        f"{_esc(window.get('start'))} .. {_esc(window.get('end'))}; PSI threshold {threshold} (dashed line).</p>"
        "<table><tr><th>feature</th><th>PSI</th><th></th><th></th><th>other statistics</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def write_report(
    lineage: Lineage, path: Path, *, title: str = "mlops-events demo", elapsed_s: float | None = None
) -> Path:
    drift = next((r.drift_report() for r in lineage.runs.values() if r.pipeline == "monitoring"), None)
    summary = "\n".join(lineage.summary())
    took = f" in {elapsed_s:.0f} s" if elapsed_s is not None else ""
    doc = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{_esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #202124; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #dadce0; padding: 4px 8px; font-size: 13px; text-align: left; vertical-align: top; }}
pre {{ background: #f8f9fa; padding: 1em; overflow-x: auto; font-size: 12px; }}
.graph {{ overflow-x: auto; border: 1px solid #dadce0; padding: 8px; }}
</style></head><body>
<h1>{_esc(title)}</h1>
<p>Generated {time.strftime("%Y-%m-%d %H:%M:%S")}{took}. {len(lineage.events)} events, {len(lineage.runs)} runs,
{len(lineage.versions)} model versions, {len(lineage.endpoints)} endpoints.</p>
<h2>Lineage</h2>
<div class="graph">{lineage_svg(lineage)}</div>
<pre>{_esc(summary)}</pre>
<h2>Champion vs challenger</h2>
{_metrics_table(lineage)}
<h2>Drift per feature</h2>
{_drift_section(drift)}
</body></html>
"""
    path.write_text(doc, encoding="utf-8")
    return path
