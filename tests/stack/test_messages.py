"""The local stack's messages: every hint works as printed (it names a non-default state directory),
the real reason comes first, a dead supervisor is noticed, and `| head` is quiet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_cli.main import main
from stack.config import StackConfig, StackError, require_stack
from stack.supervise import start_detached

ROOT = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_hints_name_a_state_directory_that_is_not_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stack.config import command_hint

    monkeypatch.chdir(tmp_path)
    assert command_hint("down", Path(".mlops-local")) == "`mlops-events down`"
    assert command_hint("down", tmp_path / ".mlops-local") == "`mlops-events down`"
    assert command_hint("down", Path("my stack")) == "`mlops-events down --state-dir 'my stack'`"
    with pytest.raises(StackError, match=r"start one with `mlops-events up --state-dir other`"):
        require_stack(Path("other"))


def test_a_second_detached_up_says_why_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "s"
    state.mkdir()
    (state / "stack.json").write_text(json.dumps({"pid": os.getpid()}))  # a live "supervisor"
    (state / "stack.log").write_text("a line of the other stack's log\n" * 20)
    assert main(["up", "--detach", "--state-dir", str(state)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        f"mlops-events: a stack is already running from {state} (pid {os.getpid()}): "
        f"`mlops-events down --state-dir {state}` first"
    )
    assert "other stack" not in err and "did not start" not in err


def test_a_background_start_that_fails_reports_its_own_reason_not_an_older_log(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    (state / "stack.log").write_text("mlops-events: an older failure\nold line\n")
    # A child that fails at once with a message of its own (no stack to drop a file into).
    with pytest.raises(StackError) as info:
        start_detached(
            StackConfig(state_dir=state), ["drop", "--state-dir", str(state), "missing.csv"], timeout=60
        )
    message = str(info.value)
    assert message.startswith(f"no local stack is running from {state}"), message
    assert "older failure" not in message and "old line" not in message
    assert f"log: {state.resolve()}/stack.log" in message


def test_status_notices_a_dead_supervisor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "s"
    state.mkdir()
    pid = dead_pid()
    (state / "stack.json").write_text(json.dumps({"pid": pid, "functions": {}}))
    assert main(["status", "--state-dir", str(state)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"stack: NOT RUNNING: its supervisor (pid {pid}) is gone")
    assert f"clean up with `mlops-events down --state-dir {state}`" in out
    assert main(["status", "--state-dir", str(state), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["dead_supervisor"] == pid


def test_output_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`mlops-events status | head -0`: the reader is gone before the command writes."""
    read, write = os.pipe()
    os.close(read)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "mlops_cli.main", "status", "--state-dir", str(tmp_path)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    finally:
        os.close(write)
    assert run.stderr == "", run.stderr
    assert run.returncode == 141
