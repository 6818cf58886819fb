"""The benchmark harness end to end in a tiny configuration: every figure is there and sane.
No timing assertions (this machine's speed is not what the suite checks; ``make bench`` is)."""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ is a tool beside the packages, not an installed package
    sys.path.insert(0, str(REPO))


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_bench_reports_every_figure(tmp_path: Path) -> None:
    from bench import run

    out = tmp_path / "latest.json"
    assert (
        run.main(["--quick", "--burst-events", "200", "--out", str(out), "--work", str(tmp_path / "work")])
        == 0
    )
    result = json.loads(out.read_text())
    f = result["figures"]

    for subject in ("mlops-events", "baseline"):
        cold = f["cold_start"][subject]
        assert _positive(cold["import"]["wall_s"]) and _positive(cold["import"]["peak_rss_mb"])
        assert cold["ready"], subject
        for ready in cold["ready"].values():
            assert _positive(ready["ready_s"]) and _positive(ready["peak_rss_mb"])
        assert _positive(f["first_event"][subject]["to_create_s"])
        lat = f["warm_latency"][subject]
        assert _positive(lat["p50_ms"]) and lat["p99_ms"] >= lat["p50_ms"]
        assert _positive(f["burst"][subject]["events_per_s"]) and _positive(
            f["burst"][subject]["peak_rss_mb"]
        )
    floor = f["cold_start"]["floor"]  # the empty function, measured in turn with ours
    assert _positive(floor["ready_s"]) and _positive(floor["ours_ready_s"])
    assert len(floor["runs"]) == result["config"]["reps"]
    assert floor["above_floor_s"] == pytest.approx(
        statistics.median(r["ours_s"] - r["floor_s"] for r in floor["runs"])
    )
    assert set(f["cold_start"]["mlops-events"]["ready"]) == {
        "on_new_data", "on_monitoring_alert", "on_model_registry_event", "on_run_request",
    }  # fmt: skip

    ours = f["burst"]["mlops-events"]
    assert ours["events"] == 200 and ours["duplicates"] == 40
    assert ours["runs_created"] == ours["runs_expected"] == result["config"]["burst_objects"]
    assert ours["exactly_once"] is True and ours["failed"] == 0
    # The naive baseline has no idempotent job id: a redelivery is one more run.
    assert f["burst"]["baseline"]["runs_created"] > f["burst"]["baseline"]["runs_expected"]

    assert _positive(f["compile"]["wall_s"]) and len(f["compile"]["pipelines"]) >= 4
    assert set(result["summary"]["targets"]) and all(
        isinstance(v, bool) for v in result["summary"]["targets"].values()
    )
