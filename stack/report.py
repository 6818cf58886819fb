"""The demo's HTML report: one self-contained file (inline SVG and CSS, no external assets).

Sections: the lineage graph (events -> runs -> model versions -> deployments), the lineage as
text, champion vs challenger metrics, approvals (who decided what and why, by the audit log's
principal), drift per feature.
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
NODE_W, LINE_H, PAD, COL_GAP, ROW_GAP = 200, 14, 8, 16, 36
# The graph is laid out top-down, one band per depth, a band wrapping onto more rows when it has
# more nodes than fit in MAX_WIDTH: the page stays readable at 1280 px without scrolling sideways.
MAX_WIDTH = 1150
CHARS_PER_LINE = 31  # ~6 px a character at 11 px sans-serif in a 200 px box


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _wrap(text: str, width: int = CHARS_PER_LINE) -> list[str]:
    """Lines of at most ``width`` characters, broken after / # @ - _ or a space when possible:
    identities (gs://bucket/object#generation, job ids) are shown whole, never cut."""
    lines: list[str] = []
    rest = text
    while len(rest) > width:
        cut = max((rest.rfind(c, 0, width) for c in " /#@-_:"), default=-1)
        cut = cut + 1 if cut >= width // 3 else width
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip(" ")
    return [*lines, rest] if rest or not lines else lines


def _node_text(lineage: Lineage, node_id: str) -> tuple[str, str]:
    """(title, detail) of a node, both in full."""
    kind, _, key = node_id.partition(":")
    if kind == "event":
        event = next(e for e in lineage.events if e.event_id == key)
        subject = event.subject or event.identity
        if event.kind == "registry" and event.method:
            # Each registry call is its own event (UploadModel, MergeVersionAliases, ...): name it.
            return f"registry: {event.method.rsplit('.', 1)[-1]}", subject
        return f"{event.kind} event", subject
    if kind == "run":
        run = lineage.runs[key]
        return f"{run.pipeline} run: {run.state}", run.job_id
    if kind == "version":
        version = lineage.versions.get(key)
        aliases = ", ".join(version.aliases) if version else ""
        return f"model {key}", aliases
    endpoint = lineage.endpoints.get(key)
    traffic = ", ".join(f"v{v}:{p}%" for v, p in endpoint.traffic.items() if p) if endpoint else ""
    return f"endpoint {key}", traffic


def lineage_svg(lineage: Lineage) -> str:
    """Layered drawing, top-down: a node's band is its depth from the root events."""
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
    bands: dict[int, list[str]] = {}
    for n in nodes:
        bands.setdefault(depth[n], []).append(n)
    per_row = max(1, (MAX_WIDTH - 20 + COL_GAP) // (NODE_W + COL_GAP))
    texts = {n: _node_text(lineage, n) for n in nodes}
    lines = {n: [texts[n][0], *(_wrap(texts[n][1]) if texts[n][1] else [])] for n in nodes}
    pos: dict[str, tuple[int, int]] = {}
    height_of = {n: PAD * 2 + LINE_H * len(lines[n]) for n in nodes}
    y, widest = 10, 0
    parents: dict[str, list[str]] = {}
    for a, b in edges:
        parents.setdefault(b, []).append(a)
    for band in sorted(bands):
        # Under their parents, left to right: fewer crossing arrows.
        def under(n: str) -> float:
            xs = [pos[a][0] for a in parents.get(n, []) if a in pos]
            return sum(xs) / len(xs) if xs else 0.0

        members = sorted(bands[band], key=under)
        for start in range(0, len(members), per_row):
            row = members[start : start + per_row]
            for i, n in enumerate(row):
                pos[n] = (10 + i * (NODE_W + COL_GAP), y)
            widest = max(widest, len(row))
            y += max(height_of[n] for n in row) + ROW_GAP
    width = 20 + max(widest, 1) * (NODE_W + COL_GAP) - COL_GAP
    height = y - ROW_GAP + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="max-width: 100%; height: auto" '
        'font-family="sans-serif" font-size="11">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>',
    ]
    for a, b in edges:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        parts.append(
            f'<line x1="{x1 + NODE_W // 2}" y1="{y1 + height_of[a]}" x2="{x2 + NODE_W // 2}" y2="{y2}" '
            'stroke="#666" marker-end="url(#arrow)"/>'
        )
    for n in nodes:
        x, y = pos[n]
        kind = n.split(":", 1)[0]
        title, detail = texts[n]
        bold = ' font-weight="bold"'
        spans = "".join(
            f'<tspan x="{x + PAD}" y="{y + PAD + LINE_H * (i + 1) - 3}"{bold if i == 0 else ""}>'
            f"{_esc(line)}</tspan>"
            for i, line in enumerate(lines[n])
        )
        parts.append(
            f"<g><title>{_esc(title)}\n{_esc(detail)}\n({_esc(n)})</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{height_of[n]}" rx="6" '
            f'fill="{_COLORS[kind]}" stroke="{_BORDER[kind]}"/><text>{spans}</text></g>'
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
    head = "".join(f"<th>{_esc(n)}<br><small>on its own holdout</small></th>" for n in names)
    rows = []
    for v in versions:
        cells = "".join(f"<td>{v.metrics[n]:.4f}</td>" if n in v.metrics else "<td></td>" for n in names)
        verdict = "promoted" if v.promoted else "kept the champion" if v.promoted is False else ""
        decided = [a for a in lineage.approvals() if a.version == v.key and a.decision != "champion moved"]
        if decided:  # promotion: manual, or a person overruled the gate
            verdict = f"{decided[-1].decision} by {decided[-1].by or decided[-1].recorded_by}"
        why = "; ".join(v.reasons)
        if why:
            why = f"both scored on the holdout of {v.key}: {why}"
        rows.append(
            f"<tr><td>{_esc(v.key)}</td><td>{_esc(', '.join(v.aliases))}</td>{cells}"
            f"<td>{_esc(verdict)}</td><td>{_esc(why)}</td><td><code>{_esc(v.job_id or '')}</code></td></tr>"
        )
    # The gate compares challenger and champion on the challenger's holdout, so its numbers differ
    # from the per-version columns: the header and each cell say which holdout a number is from.
    return (
        f"<table><tr><th>version</th><th>aliases</th>{head}<th>gate</th>"
        "<th>why: challenger vs champion, both scored on the challenger's holdout</th><th>run</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _approvals_section(lineage: Lineage) -> str:
    rows = [
        f"<tr><td>{_esc(a.version)}</td><td>{_esc(a.decision)}</td><td>{_esc(a.by or '')}</td>"
        f"<td>{_esc(a.recorded_by or '')}</td><td>{_esc(a.reason)}</td><td>{_esc(a.at)}</td></tr>"
        for a in lineage.approvals()
    ]
    if not rows:
        return "<p>No champion moves and no recorded decisions.</p>"
    return (
        "<table><tr><th>version</th><th>decision</th><th>by<br><small>the audit log's principal</small></th>"
        "<th>recorded as<br><small>mlops-events promote/reject --by</small></th><th>why</th><th>at</th></tr>"
        + "".join(rows)
        + "</table>"
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
.graph {{ border: 1px solid #dadce0; padding: 8px; max-width: 100%; box-sizing: border-box; }}
</style></head><body>
<h1>{_esc(title)}</h1>
<p>Generated {time.strftime("%Y-%m-%d %H:%M:%S")}{took}. {_plural(len(lineage.events), "event")}, {_plural(len(lineage.runs), "run")},
{_plural(len(lineage.versions), "model version")}, {_plural(len(lineage.endpoints), "endpoint")}.</p>
<h2>Lineage</h2>
<div class="graph">{lineage_svg(lineage)}</div>
<pre>{_esc(summary)}</pre>
<h2>Champion vs challenger</h2>
{_metrics_table(lineage)}
<h2>Approvals</h2>
{_approvals_section(lineage)}
<h2>Drift per feature</h2>
{_drift_section(drift)}
</body></html>
"""
    path.write_text(doc, encoding="utf-8")
    return path
