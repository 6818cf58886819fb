"""The environment of a function under test: exactly the settings given, nothing from the shell."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from functions.runtime import reset_runtime

# What the developer's shell or an earlier test may have set that would point the functions'
# rules, dead letters or guards somewhere else (real storage above all).
FOREIGN = ("MLOPS_CONFIG", "DEAD_LETTER_TOPIC", "STORAGE_EMULATOR_HOST", "MLOPS_STATE_BUCKET", "K_SERVICE")


def set_function_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """Clear ``FOREIGN``, set ``env``, and make the next request build its runtime from it."""
    for key in FOREIGN:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_runtime()
