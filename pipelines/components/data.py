"""Read datasets from one or more URIs (gs://... or local paths) in CSV, JSONL or Parquet."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Final

from pipelines.components.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

FORMATS: Final = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}
PREDICTIONS_MARK: Final = ".predictions."


def split_uris(data_uri: str) -> list[str]:
    """``data_uri`` is one URI or several, comma-separated; blanks are ignored."""
    return [u.strip() for u in data_uri.split(",") if u.strip()]


def data_format(uri: str) -> str:
    name = uri.rsplit("/", 1)[-1].lower()
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise DataError(
        f"cannot tell the format of {uri!r}: expected a name ending in {', '.join(sorted(FORMATS))}"
    )


def expand(uri: str) -> list[str]:
    """A URI ending in ``/`` is a folder: every dataset file under it, sorted by name."""
    from pipelines import storage_io

    if not uri.endswith("/"):
        return [uri]
    found = sorted(u for u in storage_io.list_uris(uri) if _is_dataset(u))
    if not found:
        raise DataError(f"no CSV, JSONL or Parquet file under {uri!r}")
    return found


def _is_dataset(uri: str) -> bool:
    if PREDICTIONS_MARK in uri.rsplit("/", 1)[-1]:
        return False  # batch predictions written beside their input are outputs, not data
    try:
        data_format(uri)
    except DataError:
        return False
    return True


def parse_table(raw: bytes, fmt: str, uri: str = "<bytes>") -> pd.DataFrame:
    import pandas as pd

    if not raw.strip():
        raise DataError(f"{uri} is empty (0 rows)")
    try:
        if fmt == "csv":
            return pd.read_csv(io.BytesIO(raw))
        if fmt == "jsonl":
            return pd.read_json(io.BytesIO(raw), lines=True)
        return pd.read_parquet(io.BytesIO(raw))
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        raise DataError(f"cannot parse {uri} as {fmt}: {exc}") from exc


def read_table(uri: str) -> pd.DataFrame:
    from pipelines import storage_io

    fmt = data_format(uri)
    try:
        raw = storage_io.read_bytes(uri)
    except storage_io.StorageError as exc:
        raise DataError(f"dataset {uri} does not exist") from exc
    return parse_table(raw, fmt, uri)


def load_dataset(data_uri: str) -> pd.DataFrame:
    """Every table named by ``data_uri`` (comma-separated URIs or folders), stacked by column name."""
    import pandas as pd

    uris = [u for part in split_uris(data_uri) for u in expand(part)]
    if not uris:
        raise DataError("no dataset URI given (data_uri is empty)")
    frames = [read_table(u) for u in uris]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True, sort=False)
    if frame.empty:
        raise DataError(f"dataset {data_uri} has no rows")
    return frame


def columns_of(uri: str) -> list[str]:
    """The column names of a dataset file, reading as little as its format allows."""
    from pipelines import storage_io

    fmt = data_format(uri)
    raw = storage_io.read_bytes(uri)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(io.BytesIO(raw)).names)
    first = raw.split(b"\n", 1)[0]
    return [str(c) for c in parse_table(first + b"\n", fmt, uri).columns] if first.strip() else []


def write_frame(frame: pd.DataFrame, path: str) -> None:
    """Write an intermediate table (a KFP Dataset artifact) as Parquet."""
    frame.to_parquet(path, index=False)


def read_frame(path: str) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(path)


def to_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    if fmt == "jsonl":
        return frame.to_json(orient="records", lines=True).encode()
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()
