"""The local prediction server: an HTTP function for functions-framework.

    functions-framework --source pipelines/serving/server.py --target predict --signature-type http --port P

Routes (see ``pipelines.serving`` for the request and log formats):
  POST /v1/endpoints/<endpoint>:predict   (also /endpoints/<endpoint>:predict)
  GET  /health
The registry root (endpoint state, serving logs) comes from ``MLOPS_REGISTRY_BUCKET`` like every
local port (``pipelines.backends.registry_root``). ``serve()`` runs the same app in a thread.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from pipelines.serving.local import EndpointError, ServingCore
from pipelines.storage_io import StorageError

log = logging.getLogger(__name__)

_PATH = re.compile(r"(?:^|/)endpoints/(?P<endpoint>[A-Za-z0-9_.-]+)(?::predict)?/?$")
_cores: dict[str, ServingCore] = {}
_cores_lock = threading.Lock()


def _core() -> ServingCore:
    from pipelines.backends import registry_root

    root = registry_root()
    with _cores_lock:
        if root not in _cores:
            _cores[root] = ServingCore(root)
        return _cores[root]


def predict(request: Any) -> tuple[dict[str, Any], int]:
    """functions-framework HTTP entry point (``request`` is a flask.Request)."""
    path = request.path
    if request.method == "GET" and path.rstrip("/") in ("", "/health"):
        return {"status": "ok"}, 200
    match = _PATH.search(path)
    if request.method != "POST" or match is None:
        return {"error": f"use POST /v1/endpoints/<endpoint>:predict (got {request.method} {path})"}, 404
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {"error": "the body must be a JSON object with 'instances'"}, 400
    endpoint = match.group("endpoint")
    try:
        answer = _core().predict(endpoint, body, request.headers.get("X-Request-Id"))
    except EndpointError as exc:
        log.warning("endpoint %s: %s", endpoint, exc)
        return {"error": str(exc)}, exc.status
    except StorageError as exc:  # the model artifact or the state could not be read
        log.error("endpoint %s: %s", endpoint, exc)
        return {"error": str(exc)}, 500
    except (ValueError, TypeError) as exc:  # the estimator refused the instances (types, shapes)
        log.warning("endpoint %s: bad instances: %s", endpoint, exc)
        return {"error": f"the model could not predict these instances: {exc}"}, 400
    return answer, 200


@dataclass
class ServerHandle:
    url: str
    port: int
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def serve(port: int = 0, host: str = "127.0.0.1") -> ServerHandle:
    """Run the prediction function under functions-framework's app in a background thread."""
    import functions_framework
    from werkzeug.serving import make_server

    app = functions_framework.create_app(target="predict", source=__file__, signature_type="http")
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="prediction-server", daemon=True
    )
    thread.start()
    actual = server.server_port
    return ServerHandle(url=f"http://{host}:{actual}", port=actual, _server=server, _thread=thread)
