"""``mlops-events promote`` and ``reject`` against the Vertex AI emulator, through the registry
adapter (the SDK over REST), selected by the environment as on Vertex AI: the alias moves, the
decision is recorded with who and why, the emulator's audit events name the principal, and every
refusal is a clear error."""

from __future__ import annotations

import getpass
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_cli.cmd_promote import default_principal
from mlops_cli.main import main
from stack.emulators import FakeGcs
from tests.pipelines.conftest import Vertex, start_vertex
from tests.vertex_emulator.conftest import Received, receiver  # noqa: F401 (a fixture)

MERGE = "google.cloud.aiplatform.v1.ModelService.MergeVersionAliases"
UPDATE = "google.cloud.aiplatform.v1.ModelService.UpdateModel"


@pytest.fixture(scope="module")
def vertex(
    fake_gcs: FakeGcs,
    tmp_path_factory: pytest.TempPathFactory,
    receiver: tuple[str, Received],  # noqa: F811
) -> Iterator[Vertex]:
    with pytest.MonkeyPatch.context() as mp:
        yield from start_vertex(
            mp, fake_gcs, tmp_path_factory.mktemp("vertex"), audit_events_url=receiver[0], execute="none"
        )


def _register(tmp_path: Path, model: str, count: int, aliases: tuple[str, ...] = ("challenger",)) -> None:
    from pipelines import backends

    registry = backends.model_registry()
    for i in range(count):
        folder = tmp_path / f"{model}-{i}"
        folder.mkdir()
        (folder / "model.joblib").write_bytes(b"weights")
        registry.register(model, str(folder), labels={}, metrics={"roc_auc": 0.8 + i / 100}, aliases=aliases)


