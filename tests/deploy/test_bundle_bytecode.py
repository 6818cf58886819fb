"""The functions bundle ships hash-checked bytecode for every module, so no cold start compiles."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from functions.bundle import build_bundle


def test_every_module_of_the_bundle_has_checked_hash_bytecode(tmp_path: Path) -> None:
    bundle = build_bundle(tmp_path / "bundle")
    sources = sorted(bundle.rglob("*.py"))
    assert bundle / "main.py" in sources
    for source in sources:
        pyc = Path(importlib.util.cache_from_source(str(source)))
        header = pyc.read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER, source
        # PEP 552 flags: bit 0 hash-based, bit 1 check the source: valid whatever the mtimes become.
        assert int.from_bytes(header[4:8], "little") == 0b11, source
        assert header[8:16] == importlib.util.source_hash(source.read_bytes()), source
