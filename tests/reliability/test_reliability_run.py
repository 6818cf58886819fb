"""The reliability run end to end: >= 1000 events through functions-framework subprocesses,
fake-gcs-server and a fake Vertex failing 20% of calls; nothing lost, nothing doubled."""

from __future__ import annotations

import pytest

from mlops_cli.main import main


@pytest.mark.slow
def test_reliability_run_loses_and_doubles_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reliability", "--events", "1000", "--fault-rate", "0.2", "--seed", "11"])
    out = capsys.readouterr().out
    assert "lost:               0" in out and "doubled:            0" in out, out
    assert code == 0
