"""The emulator's state on disk: one JSON document per resource, at the path of its resource name.

``<state>/projects/123456789012/locations/us-central1/models/42@1.json`` is version 1 of model
42, in the REST JSON of ``aiplatform_v1.Model``; pipeline jobs, endpoints and operations alike.
A restart reloads everything from here. Writes go through a rename, so a crash never leaves
half a document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf.message import Message

from stack.vertex import protos
from stack.vertex.names import write_atomic

M = TypeVar("M", bound=Message)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str, suffix: str = ".json") -> Path:
        return self.root / f"{name}{suffix}"

    def save(self, name: str, message: Message) -> None:
        write_atomic(self.path(name), protos.dump(message))

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def load_all(self, pattern: str, pb_class: type[M]) -> Iterator[tuple[str, M]]:
        """Every stored resource whose name matches the glob ``pattern`` (``projects/*/...``)."""
        for path in sorted(self.root.glob(f"{pattern}.json")):
            name = str(path.relative_to(self.root))[: -len(".json")]
            yield name, protos.load(path.read_text(encoding="utf-8"), pb_class)

    def save_doc(self, name: str, doc: Any, suffix: str) -> None:
        """A document of the emulator's own next to a resource (``suffix`` e.g. ``.serving.json``)."""
        write_atomic(self.path(name, suffix), json.dumps(doc, indent=1, default=str))

    def load_doc(self, name: str, suffix: str) -> Any:
        path = self.path(name, suffix)
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
