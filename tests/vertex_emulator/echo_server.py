"""A tiny prediction container for the emulator's tests: honours AIP_HTTP_PORT,
AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE, and answers each instance with what the deployment
told it (AIP_STORAGE_URI, AIP_DEPLOYED_MODEL_ID, AIP_ENDPOINT_ID, one variable of the model's
containerSpec.env). ``ECHO_FAIL=exit`` makes it exit at once, ``ECHO_FAIL=unhealthy`` makes its
health route answer 503 forever."""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path != os.environ["AIP_HEALTH_ROUTE"]:
            self._send(404, {"error": f"no route {self.path}"})
        elif os.environ.get("ECHO_FAIL") == "unhealthy":
            self._send(503, {"status": "loading"})
        else:
            self._send(200, {"status": "ok"})

    def do_POST(self) -> None:
        if self.path != os.environ["AIP_PREDICT_ROUTE"]:
            self._send(404, {"error": f"no route {self.path}"})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        seen = {
            "storage_uri": os.environ.get("AIP_STORAGE_URI"),
            "deployed_model_id": os.environ.get("AIP_DEPLOYED_MODEL_ID"),
            "endpoint_id": os.environ.get("AIP_ENDPOINT_ID"),
            "echo_tag": os.environ.get("ECHO_TAG"),
            "vertex_api_endpoint": os.environ.get("VERTEX_API_ENDPOINT"),
        }
        self._send(200, {"predictions": [{"instance": i, **seen} for i in body["instances"]]})

    def log_message(self, format: str, *args: Any) -> None:
        return


if __name__ == "__main__":
    if os.environ.get("ECHO_FAIL") == "exit":
        print("echo server: told to fail", flush=True)
        sys.exit(3)
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["AIP_HTTP_PORT"])), Handler)
    print(f"echo server on {os.environ['AIP_HTTP_PORT']}", flush=True)
    server.serve_forever()
