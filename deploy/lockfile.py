"""Requirements files from ``uv.lock``, the one place that fixes every dependency's version.

The Dockerfile, the functions bundle and the pip fall-back of ``make install`` install exactly
what this writes: the locked closure of the project's base dependencies plus the chosen extras,
each pinned (``name==version``) with the hashes of every locked file, and with the environment
markers the lock records (``numpy==2.4.6 ; python_full_version < '3.12'``), so pip picks the
right entry on the machine that installs it. Standard library only: it runs where uv is absent
(a bare ``python:3.11-slim``), as ``python deploy/lockfile.py --extra pipelines``.

Markers are carried, not evaluated: a package's marker is the disjunction, over every path from
the project to it, of the conjunction of the markers on that path's edges.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "uv.lock"

# A marker in disjunctive normal form: a set of conjunctions, each a set of edge markers.
# frozenset({frozenset()}) is "always"; a package absent from the result is never installed.
Conjunction = frozenset[str]
Dnf = frozenset[Conjunction]
ALWAYS: Dnf = frozenset({frozenset()})


class LockError(ValueError):
    """uv.lock is missing, malformed or holds something a requirements file cannot express."""


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _absorb(terms: Iterable[Conjunction]) -> Dnf:
    """Drop every conjunction that implies a shorter one (A or (A and B) == A)."""
    ordered = sorted(set(terms), key=len)
    kept: list[Conjunction] = []
    for term in ordered:
        if not any(k <= term for k in kept):
            kept.append(term)
    return frozenset(kept)


def _atom(marker: str) -> str:
    return f"({marker})" if " or " in marker else marker


def marker_text(dnf: Dnf) -> str:
    """The PEP 508 marker of ``dnf`` ("" when always)."""
    if frozenset() in dnf:
        return ""
    parts = sorted(" and ".join(sorted(term)) for term in dnf)
    return parts[0] if len(parts) == 1 else " or ".join(f"({p})" for p in parts)


class Lock:
    def __init__(self, path: Path = LOCK) -> None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LockError(f"{path} not found: run `make lock` in a source checkout") from None
        except tomllib.TOMLDecodeError as exc:
            raise LockError(f"{path} is not valid TOML: {exc}") from None
        self.path = path
        self.packages: dict[tuple[str, str], dict] = {}
        self.by_name: dict[str, list[str]] = {}
        for package in data.get("package", []):
            name = _normalize(package["name"])
            self.packages[(name, package["version"])] = package
            self.by_name.setdefault(name, []).append(package["version"])
        roots = [
            key
            for key, package in self.packages.items()
            if package.get("source", {}).get("editable") == "."
            or package.get("source", {}).get("virtual") == "."
        ]
        if len(roots) != 1:
            raise LockError(f"{path}: expected one project at '.', found {len(roots)}")
        self.root = roots[0]

    @property
    def extras(self) -> set[str]:
        return set(self.packages[self.root].get("optional-dependencies", {}))

    def _target(self, dep: dict, owner: tuple[str, str]) -> tuple[str, str]:
        name = _normalize(dep["name"])
        versions = self.by_name.get(name, [])
        version = dep.get("version")
        if version is None:
            if len(versions) != 1:
                raise LockError(f"{self.path}: {owner[0]} depends on {name}, locked {len(versions)} times")
            version = versions[0]
        if (name, version) not in self.packages:
            raise LockError(f"{self.path}: {owner[0]} depends on {name} {version}, which is not locked")
        return name, version

    def closure(self, extras: Sequence[str] = ()) -> dict[tuple[str, str], Dnf]:
        """Every locked package the project with ``extras`` installs, with when it does."""
        unknown = set(extras) - self.extras
        if unknown:
            raise LockError(f"unknown extra(s) {sorted(unknown)}; the project has {sorted(self.extras)}")
        # Nodes are (package, extra or None): a package pulled in with an extra brings that extra's deps.
        reach: dict[tuple[tuple[str, str], str | None], Dnf] = {(self.root, None): ALWAYS}
        for name in extras:
            reach[(self.root, name)] = ALWAYS
        pending = list(reach)
        while pending:
            node = pending.pop()
            key, wanted = node
            package = self.packages[key]
            edges = (
                package.get("dependencies", [])
                if wanted is None
                else package.get("optional-dependencies", {}).get(wanted, [])
            )
            for dep in edges:
                target = self._target(dep, key)
                edge = dep.get("marker")
                terms = reach[node] if edge is None else frozenset(t | {_atom(edge)} for t in reach[node])
                for sub in (None, *dep.get("extra", ())):
                    child = (target, sub)
                    merged = _absorb(reach.get(child, frozenset()) | terms)
                    if merged != reach.get(child):
                        reach[child] = merged
                        pending.append(child)
        result: dict[tuple[str, str], Dnf] = {}
        for (key, wanted), dnf in reach.items():
            if wanted is None and key != self.root:
                result[key] = dnf
        return result

    def versions(self, extras: Sequence[str] = ()) -> dict[str, list[tuple[str, str]]]:
        """name -> [(version, marker text)] of what ``extras`` install."""
        out: dict[str, list[tuple[str, str]]] = {}
        for (name, version), dnf in sorted(self.closure(extras).items()):
            out.setdefault(name, []).append((version, marker_text(dnf)))
        return out

    def requirements(self, extras: Sequence[str] = (), *, hashes: bool = True) -> str:
        """A pip requirements file (``pip install --no-deps --require-hashes -r``) for ``extras``."""
        what = "the base dependencies" + (f" and the extras {', '.join(sorted(extras))}" if extras else "")
        lines = [
            f"# The locked versions (uv.lock) of {what}, generated by deploy/lockfile.py.",
            "# Do not edit: change pyproject.toml and run `make lock`.",
        ]
        for (name, version), dnf in sorted(self.closure(extras).items()):
            package = self.packages[(name, version)]
            if "registry" not in package.get("source", {}):
                raise LockError(f"{name} {version} is not from a package index: {package.get('source')}")
            marker = marker_text(dnf)
            line = f"{name}=={version}" + (f" ; {marker}" if marker else "")
            if hashes:
                files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
                digests = sorted({f["hash"] for f in files if "hash" in f})
                if not digests:
                    raise LockError(f"{name} {version} has no hash in {self.path}")
                line += "".join(f" \\\n    --hash={digest}" for digest in digests)
            lines.append(line)
        return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lockfile.py",
        description="Write a pinned, hashed requirements file from uv.lock (standard library only).",
    )
    parser.add_argument("--extra", action="append", default=[], help="an extra to include (repeatable)")
    parser.add_argument("--lock", type=Path, default=LOCK, help="the lock file (default: the repository's)")
    parser.add_argument("--no-hashes", action="store_true", help="pins only")
    parser.add_argument("--out", type=Path, help="write here instead of standard output")
    args = parser.parse_args(argv)
    try:
        text = Lock(args.lock).requirements(args.extra, hashes=not args.no_hashes)
    except LockError as exc:
        print(f"lockfile.py: {exc}", file=sys.stderr)
        return 2
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