def _audit(received: Received, method: str, resource_suffix: str) -> list[dict]:
    """The audit entries (LogEntryData) of ``method`` on a resource ending in ``resource_suffix``
    (delivered asynchronously, as Eventarc does: waits a little for the first)."""
    deadline = time.monotonic() + 10
    while True:
        with received.lock:
            found = [
                json.loads(body)
                for headers, body in received.events
                if headers.get("ce-methodname") == method
                and headers.get("ce-resourcename", "").endswith(resource_suffix)
            ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_promote_moves_champion_and_records_who_and_why(
    vertex: Vertex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    receiver: tuple[str, Received],  # noqa: F811
) -> None:
    from pipelines import backends

    _register(tmp_path, "gated", 2)
    code, out, err = _run(
        capsys, "promote", "gated", "challenger", "--reason", "read the report", "--by", "alice@example.com"
    )
    assert code == 0, err
    assert "approved v2 of gated by alice@example.com: champion moved from no champion to v2" in out
    assert "roc_auc=0.8100" in out and "Vertex AI local-project/us-central1" in out
    v2 = backends.model_registry().get("gated", "2")
    assert v2 is not None and "champion" in v2.aliases
    ((decision),) = v2.decisions
    assert (decision["decision"], decision["principal"], decision["reason"]) == (
        "approved",
        "alice@example.com",
        "read the report",
    )
    # The emulator writes the caller into its audit events as Cloud Audit Logs would.
    received = receiver[1]
    (merge,) = _audit(received, MERGE, "models/gated@2")
    assert merge["protoPayload"]["authenticationInfo"]["principalEmail"] == "alice@example.com"
    assert merge["protoPayload"]["request"]["versionAliases"] == ["champion"]
    (update,) = _audit(received, UPDATE, "models/gated@2")
    assert update["protoPayload"]["authenticationInfo"]["principalEmail"] == "alice@example.com"

    # Again: nothing to do, said so, nothing written.
    code, out, _ = _run(capsys, "promote", "gated", "2", "--by", "alice@example.com")
    assert code == 0 and "v2 of gated is the champion already: nothing changed" in out
    assert len(backends.model_registry().get("gated", "2").decisions) == 1  # type: ignore[union-attr]

    # Promoting v1 moves the alias back, naming the champion it replaced.
    code, out, _ = _run(capsys, "promote", "gated", "1", "--by", "bob@example.com")
    assert code == 0 and "champion moved from v2 (roc_auc=0.8100) to v1" in out
    v1 = backends.model_registry().get("gated", "1")
    assert v1 is not None and v1.decisions[-1]["reason"] == "no reason given"
    assert "champion" not in backends.model_registry().get("gated", "2").aliases  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_rejected_version_needs_force_and_the_champion_cannot_be_rejected(
    vertex: Vertex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines import backends

    _register(tmp_path, "rejects", 2)
    assert _run(capsys, "promote", "rejects", "1", "--by", "a@example.com")[0] == 0
    code, out, err = _run(capsys, "reject", "rejects", "2", "--reason", "leaks the label", "--by", "b@x.org")
    assert code == 0, err
    assert "rejected v2 of rejects by b@x.org: leaks the label" in out
    v2 = backends.model_registry().get("rejects", "2")
    assert v2 is not None and v2.decisions[-1]["decision"] == "rejected" and "champion" not in v2.aliases

    code, _, err = _run(capsys, "promote", "rejects", "2", "--by", "a@example.com")
    assert code == 1
    assert "v2 of rejects was rejected by b@x.org" in err and "'leaks the label'" in err and "--force" in err
    assert "champion" not in backends.model_registry().get("rejects", "2").aliases  # type: ignore[union-attr]

    code, out, err = _run(
        capsys, "promote", "rejects", "2", "--force", "--reason", "fixed", "--by", "c@x.org"
    )
    assert code == 0, err
    v2 = backends.model_registry().get("rejects", "2")
    assert v2 is not None and "champion" in v2.aliases
    assert [d["decision"] for d in v2.decisions] == ["rejected", "approved"]

    code, _, err = _run(capsys, "reject", "rejects", "2", "--reason", "no", "--by", "d@x.org")
    assert code == 1 and "v2 of rejects is the champion" in err and "promote another version first" in err
    code, _, err = _run(capsys, "reject", "rejects", "1", "--reason", "  ", "--by", "d@x.org")
    assert code == 1 and "a rejection needs a reason" in err


@pytest.mark.slow
def test_unknown_models_and_versions_name_what_there_is(
    vertex: Vertex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(tmp_path, "known", 2)
    code, _, err = _run(capsys, "promote", "nosuch", "1", "--by", "a@example.com")
    assert code == 1 and "model 'nosuch' is not in the registry (models there: " in err and "known" in err
    code, _, err = _run(capsys, "promote", "known", "7", "--by", "a@example.com")
    assert code == 1
    assert "model 'known' has no version or alias '7' (versions: 1, 2 [challenger])" in err
    code, _, err = _run(capsys, "reject", "known", "Champion!", "--reason", "x", "--by", "a@example.com")
    assert code == 1 and "'Champion!' is neither a version id nor an alias" in err


def test_no_stack_running_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = tmp_path / "no-stack"
    code, _, err = _run(capsys, "promote", "churn", "2", "--state-dir", str(nowhere))
    assert code == 1
    assert f"mlops-events promote: no local stack is running from {nowhere}" in err
    assert "mlops-events up --state-dir" in err
    code, _, err = _run(capsys, "reject", "churn", "2", "--reason", "x", "--state-dir", str(nowhere))
    assert code == 1 and f"mlops-events reject: no local stack is running from {nowhere}" in err


def test_reject_without_a_reason_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["reject", "churn", "2"])
    assert exit_.value.code == 2 and "--reason" in capsys.readouterr().err


def test_who_decides_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local stack has no accounts: $USER@local. Elsewhere gcloud's account, and without
    gcloud, user@host (a claim either way: the audit log's principal is the authority)."""
    assert default_principal(local=True) == f"{getpass.getuser()}@local"
    monkeypatch.setenv("PATH", "")
    assert default_principal(local=False) == f"{getpass.getuser()}@{socket.gethostname()}"


def test_the_adapter_names_the_caller_with_the_emulators_header() -> None:
    from pipelines.registry.vertex import PRINCIPAL_HEADER
    from stack.vertex.audit import PRINCIPAL_HEADER as EMULATOR_HEADER

    assert PRINCIPAL_HEADER == EMULATOR_HEADER
