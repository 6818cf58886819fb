"""``mlops-events run PIPELINE --local`` on a machine with nothing running (issue 10 point 2: the
documented example ended with ``DefaultCredentialsError`` because the registry defaulted to real
Cloud Storage). It starts fake-gcs-server and the Vertex AI emulator for the run, keeps their
state in ``.mlops-local/runs`` (so the next run finds the model), accepts a relative local data
path, and reaches nothing on Google Cloud: no credentials are to be found here, so any attempt
would fail the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_cli.main import main
from stack import demo_data

pytestmark = pytest.mark.slow


@pytest.fixture
def bare_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A shell with no stack and nothing of Google Cloud configured, in a fresh directory."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "STORAGE_EMULATOR_HOST",
        "PUBSUB_EMULATOR_HOST",
        "MLOPS_PUBSUB_PUSH_URL",
        "VERTEX_API_ENDPOINT",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_REGION",
        "MLOPS_STAGING_BUCKET",
        "MLOPS_SERVING_RECORDS_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    # Any client that looked for real credentials would fail at once (no metadata-server wait).
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-credentials.json"))
    demo_data.reference().head(400).to_csv(tmp_path / "mine.csv", index=False)
    return tmp_path


def _result(out: str) -> dict:
    doc: dict = json.loads(out.strip().splitlines()[-1])
    return doc


@pytest.mark.timeout(600)
def test_the_documented_run_local_example_works_on_a_bare_shell_and_keeps_its_models(
    bare_shell: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "training", "--local", "--param", "data_uri=mine.csv", "--param", "model_name=mine"]
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, out[-3000:] + err[-3000:]
    runs = bare_shell / ".mlops-local" / "runs"
    assert f"state kept in {runs}" in out and "started fake-gcs-server" in out
    first = _result(out)["outputs"]
    assert first["model_name"] == "mine" and first["version"] == "1" and first["promoted"] is True
    assert (runs / "vertex").is_dir() and (runs / "gcs" / "mlops-staging").is_dir()

    # The next run finds the registry where the first left it: version 2 is compared with v1.
    assert main([*args, "--param", "model_family=logistic_regression", "--json"]) == 0
    second = _result(capsys.readouterr().out)["outputs"]
    assert second["version"] == "2"
    assert any("champion v1" in reason for reason in second["reasons"]), second["reasons"]
