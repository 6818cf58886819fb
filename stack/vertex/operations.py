"""Long-running operations (``google.longrunning.Operation``), answered like the real API.

A method that Vertex runs as an operation (upload, deploy, ...) gets an ``Operation`` named
``<parent resource>/operations/<id>`` whose ``metadata`` is the method's ``...OperationMetadata``
(``genericMetadata`` with create and update times); its work runs in a thread, and when done the
operation holds ``response`` (an ``Any`` with ``@type``) or ``error`` (a ``google.rpc.Status``).
``operations.get`` answers any of them. The HTTP layer may hold the starting call briefly (see
``wait``) so that fast operations are answered already done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from stack.vertex import protos
from stack.vertex.errors import ApiError, not_found
from stack.vertex.names import numeric_id
from stack.vertex.store import Store

log = logging.getLogger(__name__)

STOPPED = "the emulator stopped while the operation ran"


def _touch(metadata: Message) -> None:
    generic = getattr(metadata, "generic_metadata", None)
    if generic is not None:
        generic.update_time.CopyFrom(protos.timestamp())


def generic_metadata(pb_class: type[Message]) -> Message:
    """A ``...OperationMetadata`` with its ``genericMetadata`` times set to now."""
    metadata = pb_class()
    now = protos.timestamp()
    generic: Any = metadata.generic_metadata  # every Vertex ...OperationMetadata has it
    generic.create_time.CopyFrom(now)
    generic.update_time.CopyFrom(now)
    return metadata


class Operations:
    def __init__(self, store: Store, lock: threading.RLock) -> None:
        self._store = store
        self._lock = lock
        self._done = threading.Condition(lock)
        self._ops: dict[str, operations_pb2.Operation] = {}
        self._threads: list[threading.Thread] = []

    def load(self) -> None:
        """Reload every operation; one that was running when the emulator stopped failed."""
        for name, op in self._store.load_all(
            "projects/*/locations/*/**/operations/*", operations_pb2.Operation
        ):
            if not op.done:
                op.done = True
                op.error.CopyFrom(status_pb2.Status(code=10, message=STOPPED))  # ABORTED
                self._store.save(name, op)
            self._ops[name] = op

    def start(self, parent: str, metadata: Message, work: Callable[[], Message]) -> operations_pb2.Operation:
        """An operation under ``parent`` running ``work`` in a thread; ``work`` returns the
        response message or raises ``ApiError``."""
        op = operations_pb2.Operation(name=f"{parent}/operations/{numeric_id()}", done=False)
        op.metadata.Pack(metadata)
        with self._lock:
            self._ops[op.name] = op
            self._store.save(op.name, op)
        thread = threading.Thread(target=self._run, args=(op.name, metadata, work), daemon=True)
        self._threads.append(thread)
        thread.start()
        return op

    def done(self, parent: str, metadata: Message, response: Message) -> operations_pb2.Operation:
        """An operation that finished as it started (the work was done synchronously)."""
        op = operations_pb2.Operation(name=f"{parent}/operations/{numeric_id()}", done=True)
        op.metadata.Pack(metadata)
        op.response.Pack(response)
        with self._lock:
            self._ops[op.name] = op
            self._store.save(op.name, op)
        return op

    def _run(self, name: str, metadata: Message, work: Callable[[], Message]) -> None:
        response: Message | None = None
        error: status_pb2.Status | None = None
        try:
            response = work()
        except ApiError as exc:
            error = status_pb2.Status(code=exc.rpc_code, message=exc.message)
        except Exception as exc:  # an operation records its failure, whatever it is
            log.exception("operation %s failed", name)
            error = status_pb2.Status(code=13, message=f"{type(exc).__name__}: {exc}")
        with self._lock:
            op = self._ops[name]
            _touch(metadata)
            op.metadata.Pack(metadata)
            if error is not None:
                op.error.CopyFrom(error)
            elif response is not None:
                op.response.Pack(response)
            op.done = True
            self._store.save(name, op)
            self._done.notify_all()

    def get(self, name: str) -> operations_pb2.Operation:
        with self._lock:
            op = self._ops.get(name)
            if op is None:
                raise not_found(f"Operation {name}")
            copy = operations_pb2.Operation()
            copy.CopyFrom(op)
            return copy

    def wait(self, name: str, timeout: float) -> operations_pb2.Operation:
        """The operation once done, or as it is after ``timeout`` seconds."""
        with self._lock:
            self._done.wait_for(lambda: self._ops[name].done, timeout=timeout)
        return self.get(name)

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout)
