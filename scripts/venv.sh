#!/usr/bin/env bash
# Set up the development environment with exactly the versions in uv.lock (`make install`), or
# update the lock on purpose (`make lock`).
#
#   scripts/venv.sh install [EXTRA ...]   create/update $VENV (default .venv) for the extras (default: dev)
#   scripts/venv.sh lock [UV LOCK ARGS]   re-resolve uv.lock after editing pyproject.toml, e.g.
#                                         `--upgrade-package kfp` (one package) or `--upgrade` (all)
#
# uv is used when it is on PATH; otherwise it is installed from the package index into
# .tools/uv-$UV_VERSION (once). Without uv (no index), pip installs the same locked, hash-checked
# versions from a requirements file written by deploy/lockfile.py: the slow path (INSTALLER=pip
# forces it).
set -euo pipefail
cd "$(dirname "$0")/.."

# The one pinned version outside uv.lock: the uv that writes and reads the lock. A newer uv may
# write a lock format an older one cannot read, so the bootstrap is the version that wrote uv.lock.
UV_VERSION=0.13.9

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
BOOT=.tools/uv-$UV_VERSION

say() { printf '==> %s\n' "$*" >&2; }

find_uv() {
    if command -v uv >/dev/null 2>&1; then
        command -v uv
        return 0
    fi
    if [[ -x $BOOT/bin/uv ]]; then
        echo "$BOOT/bin/uv"
        return 0
    fi
    say "uv is not on PATH: installing uv $UV_VERSION into $BOOT (once, a few seconds)"
    # pip --target needs no venv (and is allowed where the system Python is externally managed);
    # a Python without pip gets a small venv of its own instead.
    if "$PYTHON" -m pip install --disable-pip-version-check --target "$BOOT" "uv==$UV_VERSION" >&2 \
        && [[ -x $BOOT/bin/uv ]]; then
        echo "$BOOT/bin/uv"
        return 0
    fi
    rm -rf "$BOOT"
    if "$PYTHON" -m venv "$BOOT" && "$BOOT/bin/python" -m pip install --disable-pip-version-check "uv==$UV_VERSION" >&2 \
        && [[ -x $BOOT/bin/uv ]]; then
        echo "$BOOT/bin/uv"
        return 0
    fi
    rm -rf "$BOOT"
    return 1
}

install_with_uv() {
    local uv=$1
    shift
    local args=()
    for extra in "$@"; do args+=(--extra "$extra"); done
    say "installing the locked versions into $VENV with $uv ($("$uv" --version))"
    # Where PYTHONDONTWRITEBYTECODE is set (as in CI here) Python never caches what it compiles:
    # every process would compile what it imports, and a function's first request (it imports
    # google-cloud-storage) takes seconds, not a fraction of one. Compile at install there, as pip
    # does; elsewhere Python caches on first import and the install skips ~10,000 files.
    local compile=()
    [[ -z ${PYTHONDONTWRITEBYTECODE:-} ]] || compile=(--compile-bytecode)
    # --locked: fail, rather than re-resolve, when pyproject.toml changed without `make lock`.
    if ! UV_PROJECT_ENVIRONMENT=$VENV UV_PYTHON_DOWNLOADS=never \
        "$uv" sync --locked "${compile[@]}" --python "$PYTHON" "${args[@]}"; then
        say "uv sync failed. If it says the lock file needs to be updated: run \`make lock\` and commit uv.lock."
        return 1
    fi
}

install_with_pip() {
    local args=()
    for extra in "$@"; do args+=(--extra "$extra"); done
    say "uv is not available: installing with pip instead. This is the slow path (a few minutes);"
    say "put uv on PATH (or let this script fetch it from the index) for a set-up in seconds."
    [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || "$VENV/bin/python" -m ensurepip
    local requirements=$VENV/requirements.lock.txt
    "$VENV/bin/python" deploy/lockfile.py "${args[@]}" --out "$requirements"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps --require-hashes -r "$requirements"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps -e .
}

command=${1:-install}
shift || true
case $command in
    install)
        extras=("$@")
        [[ ${#extras[@]} -gt 0 ]] || extras=(dev)
        if [[ ${INSTALLER:-} != pip ]] && uv=$(find_uv); then
            install_with_uv "$uv" "${extras[@]}"
        else
            install_with_pip "${extras[@]}"
        fi
        ;;
    lock)
        uv=$(find_uv) || {
            say "make lock needs uv (pip cannot resolve a lock file): put uv $UV_VERSION on PATH"
            exit 1
        }
        "$uv" lock "$@"
        say "uv.lock updated: review \`git diff uv.lock\`, run \`make install test\`, commit uv.lock."
        ;;
    *)
        echo "usage: scripts/venv.sh install [EXTRA ...] | lock [UV LOCK ARGS]" >&2
        exit 2
        ;;
esac
