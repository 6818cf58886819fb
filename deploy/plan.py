"""A deployment plan: the gcloud commands to run, as data, with two ways to carry it out.

Set-up and function deployment are lists of actions. ``Executor`` runs them through
``subprocess`` and checks before it creates, so running a plan twice creates nothing the second
time. ``render_script`` turns the same plan into a bash script: that is what ``--dry-run`` prints
and what the Cloud Build deploy step runs (a Cloud SDK image has gcloud but not this package).
In the script every mutation is guarded by its check, so the script is idempotent as well.

Values only known while running (the project number, the subscription Eventarc created for a
trigger) are ``Capture``d into a name and used later as ``${NAME}`` inside an argument.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, TextIO

Argv = tuple[str, ...]

_REF_RE: Final = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


@dataclass(frozen=True)
class Run:
    """A command that is idempotent by itself (``gcloud functions deploy``, ``services enable``)."""

    argv: Argv
    why: str = ""


@dataclass(frozen=True)
class Ensure:
    """Create a resource unless ``check`` (a describe) succeeds; when it exists, run ``update`` if any."""

    check: Argv
    create: Argv
    update: Argv | None = None
    why: str = ""


@dataclass(frozen=True)
class EnsureApi:
    api: str
    project: str

    @property
    def enable(self) -> Argv:
        return ("gcloud", "services", "enable", self.api, f"--project={self.project}")


@dataclass(frozen=True)
class EnsureRole:
    """A project custom role whose permissions must be exactly ``permissions``."""

    role_id: str
    project: str
    title: str
    permissions: tuple[str, ...]

    @property
    def describe(self) -> Argv:
        return (
            "gcloud",
            "iam",
            "roles",
            "describe",
            self.role_id,
            f"--project={self.project}",
            "--format=json",
        )

    def write(self, verb: str) -> Argv:
        return (
            "gcloud",
            "iam",
            "roles",
            verb,
            self.role_id,
            f"--project={self.project}",
            f"--title={self.title}",
            f"--permissions={','.join(sorted(self.permissions))}",
            "--stage=GA",
        )


@dataclass(frozen=True)
class EnsureBinding:
    """One IAM binding on one resource. ``target`` is the gcloud resource prefix, e.g.
    ``("gcloud", "pubsub", "topics")`` + the resource name + location flags."""

    group: Argv
    resource: str
    flags: Argv
    role: str
    member: str
    why: str = ""

    @property
    def get_policy(self) -> Argv:
        return (*self.group, "get-iam-policy", self.resource, *self.flags, "--format=json")

    @property
    def add(self) -> Argv:
        extra: Argv = ("--condition=None",) if self.group == ("gcloud", "projects") else ()
        return (
            *self.group,
            "add-iam-policy-binding",
            self.resource,
            *self.flags,
            f"--member={self.member}",
            f"--role={self.role}",
            *extra,
        )


@dataclass(frozen=True)
class Capture:
    """Run ``argv`` (read-only) and keep its stripped output as ``${name}`` for later actions."""

    name: str
    argv: Argv
    placeholder: str = ""  # what a dry run shows instead


@dataclass(frozen=True)
class Prune:
    """Delete what ``list`` names (one name per output line) unless it is in ``keep``: the resources
    of ours that the configuration no longer has (a schedule removed from the rules file)."""

    list: Argv
    delete: Argv  # the name is inserted after these words ...
    delete_flags: Argv  # ... and before these
    keep: tuple[str, ...]
    why: str = ""

    def delete_argv(self, name: str) -> Argv:
        return (*self.delete, name, *self.delete_flags)


Action = Run | Ensure | EnsureApi | EnsureRole | EnsureBinding | Capture | Prune


@dataclass
class Plan:
    title: str
    actions: list[Action] = field(default_factory=list)

    def add(self, *actions: Action) -> None:
        self.actions.extend(actions)

    def mutations(self) -> list[Argv]:
        """Every command that may change something (what a dry run must list)."""
        out: list[Argv] = []
        for a in self.actions:
            if isinstance(a, Run):
                out.append(a.argv)
            elif isinstance(a, Ensure):
                out.append(a.create)
                if a.update:
                    out.append(a.update)
            elif isinstance(a, EnsureApi):
                out.append(a.enable)
            elif isinstance(a, EnsureRole):
                out.append(a.write("create"))
            elif isinstance(a, EnsureBinding):
                out.append(a.add)
            elif isinstance(a, Prune):
                out.append(a.delete_argv("${NAME}"))
        return out


class CommandError(RuntimeError):
    def __init__(self, argv: Sequence[str], code: int, stderr: str) -> None:
        self.argv, self.code, self.stderr = tuple(argv), code, stderr
        super().__init__(f"command failed (exit {code}): {shlex.join(argv)}\n{stderr.strip()}")


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _subprocess_runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


class Executor:
    """Carries a plan out for real: checks first, creates what is missing, logs what it changed."""

    def __init__(self, runner: Runner = _subprocess_runner, log: TextIO = sys.stderr) -> None:
        self._runner = runner
        self._log = log
        self._values: dict[str, str] = {}
        self._policies: dict[Argv, set[tuple[str, str]]] = {}
        self._enabled: dict[str, set[str]] = {}
        self.changed: list[Argv] = []

    def _resolve(self, argv: Argv) -> Argv:
        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in self._values:
                raise KeyError(f"${{{m.group(1)}}} is used before it is captured")
            return self._values[m.group(1)]

        return tuple(_REF_RE.sub(sub, a) for a in argv)

    def _call(self, argv: Argv, *, ok_fail: bool = False) -> subprocess.CompletedProcess[str]:
        argv = self._resolve(argv)
        try:
            proc = self._runner(argv)
        except FileNotFoundError:
            raise CommandError(argv, 127, f"{argv[0]} is not installed or not on PATH") from None
        if proc.returncode != 0 and not ok_fail:
            raise CommandError(argv, proc.returncode, proc.stderr)
        return proc

    def _change(self, argv: Argv) -> None:
        self._call(argv)
        self.changed.append(self._resolve(argv))
        print("changed: " + shlex.join(self._resolve(argv)), file=self._log)

    def execute(self, plan: Plan) -> list[Argv]:
        for action in plan.actions:
            self._one(action)
        return self.changed

    def _one(self, a: Action) -> None:
        if isinstance(a, Run):
            self._change(a.argv)
        elif isinstance(a, Capture):
            self._values[a.name] = self._call(a.argv).stdout.strip()
        elif isinstance(a, Ensure):
            if self._call(a.check, ok_fail=True).returncode != 0:
                self._change(a.create)
            elif a.update:
                self._change(a.update)
        elif isinstance(a, EnsureApi):
            if a.project not in self._enabled:
                out = self._call(
                    (
                        "gcloud",
                        "services",
                        "list",
                        "--enabled",
                        f"--project={a.project}",
                        "--format=value(config.name)",
                    )
                ).stdout
                self._enabled[a.project] = set(out.split())
            if a.api not in self._enabled[a.project]:
                self._change(a.enable)
                self._enabled[a.project].add(a.api)
        elif isinstance(a, EnsureRole):
            proc = self._call(a.describe, ok_fail=True)
            if proc.returncode != 0:
                self._change(a.write("create"))
            else:
                have = set(json.loads(proc.stdout or "{}").get("includedPermissions", []))
                if have != set(a.permissions):
                    self._change(a.write("update"))
        elif isinstance(a, Prune):
            for name in self._call(a.list).stdout.split():
                if name not in a.keep:
                    self._change(a.delete_argv(name))
        elif isinstance(a, EnsureBinding):
            key = self._resolve((*a.group, a.resource, *a.flags))
            if key not in self._policies:
                policy = json.loads(self._call(a.get_policy).stdout or "{}")
                self._policies[key] = {
                    (b["role"], m)
                    for b in policy.get("bindings", [])
                    if not b.get("condition")
                    for m in b["members"]
                }
            pair = (a.role, self._resolve((a.member,))[0])
            if pair not in self._policies[key]:
                self._change(a.add)
                self._policies[key].add(pair)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown action {a!r}")


def _q(arg: str) -> str:
    """Shell-quote, keeping ``${NAME}`` references expandable."""
    if _REF_RE.search(arg):
        return '"' + re.sub(r'(["\\`])', r"\\\1", arg).replace("$(", "\\$(") + '"'
    return shlex.quote(arg)


def _sh(argv: Iterable[str]) -> str:
    return " ".join(_q(a) for a in argv)


def render_script(plan: Plan) -> str:
    """The plan as an idempotent bash script (what ``--dry-run`` prints)."""
    lines = [
        "#!/usr/bin/env bash",
        f"# {plan.title}",
        "# Generated by mlops-events: every create is guarded by its describe, so it can run twice.",
        "set -euo pipefail",
        "",
    ]
    for a in plan.actions:
        if isinstance(a, Run):
            if a.why:
                lines.append(f"# {a.why}")
            lines.append(_sh(a.argv))
        elif isinstance(a, Capture):
            lines.append(f"{a.name}=$({_sh(a.argv)})")
        elif isinstance(a, Ensure):
            if a.why:
                lines.append(f"# {a.why}")
            if a.update:
                lines.append(f"if {_sh(a.check)} >/dev/null 2>&1; then")
                lines.append(f"  {_sh(a.update)}")
                lines.append("else")
                lines.append(f"  {_sh(a.create)}")
                lines.append("fi")
            else:
                lines.append(f"{_sh(a.check)} >/dev/null 2>&1 || {_sh(a.create)}")
        elif isinstance(a, EnsureApi):
            lines.append(_sh(a.enable))
        elif isinstance(a, EnsureRole):
            lines.append(
                f"{_sh(a.describe)} >/dev/null 2>&1 && {_sh(a.write('update'))} || {_sh(a.write('create'))}"
            )
        elif isinstance(a, EnsureBinding):
            if a.why:
                lines.append(f"# {a.why}")
            # add-iam-policy-binding is a no-op when the binding exists.
            lines.append(f"{_sh(a.add)} >/dev/null")
        elif isinstance(a, Prune):
            if a.why:
                lines.append(f"# {a.why}")
            keep = "|".join(shlex.quote(k) for k in a.keep) or "''"
            lines.append(f"for NAME in $({_sh(a.list)}); do")
            lines.append(f'  case "$NAME" in {keep}) ;; *) {_sh(a.delete_argv("${NAME}"))} ;; esac')
            lines.append("done")
    lines.append("")
    return "\n".join(lines)
