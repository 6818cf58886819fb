"""The HTTP layer: REST requests in, the services' answers out, nothing else.

Each request is matched against the routes (``routes``), its request message is built strictly
from path, query string and body (an unknown field or query parameter is a 400
INVALID_ARGUMENT naming it, as Google answers), the service method runs, and its result is
encoded as REST JSON (``enum-encoding=int`` when the client's ``$alt`` asks for it, as Google's
REST transports do). An unknown path is a 404 NOT_FOUND naming it. Faults are injected here, on
``pipelineJobs.create``.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from collections.abc import Callable, Mapping
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from google.protobuf.descriptor import FieldDescriptor

from stack.json_http import JsonHandler
from stack.vertex import protos
from stack.vertex.audit import PRINCIPAL_HEADER
from stack.vertex.context import Caller
from stack.vertex.errors import ApiError, invalid_argument
from stack.vertex.routes import Route, match

if TYPE_CHECKING:
    from stack.vertex.emulator import VertexEmulator

log = logging.getLogger(__name__)

# System parameters any Google REST API accepts (https://cloud.google.com/apis/docs/system-parameters).
_SYSTEM: Final = frozenset(
    {"$alt", "alt", "$prettyPrint", "prettyPrint", "key", "fields", "$fields", "quotaUser", "$.xgafv",
     "access_token", "callback", "$callback", "upload_protocol", "uploadType", "$userProject"}
)  # fmt: skip
_INTS: Final = {
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
}  # fmt: skip


def _field(descriptor: Any, name: str) -> Any:
    for field in descriptor.fields:
        if name in (field.name, field.json_name):
            return field
    return None


def _query_value(field: Any, raw: str, key: str) -> Any:
    try:
        if field.type in _INTS:
            return int(raw)
        if field.type == FieldDescriptor.TYPE_BOOL:
            return {"true": True, "false": False}[raw.lower()]
        if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return float(raw)
    except (ValueError, KeyError):
        raise invalid_argument(f"Invalid value at '{key}': {raw!r}.", key) from None
    return raw


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[last] = value


def build_request(
    route: Route, variables: Mapping[str, str], query: Mapping[str, list[str]], body: bytes
) -> Any:
    """The request message of ``route`` from path variables, query string and body."""
    doc: dict[str, Any] = {}
    if route.body and body.strip():
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise invalid_argument(f"Invalid JSON payload received. {exc}.") from None
        if route.body == "*":
            if not isinstance(payload, dict):
                raise invalid_argument("Invalid JSON payload received. Expected an object.")
            doc = payload
        else:
            doc[route.body] = payload
    for key, values in query.items():
        if key in _SYSTEM:
            continue
        descriptor, field = route.request.DESCRIPTOR, None
        for part in key.split("."):
            field = _field(descriptor, part) if descriptor is not None else None
            if field is None:
                raise invalid_argument(
                    f'Invalid JSON payload received. Unknown name "{key}": Cannot bind query parameter. '
                    f"Field '{key}' could not be found in request message.",
                    key,
                )
            descriptor = field.message_type
        assert field is not None
        typed = [_query_value(field, v, key) for v in values]
        _set(doc, key, typed if field.is_repeated else typed[-1])
    for name, value in variables.items():
        _set(doc, name, value)
    return protos.parse(doc, route.request)


def handler_class(emulator: VertexEmulator) -> type[JsonHandler]:
    class Handler(JsonHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Without it Nagle's algorithm and delayed ACKs add ~40 ms to every answer.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _raw(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _dispatch(self, verb: str) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            query = parse_qs(url.query, keep_blank_values=True)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            emulator.count_request()
            found = match(emulator.routes, verb, path)
            if found is None:
                self.answer(
                    404,
                    ApiError(
                        "NOT_FOUND", f"No such method: {verb} {path} is not a route of this API."
                    ).body(),
                )
                return
            route, variables = found
            int_enums = any("enum-encoding=int" in v for v in query.get("$alt", []))
            caller = Caller(
                principal=self.headers.get(PRINCIPAL_HEADER) or emulator.principal,
                user_agent=self.headers.get("User-Agent", ""),
            )
            try:
                if route.method == "PredictionService.RawPredict":
                    status, headers, data = emulator.endpoints.raw_predict(
                        variables["endpoint"], body, self.headers.get("Content-Type", "")
                    )
                    self._raw(status, headers, data)
                    return
                request = build_request(route, variables, query, body)
                result = emulator.call(route, request, caller)
                self.answer(200, protos.to_dict(result, int_enums=int_enums))
            except ApiError as exc:
                self.answer(exc.http_status, exc.body())
            except Exception as exc:  # a bug of the emulator: say so as Google would (500 INTERNAL)
                log.exception("%s %s failed", verb, path)
                self.answer(500, ApiError("INTERNAL", f"{type(exc).__name__}: {exc}").body())

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that died mid-request (the reliability run kills instances)
        super().handle_error(request, client_address)


def sleep(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep that ends early when the emulator stops."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop():
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
