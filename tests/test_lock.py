"""uv.lock is the single source of versions: this environment, the image, the functions bundle and
Cloud Build install exactly what it says, and nothing else pins a version by hand."""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement

from deploy.lockfile import Lock, LockError, main

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = Lock(ROOT / "uv.lock")
# Installed by venv/pip themselves, not by the project.
INSTALLERS = {"pip", "setuptools", "wheel"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _applies(marker: str) -> bool:
    return not marker or Marker(marker).evaluate()


def _locked_here(extras: list[str]) -> dict[str, str]:
    """name -> version that ``extras`` install on this interpreter and platform."""
    out: dict[str, str] = {}
    for name, entries in LOCK.versions(extras).items():
        chosen = [version for version, marker in entries if _applies(marker)]
        assert len(chosen) <= 1, f"{name}: several locked versions apply here: {chosen}"
        if chosen:
            out[name] = chosen[0]
    return out


def test_this_environment_holds_exactly_the_locked_versions() -> None:
    """What `make install` built (uv or pip) is the lock's dev set: no newer release slips in."""
    locked = _locked_here(["dev"])
    installed = {_norm(d.metadata["Name"]): d.version for d in md.distributions()}
    installed.pop("mlops-events")
    for name in INSTALLERS:
        installed.pop(name, None)
    assert installed == locked, "run `make install` (or `make lock` if pyproject.toml changed)"


def test_the_lock_matches_pyproject() -> None:
    """Editing a dependency in pyproject.toml without `make lock` fails here (uv sync --locked too)."""
    root = LOCK.packages[LOCK.root]
    locked = {
        (_norm(r["name"]), r.get("specifier", ""), r.get("marker", ""))
        for r in root["metadata"]["requires-dist"]
    }
    declared = set()
    for spec in PYPROJECT["project"]["dependencies"]:
        req = Requirement(spec)
        declared.add((_norm(req.name), str(req.specifier), ""))
    for extra, specs in PYPROJECT["project"]["optional-dependencies"].items():
        for spec in specs:
            req = Requirement(spec)
            if _norm(req.name) == "mlops-events":
                continue  # dev = the other extras, expanded by uv
            declared.add((_norm(req.name), str(req.specifier), f"extra == '{extra}'"))

    def key(entries: set[tuple[str, str, str]]) -> set[tuple[str, frozenset[str], str]]:
        return {(n, frozenset(s.split(",")) - {""}, m) for n, s, m in entries}

    assert key(declared) <= key(locked)
    assert set(LOCK.extras) == set(PYPROJECT["project"]["optional-dependencies"])


def test_nothing_else_pins_versions_by_hand() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"].values()
    for spec in [*PYPROJECT["project"]["dependencies"], *(s for specs in extras for s in specs)]:
        assert "==" not in spec, f"pyproject.toml pins {spec}: pins belong in uv.lock"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "==" not in dockerfile
    cloudbuild = (ROOT / "cloudbuild.yaml").read_text()
    assert "pip install" not in cloudbuild and "==" not in cloudbuild
    install = next(s for s in yaml.safe_load(cloudbuild)["steps"] if s["id"] == "install")
    assert (install["entrypoint"], install["args"]) == ("make", ["install"])
    # The bootstrap uv is the one version outside the lock, pinned once.
    texts = {p: p.read_text() for p in [ROOT / "Makefile", *sorted((ROOT / "scripts").iterdir())]}
    pins = [(p.name, m) for p, t in texts.items() for m in re.findall(r"UV_VERSION=\S+|uv==\S+", t)]
    assert [m for _, m in pins if m.startswith("UV_VERSION=")] == ["UV_VERSION=0.13.9"]
    assert all(m.strip('"') in ("uv==$UV_VERSION", "UV_VERSION=0.13.9") for _, m in pins), pins


def test_set_up_shows_progress() -> None:
    for path in (ROOT / "Makefile", ROOT / "scripts" / "venv.sh"):
        assert not re.search(r"\b(pip|uv)\b[^\n]*\s-q\b", path.read_text()), f"{path.name} hides progress"


def test_the_image_installs_the_locked_pipelines_extra() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "COPY uv.lock" in dockerfile
    assert "python deploy/lockfile.py --extra pipelines --out /tmp/requirements.txt" in dockerfile
    assert "pip install --no-deps --require-hashes -r /tmp/requirements.txt" in dockerfile
    assert "pip install --no-deps ." in dockerfile and "pip check" in dockerfile
    image = _locked_here(["pipelines"])
    for name in (
        "kfp",
        "google-cloud-aiplatform",
        "scikit-learn",
        "pandas",
        "numpy",
        "scipy",
        "joblib",
        "pyarrow",
    ):
        assert image[name] == md.version(name), name  # the image runs what the tests ran


def test_the_bundle_requires_the_locked_base_dependencies_only() -> None:
    from functions.bundle import requirements

    text = requirements()
    pins = dict(re.findall(r"^([a-z0-9-]+)==(\S+)", text, re.M))
    assert pins == {name: v for name, [(v, _)] in LOCK.versions([]).items()}
    assert {"functions-framework", "cloudevents", "google-cloud-storage", "google-cloud-pubsub"} <= set(pins)
    assert not set(pins) & {"kfp", "google-cloud-aiplatform", "scikit-learn", "pandas", "numpy"}
    entries = [e for e in text.split("\n") if re.match(r"^[a-z0-9-]+==", e)]
    assert len(entries) == len(pins) and all(e.endswith("\\") for e in entries), "every pin carries hashes"


def _third_party_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    ours = {"events", "functions", "pipelines", "stack", "mlops_cli", "deploy", "bench", "tests"}
    return {n for n in names if n not in sys.stdlib_module_names and n not in ours and n != "__future__"}


def test_the_functions_need_only_the_base_dependencies() -> None:
    """Every import, lazy ones included, of every module the functions load comes from the base set."""
    code = (
        "import functions.main, sys, json; print(json.dumps(sorted(getattr(m, '__file__', None) or ''"
        " for n, m in sys.modules.items() if n.split('.')[0] in ('events', 'functions', 'pipelines'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    files = {Path(f) for f in json.loads(out.stdout) if f.endswith(".py")}
    assert ROOT / "functions" / "runtime.py" in files
    base = set(LOCK.versions([]))
    providers = md.packages_distributions()
    for path in sorted(files):
        for module in _third_party_imports(path):
            dists = {_norm(d) for d in providers.get(module, [])}
            assert dists & base, f"{path.relative_to(ROOT)} imports {module} ({dists}), not a base dependency"


def test_the_license_is_an_spdx_expression() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert md.metadata("mlops-events")["License-Expression"] == "Apache-2.0"


# --- the lock reader itself, on a small lock -------------------------------------------------------

SMALL = """
version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }
dependencies = [{ name = "a" }, { name = "b", marker = "sys_platform == 'linux'" }]

[package.optional-dependencies]
ml = [
    { name = "np", version = "1.0", source = { registry = "x" }, marker = "python_full_version < '3.12'" },
    { name = "np", version = "2.0", source = { registry = "x" }, marker = "python_full_version >= '3.12'" },
    { name = "c", extra = ["fast"] },
]

[[package]]
name = "a"
version = "1.0"
source = { registry = "x" }
dependencies = [{ name = "b" }]
wheels = [{ url = "u", hash = "sha256:aa" }]

[[package]]
name = "b"
version = "2.0"
source = { registry = "x" }
dependencies = [{ name = "w", marker = "sys_platform == 'win32'" }]
sdist = { url = "u", hash = "sha256:bb" }

[[package]]
name = "w"
version = "1.0"
source = { registry = "x" }
wheels = [{ url = "u", hash = "sha256:ww" }]

[[package]]
name = "np"
version = "1.0"
source = { registry = "x" }
wheels = [{ url = "u", hash = "sha256:n1" }]

[[package]]
name = "np"
version = "2.0"
source = { registry = "x" }
wheels = [{ url = "u", hash = "sha256:n2" }]

[[package]]
name = "c"
version = "3.0"
source = { registry = "x" }
wheels = [{ url = "u", hash = "sha256:cc" }]

[package.optional-dependencies]
fast = [{ name = "d", marker = "platform_machine == 'x86_64' or platform_machine == 'arm64'" }]

[[package]]
name = "d"
version = "4.0"
source = { git = "https://example.invalid/d" }
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "uv.lock"
    path.write_text(SMALL)
    return path


def test_markers_are_carried_along_paths_and_joined_across_them(small: Path) -> None:
    lock = Lock(small)
    # b: directly (linux only) and through a (always): always.
    assert lock.versions([]) == {
        "a": [("1.0", "")],
        "b": [("2.0", "")],
        "w": [("1.0", "sys_platform == 'win32'")],
    }
    text = lock.requirements([], hashes=True)
    assert "a==1.0 \\\n    --hash=sha256:aa\n" in text and "b==2.0 \\\n    --hash=sha256:bb\n" in text


def test_a_forked_package_gets_one_line_per_version(small: Path) -> None:
    versions = Lock(small).versions(["ml"])
    assert versions["np"] == [
        ("1.0", "python_full_version < '3.12'"),
        ("2.0", "python_full_version >= '3.12'"),
    ]
    # An extra asked for on a dependency brings that extra's dependencies, "or" kept grouped.
    assert versions["d"] == [("4.0", "(platform_machine == 'x86_64' or platform_machine == 'arm64')")]


def test_what_a_requirements_file_cannot_say_is_a_clear_error(small: Path, tmp_path: Path) -> None:
    with pytest.raises(LockError, match=r"d 4\.0 is not from a package index"):
        Lock(small).requirements(["ml"])
    with pytest.raises(LockError, match=r"unknown extra\(s\) \['gpu'\]; the project has \['ml'\]"):
        Lock(small).versions(["gpu"])
    with pytest.raises(LockError, match="not found: run `make lock`"):
        Lock(tmp_path / "missing.lock")


def test_the_command_line_writes_a_file_pip_reads(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "requirements.txt"
    assert main(["--lock", str(small), "--no-hashes", "--out", str(out)]) == 0
    assert [line for line in out.read_text().splitlines() if not line.startswith("#")] == [
        "a==1.0",
        "b==2.0",
        "w==1.0 ; sys_platform == 'win32'",
    ]
    assert main(["--lock", str(small), "--extra", "gpu"]) == 2
    assert "unknown extra" in capsys.readouterr().err


# --- the set-up script: uv when it can be had, else pip with a clear message ---------------------


def _fake(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + textwrap.dedent(body))
    path.chmod(0o755)


def _setup_copy(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    (work / "scripts").mkdir(parents=True)
    (work / "deploy").mkdir()
    for rel in ("scripts/venv.sh", "deploy/lockfile.py", "uv.lock"):
        (work / rel).write_bytes((ROOT / rel).read_bytes())
    return work


def test_set_up_uses_uv_on_path_with_the_lock(tmp_path: Path) -> None:
    work, bin_ = _setup_copy(tmp_path), tmp_path / "bin"
    bin_.mkdir()
    _fake(bin_ / "uv", f'echo "$UV_PROJECT_ENVIRONMENT $*" >> {tmp_path}/calls\n')
    env = {**os.environ, "PATH": f"{bin_}:/usr/bin:/bin", "VENV": "venv-x"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(["bash", "scripts/venv.sh", "install", "dev"], cwd=work, env=env, check=True)
    # Where Python may not cache bytecode itself, the install compiles it (as pip does).
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    subprocess.run(["bash", "scripts/venv.sh", "install", "dev"], cwd=work, env=env, check=True)
    calls = [c for c in (tmp_path / "calls").read_text().splitlines() if " sync " in c]
    assert calls == [
        "venv-x sync --locked --python python3 --extra dev",
        "venv-x sync --locked --compile-bytecode --python python3 --extra dev",
    ]


def test_set_up_falls_back_to_pip_and_says_it_is_slow(tmp_path: Path) -> None:
    work, bin_ = _setup_copy(tmp_path), tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "calls"
    # A python whose pip cannot reach an index: the uv bootstrap fails, the locked pip install runs.
    _fake(
        bin_ / "fakepython",
        f"""\
        echo "$*" >> {log}
        if [[ $1 == -m && $2 == venv ]]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
        if [[ $* == *"uv=="* ]]; then exit 1; fi
        if [[ $1 == deploy/lockfile.py ]]; then exec {sys.executable} "$@"; fi
        """,
    )
    env = {**os.environ, "PATH": f"{bin_}:/usr/bin:/bin", "PYTHON": str(bin_ / "fakepython")}
    run = subprocess.run(
        ["bash", "scripts/venv.sh", "install"], cwd=work, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "installing with pip instead. This is the slow path" in run.stderr
    calls = log.read_text()
    assert (
        "-m pip install --disable-pip-version-check --no-deps --require-hashes -r .venv/requirements.lock.txt"
        in calls
    )
    assert "-m pip install --disable-pip-version-check --no-deps -e ." in calls
    assert "kfp==" in (work / ".venv" / "requirements.lock.txt").read_text()
    assert not list((work / ".tools").iterdir()), "a failed bootstrap leaves nothing behind"
