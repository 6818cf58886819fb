"""What a retry can fix (5xx, redelivered) and what it cannot (a dead letter)."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud.storage import exceptions as storage_exceptions
from google.resumable_media import common as media

from functions.failures import describe, is_transient
from functions.guards.deferred import Deferred
from pipelines.launch.base import PermanentLaunchError, TransientLaunchError
from pipelines.storage_io import ConcurrentUpdateError, StorageError


class _Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


@pytest.mark.parametrize(
    "exc",
    [
        TransientLaunchError("429"),
        Deferred("debounce: later"),
        ConcurrentUpdateError("kept conflicting"),
        StorageError("bucket does not exist yet"),
        ConnectionError("reset"),
        TimeoutError(),
        requests.ConnectionError("refused"),
        gexc.ServiceUnavailable("503"),
        gexc.TooManyRequests("429"),
        gexc.Forbidden("not granted yet"),
        media.DataCorruption(None, "checksum differs"),
        storage_exceptions.DataCorruption(None, "checksum differs (what storage 3.x raises)"),
        media.InvalidResponse(_Response(503), "unexpected"),
    ],
)
def test_what_a_retry_can_fix_is_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        PermanentLaunchError("Vertex said 400"),
        KeyError("a bug"),
        ValueError("bad value"),
        RecursionError("deep"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        gexc.BadRequest("invalid object name"),
        media.InvalidResponse(_Response(400), "bad request"),
    ],
)
def test_what_fails_the_same_way_again_is_permanent(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_descriptions_are_bounded() -> None:
    assert len(describe(ValueError("x" * 10_000))) == 500
