"""Stopping a stack from outside (``mlops-events down``), and whatever is left of one.

Every process started for a stack carries ``MLOPS_STACK_DIR=<state dir>`` in its environment, and
so do their children (the Vertex AI emulator's pipeline workers and their tasks, its serving
processes), whatever their session: after a supervisor or an emulator was killed with -9, they
are still found and stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stack import emulators
from stack.config import STACK_MARKER, pid_alive, stack_file

Echo = Callable[[str], None]


def stack_processes(root: Path) -> list[int]:
    """Live processes started for the stack in ``root``: every child of the stack carries
    ``MLOPS_STACK_DIR=<root>`` in its environment, and so do their children (the emulator's
    pipeline workers and their tasks, serving processes), whatever their own session."""
    marker = f"{STACK_MARKER}={Path(root).resolve()}".encode()
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return [pid for pid in found if pid_alive(pid)]


def sweep(root: Path) -> list[int]:
    """Kill what is left of the stack in ``root`` (after a supervisor or an emulator was killed
    with -9, its children outlive it). Returns the pids killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + 5.0
    while (live := stack_processes(root)) and time.monotonic() < deadline:
        for pid in live:  # again until none is left: SIGKILL is asynchronous, a parent may fork
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed.update(live)
        time.sleep(0.05)
    return sorted(killed)


def down(root: Path, echo: Echo = print, timeout: float = 60.0) -> bool:
    """Stop the stack running from ``root``: ask its supervisor (SIGTERM), then make sure that
    every process it started is gone. False when nothing was running."""
    root = root.resolve()
    path = stack_file(root)
    try:
        info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        stopped = sweep(root)
        if stopped:
            echo(f"no stack.json in {root}; stopped {len(stopped)} leftover process(es) of it")
        return bool(stopped)
    supervisor = int(info.get("pid", 0))
    if supervisor and pid_alive(supervisor):
        with contextlib.suppress(ProcessLookupError):
            os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(supervisor) and time.monotonic() < deadline:
            time.sleep(0.1)
    # Whatever is left (a supervisor killed with -9 leaves its children). The Vertex AI emulator
    # first, politely: SIGTERM makes it stop its workers and serving processes.
    vertex = int((info.get("vertex") or {}).get("pid") or 0)
    if vertex and pid_alive(vertex):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(vertex, signal.SIGTERM)
        deadline = time.monotonic() + emulators.VERTEX_STOP_TIMEOUT_S
        while pid_alive(vertex) and time.monotonic() < deadline:
            time.sleep(0.1)
    pids = [int(fn["pid"]) for fn in info.get("functions", {}).values()]
    pids += [int(info[k]["pid"]) for k in ("storage", "pubsub", "vertex") if (info.get(k) or {}).get("pid")]
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    sweep(root)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    echo(f"stack in {root} stopped")
    return True
