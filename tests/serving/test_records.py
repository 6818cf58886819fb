"""Serving records: sampled, batched, off the request path, in the layout monitoring reads."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pytest

from pipelines.components import predict
from pipelines.serving.records import OUTPUT_METADATA, RecordWriter, day_prefixes, model_prefix

CONTEXT = {"endpoint_id": "123", "deployed_model_id": "456", "model_name": "churn", "version": "3"}
ROW = {"usage": 1.5, "tenure": 2.0, "plan": "pro"}
PREDICTION = {"prediction": 1, "probabilities": {"0": 0.2, "1": 0.8}}


class Sink:
    """Collects writes; can block or fail them."""

    def __init__(self) -> None:
        self.objects: list[tuple[str, bytes, str, Mapping[str, str]]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.failures = 0
        self.written = threading.Event()

    def __call__(self, uri: str, data: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise OSError("bucket unavailable")
        self.objects.append((uri, data, content_type, dict(metadata)))
        self.written.set()

    def lines(self) -> list[dict]:
        return [json.loads(line) for _, data, _, _ in self.objects for line in data.decode().splitlines()]


def writer(sink: Sink, **kwargs: object) -> RecordWriter:
    args = {
        "records_uri": "gs://b/records/",
        "model_name": "churn",
        "context": CONTEXT,
        "write": sink,
        **kwargs,
    }
    return RecordWriter(**args)  # type: ignore[arg-type]


def test_layout_and_record_lines() -> None:
    sink = Sink()
    w = writer(sink, batch=3, flush_seconds=60)
    assert w.offer("r1", [ROW, {**ROW, "plan": "basic"}], [PREDICTION, {"prediction": 0}])
    assert w.offer("r2", [ROW], [PREDICTION])  # 3 records: a batch
    assert sink.written.wait(5)
    w.close()
    ((uri, _, content_type, metadata),) = sink.objects
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert uri.startswith(f"gs://b/records/churn/{today}/") and uri.endswith(".jsonl")
    assert (content_type, metadata) == ("application/x-ndjson", OUTPUT_METADATA)
    lines = sink.lines()
    assert [line["request_id"] for line in lines] == ["r1", "r1", "r2"]
    assert lines[1] == {
        **CONTEXT,
        "timestamp": lines[1]["timestamp"],
        "request_id": "r1",
        "instance": {**ROW, "plan": "basic"},
        "prediction": {"prediction": 0},
    }
    assert lines[0]["timestamp"].endswith("Z") and lines[0]["timestamp"][:10] == today


def test_batches_by_count_then_by_time_then_at_close() -> None:
    sink = Sink()
    w = writer(sink, batch=4, flush_seconds=0.3)
    for i in range(4):
        w.offer(f"r{i}", [ROW], [0])
    assert sink.written.wait(2)  # the count, long before the period
    assert [len(d.splitlines()) for _, d, _, _ in sink.objects] == [4]
    sink.written.clear()
    started = time.monotonic()
    w.offer("late", [ROW], [0])
    assert sink.written.wait(3)
    assert time.monotonic() - started >= 0.25  # the period, not at once
    w.close()
    assert w.stats.written == 5 and w.stats.objects == 2
    w2 = writer(sink, batch=100, flush_seconds=3600)
    w2.offer("last", [ROW, ROW], [0, 1])
    stats = w2.close()  # what SIGTERM's worker exit does
    assert stats.written == 2 and sink.lines()[-1]["request_id"] == "last"


def test_sampling_zero_keeps_nothing_and_a_rate_samples_whole_requests() -> None:
    sink = Sink()
    w = writer(sink, sample_rate=0.0, batch=1, flush_seconds=0.05)
    assert not w.offer("r", [ROW, ROW], [0, 0])
    w.close()
    assert sink.objects == [] and w.stats.skipped == 2
    draws = iter([0.1, 0.9, 0.3])  # 0.1 < 0.5 kept, 0.9 skipped, 0.3 kept
    w = writer(sink, sample_rate=0.5, batch=1000, random=lambda: next(draws))
    assert [w.offer(r, [ROW, ROW], [0, 0]) for r in ("a", "b", "c")] == [True, False, True]
    w.close()
    assert [line["request_id"] for line in sink.lines()] == ["a", "a", "c", "c"]
    assert (w.stats.sampled, w.stats.skipped) == (4, 2)


def test_a_full_buffer_drops_and_counts_and_never_waits_for_the_bucket() -> None:
    sink = Sink()
    sink.gate.clear()  # the bucket hangs
    w = writer(sink, batch=2, flush_seconds=0.01, capacity=5)
    w.offer("first", [ROW, ROW], [0, 0])  # taken by the thread, which now hangs in write
    time.sleep(0.1)
    started = time.monotonic()
    results = [w.offer(f"r{i}", [ROW, ROW], [0, 0]) for i in range(5)]
    assert time.monotonic() - started < 0.05
    assert results == [True, True, False, False, False]
    assert w.stats.dropped == 6
    sink.gate.set()
    stats = w.close()
    assert stats.written == 6 and stats.dropped == 6 and stats.lost == 0


def test_a_failed_write_is_retried_later_and_counted_if_it_fails_at_close() -> None:
    sink = Sink()
    sink.failures = 1
    w = writer(sink, batch=1, flush_seconds=0.2)
    w.offer("r", [ROW], [0])
    assert sink.written.wait(3)  # second attempt, one period later
    assert w.stats.write_errors == 1 and w.stats.written == 1
    sink.failures = 5
    w.offer("s", [ROW], [0])
    stats = w.close()
    assert stats.lost == 1 and stats.written == 1


def test_day_prefixes_cover_the_window_oldest_first() -> None:
    assert day_prefixes("gs://b/r/", "churn", 3, date(2025, 3, 1)) == [
        "gs://b/r/churn/2025-02-27/",
        "gs://b/r/churn/2025-02-28/",
        "gs://b/r/churn/2025-03-01/",
    ]
    assert model_prefix("gs://b/r", "team a/churn") == "gs://b/r/team-a-churn/"
    with pytest.raises(ValueError):
        day_prefixes("gs://b/r", "churn", 0, date(2025, 3, 1))


def test_monitoring_reads_the_records_back(tmp_path: Path) -> None:
    w = RecordWriter(records_uri=str(tmp_path), model_name="churn", context=CONTEXT, batch=1000)
    w.offer("r1", [ROW, {**ROW, "usage": 3.0}], [PREDICTION, {"prediction": 0, "probabilities": {"0": 1.0}}])
    w.close()
    frame = predict.load_serving(str(tmp_path / "churn") + "/")
    assert frame[["usage", "tenure", "plan", "_prediction"]].to_dict(orient="records") == [
        {"usage": 1.5, "tenure": 2.0, "plan": "pro", "_prediction": 1},
        {"usage": 3.0, "tenure": 2.0, "plan": "pro", "_prediction": 0},
    ]
    assert frame["_probabilities"][0] == {"0": 0.2, "1": 0.8}
    assert frame["_timestamp"].str.endswith("Z").all()


def test_records_still_stuck_in_a_write_at_close_are_counted_lost() -> None:
    sink = Sink()
    sink.gate.clear()  # the bucket never answers
    w = writer(sink, batch=1, flush_seconds=0.01)
    w.offer("a", [ROW, ROW], [0, 0])
    time.sleep(0.1)
    w.offer("b", [ROW], [0])
    stats = w.close(timeout=0.2)
    assert (stats.sampled, stats.written, stats.lost) == (3, 0, 3)
    sink.gate.set()
