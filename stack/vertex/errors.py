"""Errors answered as Google APIs answer them: a ``google.rpc.Status`` in the REST error envelope.

``{"error": {"code": <HTTP status>, "message": ..., "status": "<google.rpc.Code name>", "details": [...]}}``
(https://cloud.google.com/apis/design/errors#http_mapping). Resources carry a plain
``google.rpc.Status`` (``{"code": <rpc code>, "message": ...}``) in their ``error`` field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

# google.rpc.Code name -> (rpc code, HTTP status), from google/rpc/code.proto.
CODES: Final[Mapping[str, tuple[int, int]]] = {
    "CANCELLED": (1, 499),
    "UNKNOWN": (2, 500),
    "INVALID_ARGUMENT": (3, 400),
    "DEADLINE_EXCEEDED": (4, 504),
    "NOT_FOUND": (5, 404),
    "ALREADY_EXISTS": (6, 409),
    "PERMISSION_DENIED": (7, 403),
    "RESOURCE_EXHAUSTED": (8, 429),
    "FAILED_PRECONDITION": (9, 400),
    "ABORTED": (10, 409),
    "OUT_OF_RANGE": (11, 400),
    "UNIMPLEMENTED": (12, 501),
    "INTERNAL": (13, 500),
    "UNAVAILABLE": (14, 503),
    "UNAUTHENTICATED": (16, 401),
}


class ApiError(Exception):
    """A request the API refuses; ``status`` is a google.rpc.Code name."""

    def __init__(self, status: str, message: str, details: Sequence[Mapping[str, Any]] = ()) -> None:
        if status not in CODES:
            raise ValueError(f"unknown google.rpc.Code {status!r}")
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = list(details)

    @property
    def http_status(self) -> int:
        return CODES[self.status][1]

    @property
    def rpc_code(self) -> int:
        return CODES[self.status][0]

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.http_status, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def rpc_status(self) -> dict[str, Any]:
        """As a ``google.rpc.Status`` (what an Operation's or a job's ``error`` holds)."""
        return {"code": self.rpc_code, "message": self.message}


def rpc_status(status: str, message: str) -> dict[str, Any]:
    return {"code": CODES[status][0], "message": message}


def invalid_argument(message: str, field: str | None = None) -> ApiError:
    details = (
        [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        ]
        if field
        else []
    )
    return ApiError("INVALID_ARGUMENT", message, details)


def not_found(what: str) -> ApiError:
    return ApiError("NOT_FOUND", f"{what} not found.")


def already_exists(message: str) -> ApiError:
    return ApiError("ALREADY_EXISTS", message)


def failed_precondition(message: str) -> ApiError:
    return ApiError("FAILED_PRECONDITION", message)
