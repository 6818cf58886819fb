"""The guards' clock: the state store's time, not this instance's.

Guards compare times written by one instance with the clock of another (a debounce window's
quiet period, a cooldown, an active run's age) and with the objects' own creation times, which
Cloud Storage stamps. Two instances whose clocks differ by 30 s would then disagree about whether
a window is quiet: one releases early and a burst splits in two runs. So every instance reads its
time as *its own clock corrected to the store's*: the offset is measured by one tiny write the
store timestamps (``StateStore.server_time``), taken between two readings of the local clock, and
measured again every ``REFRESH_SECONDS``. The error left is about half a round trip.

``MLOPS_CLOCK_SKEW_SECONDS`` shifts this instance's local clock (the reliability run gives each
instance its own skew, to show the correction works); a deployment never sets it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

REFRESH_SECONDS: Final = 300.0


def skewed(skew_seconds: float) -> Callable[[], float]:
    """The local wall clock, shifted by ``skew_seconds`` (0 in a deployment)."""
    if not skew_seconds:
        return time.time
    return lambda: time.time() + skew_seconds


class StoreClock:
    """``local()`` corrected to the store's clock, as measured by ``probe()`` (the store's time now)."""

    def __init__(
        self, local: Callable[[], float], probe: Callable[[], float], refresh: float = REFRESH_SECONDS
    ) -> None:
        self.local = local
        self.probe = probe
        self.refresh = refresh
        self.offset: float | None = None
        self._measured_at = 0.0  # monotonic
        self._lock = threading.Lock()

    def __call__(self) -> float:
        if self.offset is None or time.monotonic() - self._measured_at > self.refresh:
            self.measure()
        assert self.offset is not None
        return self.local() + self.offset

    def measure(self) -> float:
        """Measure the offset now. Raises when the store cannot be reached and none is known."""
        with self._lock:
            before = self.local()
            try:
                server = self.probe()
            except Exception:
                if self.offset is None:
                    raise
                return self.offset  # keep the last measure; clocks drift slowly
            after = self.local()
            self.offset = server - (before + after) / 2
            self._measured_at = time.monotonic()
            return self.offset
