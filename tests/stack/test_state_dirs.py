"""The demo, the stack and ``run --local`` keep their state apart, and the demo never wipes what it
did not create (issue 10 point 3: ``make demo`` deleted ``.mlops-local/pipeline-root``, and with it
every model a user had trained with ``run --local``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_cli.main import build_parser
from stack.config import StackError
from stack.demo import reset_state


def _user_state(base: Path) -> list[Path]:
    """What a user's own work leaves under .mlops-local: runs of `run --local` (today's and the
    previous layout), a stack's objects."""
    files = [
        base / "runs" / "vertex" / "projects" / "1" / "locations" / "l" / "models" / "mine@1.json",
        base / "runs" / "pipeline-root" / "train" / "model" / "metadata.json",
        base / "pipeline-root" / "train-and-register" / "model" / "metadata.json",
        base / "gcs" / "mlops-data" / "incoming" / "mine.csv",
    ]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("{}")
    return files


def test_the_demo_default_directory_leaves_a_users_runs_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files = _user_state(tmp_path / ".mlops-local")
    parser = build_parser()
    demo = parser.parse_args(["demo"]).state_dir.resolve()
    reset_state(demo)  # what `mlops-events demo` (and `make demo`) does first
    assert all(f.is_file() for f in files), [str(f) for f in files if not f.exists()]
    up = parser.parse_args(["up"]).state_dir.resolve()
    runs = parser.parse_args(["run", "training", "--local"]).runs_dir.resolve()
    assert len({demo, up, runs}) == 3  # three directories, none is another's
    assert (demo / ".mlops-demo").is_file() and sorted(p.name for p in demo.iterdir()) == [".mlops-demo"]

    # The next demo wipes its own previous state, and only that.
    (demo / "report.html").write_text("old")
    reset_state(demo)
    assert not (demo / "report.html").exists()
    assert all(f.is_file() for f in files)


def test_the_demo_refuses_a_directory_it_did_not_create(tmp_path: Path) -> None:
    base = tmp_path / ".mlops-local"
    files = _user_state(base)
    for target in (base, base / "runs"):
        with pytest.raises(StackError, match="is not a demo state directory"):
            reset_state(target)
    assert all(f.is_file() for f in files)
    reset_state(tmp_path / "new")  # a new (or empty) directory is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    reset_state(empty)
    assert (empty / ".mlops-demo").is_file()
