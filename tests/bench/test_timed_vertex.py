"""The bench's Vertex records a call just after answering it: a reader must wait for the record
(CI: "first event answered 200, 1 CreatePipelineJob received", the record read a moment early)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ is a tool beside the packages, not an installed package
    sys.path.insert(0, str(REPO))

from bench.common import TimedVertex  # noqa: E402


class LateRecords(TimedVertex):
    """Its records appear on the third read, as after an answer the client read first."""

    def __init__(self, records: list[tuple[float, float]], late_reads: int) -> None:  # no server
        self._records, self._reads, self._late = records, 0, late_reads

    @property
    def timings(self) -> list[tuple[float, float]]:
        self._reads += 1
        return list(self._records) if self._reads > self._late else []


def test_a_record_written_just_after_the_answer_is_waited_for() -> None:
    assert LateRecords([(1.0, 2.0)], late_reads=2).timings_since(0) == [(1.0, 2.0)]


def test_records_already_seen_do_not_count_and_the_wait_ends() -> None:
    vertex = LateRecords([(1.0, 2.0)], late_reads=0)
    assert vertex.timings_since(1, wait=0.01) == []
    assert vertex._reads >= 2  # it looked again before giving up
