"""Run a pipeline under ``kfp.local`` (SubprocessRunner, no venv): progress task by task, the
pipeline's outputs, and on failure which task failed and why.

kfp.local reports through the root logger and ``print`` on ``sys.stdout``; this module taps that
stream to follow the tasks, keeps each task's own log, and shows it only when asked (``verbose``)
or when the task fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

Echo = Callable[[str], None]

_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")
_START: Final = re.compile(r"Executing task '([^']+)'")
_END: Final = re.compile(r"Task '([^']+)' finished with status (SUCCESS|FAILURE)")
_EXC: Final = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*(?:Error|Exception|Failed|Exit)): ?(.*)$")
_NOISE: Final = ("Streamed logs:", "Task '", "has no outputs")


class LocalRunError(ValueError):
    """The run cannot start: unknown pipeline, bad parameters, unusable pipeline root."""


@dataclass
class TaskRun:
    name: str
    status: str = "RUNNING"
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)
    _start: float = field(default_factory=time.perf_counter, repr=False)


@dataclass
class RunResult:
    pipeline: str
    ok: bool
    seconds: float
    pipeline_root: str
    tasks: list[TaskRun] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    failed_task: str | None = None
    reason: str | None = None


def failure_reason(log: list[str]) -> str | None:
    """The exception that ended a task, read from its log: its last ``SomeError: message`` line
    and the message lines after it (a validation report spans several lines)."""
    lines = [line.rstrip() for line in log]
    for i in range(len(lines) - 1, -1, -1):
        match = _EXC.match(lines[i].strip())
        if match:
            rest = [line for line in lines[i + 1 :] if line.strip()]
            first = f"{match.group(1)}: {match.group(2)}".rstrip(": ")
            return "\n".join([first, *(_dedent(rest))])
    tail = [line for line in lines if line.strip()][-5:]
    return "\n".join(tail) or None


def _dedent(lines: list[str]) -> list[str]:
    if not lines:
        return []
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    return [line[indent:] for line in lines]


class _Tap(io.TextIOBase):
    """Stands in for sys.stdout during the run; splits kfp.local's stream into task logs."""

    def __init__(self, echo: Echo, verbose: bool) -> None:
        self._echo = echo
        self.real = sys.stdout
        self.verbose = verbose
        self.tasks: list[TaskRun] = []
        self.current: TaskRun | None = None
        self._buf = ""

    def echo(self, message: str) -> None:
        """Report on the real stdout (``echo`` may be ``print``, which would write to the tap)."""
        tapped, sys.stdout = sys.stdout, self.real
        try:
            self._echo(message)
        finally:
            sys.stdout = tapped

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self._line(_ANSI.sub("", line))
        return len(s)

    def flush(self) -> None:
        if self._buf:
            self._line(_ANSI.sub("", self._buf))
            self._buf = ""

    def _line(self, line: str) -> None:
        start, end = _START.search(line), _END.search(line)
        if start:
            self.current = TaskRun(start.group(1))
            self.tasks.append(self.current)
            self.echo(f"[{len(self.tasks):>2}] {self.current.name} ...")
        elif end and self.current is not None:
            task = self.current
            task.status = end.group(2)
            task.seconds = time.perf_counter() - task._start
            mark = "ok" if task.status == "SUCCESS" else "FAILED"
            self.echo(f"     {task.name}: {mark} ({task.seconds:.1f}s)")
        elif (
            self.current is not None
            and self.current.status == "RUNNING"
            and not any(n in line for n in _NOISE)
        ):
            self.current.log.append(line[4:] if line.startswith("    ") else line)
            if self.verbose:
                self.echo("     | " + line)


@contextlib.contextmanager
def _tapped(tap: _Tap) -> Iterator[None]:
    previous = sys.stdout
    sys.stdout = tap
    try:
        yield
    finally:
        tap.flush()
        sys.stdout = previous


def run_pipeline(
    name: str,
    params: Mapping[str, Any],
    pipeline_root: str | Path,
    *,
    template_dir: str | Path,
    echo: Echo = print,
    verbose: bool = False,
) -> RunResult:
    """Run pipeline ``name`` of the compiled ``template_dir`` locally with ``params`` (typed)."""
    from kfp import components

    from pipelines.catalog import CatalogError, load_catalog  # here: the emulator's worker imports
    # failure_reason from this module, and needs no catalog

    try:
        catalog = load_catalog(Path(template_dir))
    except CatalogError as exc:
        raise LocalRunError(str(exc)) from exc
    if name not in catalog:
        raise LocalRunError(f"unknown pipeline {name!r} (known: {catalog.known()})")
    spec = catalog[name]
    problems = spec.validate(params)
    if problems:
        raise LocalRunError(f"bad parameters for {name}: " + "; ".join(problems))
    path = Path(template_dir) / f"{name}.yaml"
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)

    import warnings

    from kfp import local

    # Resource requests are for Vertex (a model's machine: setting); locally they mean nothing.
    warnings.filterwarnings("ignore", message=r".*have no effect in the current local runner.*")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    pipeline = components.load_component_from_file(str(path))
    tap = _Tap(echo, verbose)
    started = time.perf_counter()
    result = RunResult(pipeline=name, ok=False, seconds=0.0, pipeline_root=str(root))
    echo(f"running {name} locally (pipeline root {root})")
    try:
        with _tapped(tap):
            task = pipeline(**spec.resolve(params))
        result.ok = True
        result.outputs = _outputs(task)
    except RuntimeError as exc:
        failed = next((t for t in reversed(tap.tasks) if t.status == "FAILURE"), None)
        result.failed_task = failed.name if failed else None
        result.reason = (failure_reason(failed.log) if failed else None) or str(exc)
    finally:
        result.seconds = time.perf_counter() - started
        result.tasks = tap.tasks
    return result


def _outputs(task: Any) -> dict[str, Any]:
    outputs = getattr(task, "outputs", {}) or {}
    out: dict[str, Any] = {}
    for key, value in outputs.items():
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = value
            if key == "Output" and isinstance(parsed, dict):
                out.update(parsed)
                continue
            out[key] = parsed
        else:
            out[key] = getattr(value, "metadata", value)
    return out
