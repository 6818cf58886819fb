"""``mlops-events up`` in the foreground (until Ctrl-C or SIGTERM) or detached (a background
supervisor, waited for until its ``stack.json`` says it is up), and the summary of where each part
listens."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Any

from stack.config import StackConfig, StackError, command_hint, read_stack
from stack.up import Echo, Stack


def run_foreground(config: StackConfig, echo: Echo = print) -> int:
    """``mlops-events up``: start, print where everything is, wait for Ctrl-C or SIGTERM, stop."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = Stack(config, echo)
    try:
        info = stack.start()
        describe(info, echo)
        echo(f"Ctrl-C (or {command_hint('down', config.state_dir)}) stops everything")
        while not stop.wait(0.5):
            pass
        echo("stopping ...")
    finally:
        stack.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def start_detached(config: StackConfig, argv: list[str], timeout: float = 120.0) -> dict[str, Any]:
    """Run ``mlops-events up`` (``argv``, without --detach) in the background; wait until it is up."""
    root = config.root
    running = read_stack(root)
    if running is not None:  # say so now, not after a child has failed to start
        raise StackError(
            f"a stack is already running from {config.state_dir} (pid {running['pid']}): "
            f"{command_hint('down', config.state_dir)} first"
        )
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "stack.log"
    offset = log_path.stat().st_size if log_path.exists() else 0  # earlier stacks' lines are not ours
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops_cli.main", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_stack(root)
        if info is not None and info.get("pid") == process.pid:
            return info
        if process.poll() is not None:
            with log_path.open("rb") as f:
                f.seek(offset)
                lines = f.read().decode(errors="replace").splitlines()
            # The reason first: the child's own `mlops-events: ...` message; else its last lines.
            reasons = [
                line.removeprefix("mlops-events: ") for line in lines if line.startswith("mlops-events: ")
            ]
            if reasons:
                raise StackError(f"{reasons[-1]} (the stack exited {process.returncode}; log: {log_path})")
            raise StackError(
                f"the stack did not start (exit {process.returncode}); {log_path}:\n" + "\n".join(lines[-15:])
            )
        time.sleep(0.2)
    raise StackError(f"the stack was not up after {timeout:.0f}s; see {log_path}")


def describe(info: dict[str, Any], echo: Echo = print) -> None:
    echo(f"  storage     {info['storage']['host']}  buckets: {', '.join(info['buckets'].values())}")
    ps = info["pubsub"]
    echo(f"  pubsub      {ps.get('host') or ps.get('url')} ({ps['mode']})")
    for topic, route in ps["routes"].items():
        echo(f"    {topic:<14} {route}")
    for name, fn in info["functions"].items():
        echo(f"  {name:<24} {fn['url']}")
    vertex = info["vertex"]
    echo(f"  vertex      {vertex['url']}  (Vertex AI emulator; state {vertex['state_dir']})")
    echo(
        f"    predict   {vertex['url']}/v1/projects/{info['project']}/locations/{info['region']}/endpoints/<id>:predict"
    )
    echo(f"  bridge      {info['bridge']['url']} (storage events: {info['bridge']['storage_mode']})")
    echo(f"  logs        {info['state_dir']}/logs/")
