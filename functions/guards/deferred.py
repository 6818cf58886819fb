"""Deferred: the guards' "not now, later" answer, shared by debounce and concurrency."""

from __future__ import annotations

from pipelines.launch.base import TransientLaunchError


class Deferred(TransientLaunchError):
    """Not now, later: the function answers 500 so the platform redelivers the event with back-off
    (a debounce window still open; a run still active under ``concurrency: defer``)."""
