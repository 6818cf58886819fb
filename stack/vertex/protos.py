"""Google's published types at the boundary: request bodies are parsed strictly with the
``google.cloud.aiplatform_v1`` protos, responses are encoded from them as the REST API encodes
them (``json_format``, camelCase names).

The state model works on the raw protobuf classes (``aiplatform_v1.Model.pb()``), not the
proto-plus wrappers: ``json_format`` and ``Any`` packing take them as they are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Final, TypeVar

from google.cloud import aiplatform_v1 as v1
from google.protobuf import any_pb2, json_format, timestamp_pb2
from google.protobuf.message import Message

from stack.vertex.errors import invalid_argument

M = TypeVar("M", bound=Message)

# The raw protobuf classes the emulator reads and writes.
PipelineJob: Final = v1.PipelineJob.pb()
PipelineTaskDetail: Final = v1.PipelineTaskDetail.pb()
Model: Final = v1.Model.pb()
Endpoint: Final = v1.Endpoint.pb()
DeployedModel: Final = v1.DeployedModel.pb()

_UNKNOWN: Final = re.compile(r'has no field named "([^"]+)" at "([^"]+)"')


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _field_path(proto_path: str, where: str) -> str:
    """``PipelineJob.jobDetail.taskDetails[0]`` -> ``pipeline_job.job_detail.task_details[0]``."""
    parts = proto_path.split(".")[1:]
    parts = [snake(p) for p in parts]
    return ".".join(p for p in [where, *parts] if p)


def parse_into(data: Any, message: Message, where: str) -> None:
    """Merge the JSON value ``data`` into ``message``; unknown fields are refused as Google refuses
    them (400 INVALID_ARGUMENT, ``Unknown name "x" at 'field.path': Cannot find field.``)."""
    if not isinstance(data, Mapping):
        raise invalid_argument(
            f"Invalid JSON payload received. Expected an object for '{where or 'request'}'.", where or None
        )
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        text = str(exc)
        unknown = _UNKNOWN.search(text)
        if unknown:
            path = _field_path(unknown.group(2), where)
            at = f" at '{path}'" if path else ""
            raise invalid_argument(
                f'Invalid JSON payload received. Unknown name "{unknown.group(1)}"{at}: Cannot find field.',
                path or unknown.group(1),
            ) from None
        raise invalid_argument(
            f"Invalid JSON payload received. {text.splitlines()[0]}", where or None
        ) from None


def parse(data: Any, pb_class: type[M], where: str = "") -> M:
    message = pb_class()
    parse_into(data, message, where)
    return message


def to_dict(message: Message, *, int_enums: bool = False) -> dict[str, Any]:
    """The REST JSON of a message (``enum-encoding=int`` when the client asked for it)."""
    result: dict[str, Any] = json_format.MessageToDict(
        message, preserving_proto_field_name=False, use_integers_for_enums=int_enums
    )
    return result


def dump(message: Message) -> str:
    """For the state directory."""
    text: str = json_format.MessageToJson(message, indent=1)
    return text


def load(text: str, pb_class: type[M]) -> M:
    # Lenient on reload: a state directory written by another version must not stop the emulator.
    message = pb_class()
    json_format.Parse(text, message, ignore_unknown_fields=True)
    return message


def pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def timestamp(seconds: float | None = None) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int((time.time() if seconds is None else seconds) * 1e9))
    return ts


def seconds(ts: timestamp_pb2.Timestamp) -> float:
    return float(ts.ToNanoseconds()) / 1e9
