from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from events.envelope import from_http
from events.model import PubSubMessage
from events.parse import parse
from pipelines.alerts import PushPublisher


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.received.append((self.path, dict(self.headers.items()), body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.received = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", server.received  # type: ignore[attr-defined]
    server.shutdown()


def test_push_publisher_posts_an_envelope_the_parser_reads(
    listener: tuple[str, list[tuple[str, dict[str, str], bytes]]],
) -> None:
    url, received = listener
    message_id = PushPublisher("p", url).publish("alerts", b'{"alert": 1}', {"kind": "drift"})
    ((path, headers, body),) = received
    assert path == "/projects/p/topics/alerts"
    event = parse(from_http(headers, body, path))
    assert isinstance(event, PubSubMessage)
    assert (event.topic, event.message_id, event.json) == ("alerts", message_id, {"alert": 1})
    assert event.attributes == {"kind": "drift"}
