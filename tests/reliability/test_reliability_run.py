"""The reliability run end to end: 1,000 events through two functions-framework instances per entry
point, with kill -9 of instances, storage-emulator restarts, 30 s clock skew, debounced bursts and
the Vertex AI emulator failing half of the create calls; counted per object and per burst."""

from __future__ import annotations

import random
import re

import pytest

from mlops_cli.main import main
from mlops_cli.reliability.plan import build_plan


@pytest.mark.slow
def test_reliability_run_loses_doubles_and_splits_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reliability", "--events", "1000", "--fault-rate", "0.5", "--seed", "11"])
    out = capsys.readouterr().out
    for line in (
        "lost:               0",
        "doubled:            0",
        "bursts split:       0",
        "not accepted:       0",
    ):
        assert line in out, out
    assert "events sent:        1000 (" in out, out
    killed = re.search(r"; (\d+) killed \(SIGKILL\)", out)
    assert killed is not None and int(killed.group(1)) > 0, out
    assert code == 0, out


@pytest.mark.slow
@pytest.mark.parametrize("events", [7, 200, 1000])
def test_events_n_plans_exactly_n_events(gcs_env: str, events: int) -> None:
    plan = build_plan(gcs_env, events, random.Random(1), quiet=2.0, rate=25.0)
    assert plan.planned == events
    if events >= 200:  # every kind of unit is there
        assert plan.objects and plan.bursts and plan.models and plan.request_keys and plan.malformed
