"""The serving container, ``mlops-events serve``: Vertex AI's custom-container contract.

- Listens on ``0.0.0.0:$AIP_HTTP_PORT`` at once; loads the model artifact from
  ``$AIP_STORAGE_URI`` (gs:// or a local folder) in the background. ``GET $AIP_HEALTH_ROUTE``
  answers 503 while loading and 200 once the model is loaded. A model that cannot be loaded ends
  the process (exit code 3) after one JSON error line: Vertex shows it and the deployment fails.
- ``POST $AIP_PREDICT_ROUTE`` ``{"instances": [...], "parameters": {...}?}`` ->
  ``{"predictions": [...]}`` (shapes in ``pipelines.serving.predictor``); bad instances are a
  400 ``{"error": "..."}`` naming the instance and feature. ``parameters`` must be an object when
  given; no parameter is defined yet, so its keys are ignored.
- Sampled request/response records go to ``$MLOPS_SERVING_RECORDS_URI`` (``records``), off the
  request path; they are flushed when the worker stops (SIGTERM).
- One JSON line on stdout per worker start: model, version, features, routes, records.

Server: gunicorn (installed with functions-framework) with the ``gthread`` worker, one process
and ``MLOPS_SERVING_THREADS`` threads by default: the model is loaded once, a large batch holds
one thread while health checks are answered by the others.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NoReturn

from pipelines.serving.contract import MODEL_NAME_ENV, RECORDS_URI_ENV, SAMPLE_RATE_ENV, Settings
from pipelines.serving.predictor import InstanceError, ServedModel
from pipelines.serving.records import RecordWriter, Write

MAX_BODY_BYTES: Final = 32 * 1024 * 1024  # Vertex's shared endpoints cap requests at 1.5 MB
GRACEFUL_SECONDS: Final = 20  # in-flight requests may finish this long after SIGTERM
RECORDS_CLOSE_SECONDS: Final = 8.0  # then the records buffer is written, this long at most
WORKER_BOOT_ERROR: Final = 3  # gunicorn's exit code for "worker failed to boot": it halts
REQUEST_ID_HEADER: Final = "HTTP_X_REQUEST_ID"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def log_json(severity: str, message: str, **fields: Any) -> None:
    """One structured line (Cloud Logging reads ``severity`` and ``message``)."""
    line = json.dumps({"severity": severity, "message": message, **fields}, default=str)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class ServingApp:
    """The WSGI application of one worker process."""

    def __init__(
        self,
        settings: Settings,
        *,
        load: Callable[[str], ServedModel] = ServedModel.load,
        write: Write | None = None,
        on_load_failure: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._load = load
        self._write = write
        self._on_load_failure = on_load_failure
        self.model: ServedModel | None = None
        self.records: RecordWriter | None = None
        self.identity: dict[str, Any] = {}
        self.error: str | None = None
        self.loaded = threading.Event()
        self._closed = False

    def start(self) -> ServingApp:
        threading.Thread(target=self._load_model, name="model-loader", daemon=True).start()
        return self

    # --- loading ------------------------------------------------------------------------------

    def _load_model(self) -> None:
        started = time.monotonic()
        s = self.settings
        try:
            model = self._load(s.storage_uri)
        except Exception as exc:
            self.error = f"cannot load the model from {s.storage_uri}: {type(exc).__name__}: {exc}"
            log_json("ERROR", self.error, event="serving.load_failed", pid=os.getpid())
            if self._on_load_failure is not None:
                self._on_load_failure()
            return
        meta = model.metadata
        name = s.model_name or _text(meta.get("model_name"))
        version = s.model_version or _text(meta.get("version") or meta.get("model_version"))
        self.identity = {
            "endpoint_id": s.endpoint_id,
            "deployed_model_id": s.deployed_model_id,
            "model_name": name,
            "version": version,
        }
        records_status = self._start_records(name)
        self.model = model
        self.loaded.set()
        log_json(
            "INFO",
            f"serving {name or 'an unnamed model'} v{version or '?'} from {s.storage_uri}",
            event="serving.start",
            model=name,
            version=version,
            features=list(model.feature_names),
            task=model.task,
            classes=meta.get("classes"),
            artifact_uri=s.storage_uri,
            endpoint_id=s.endpoint_id,
            deployed_model_id=s.deployed_model_id,
            port=s.port,
            health_route=s.health_route,
            predict_route=s.predict_route,
            records=records_status,
            load_seconds=round(time.monotonic() - started, 3),
            pid=os.getpid(),
        )

    def _start_records(self, model_name: str | None) -> dict[str, Any]:
        s = self.settings
        if not s.records_uri:
            return {"enabled": False, "reason": f"{RECORDS_URI_ENV} is not set"}
        if s.sample_rate <= 0:
            return {"enabled": False, "reason": f"{SAMPLE_RATE_ENV} is 0"}
        if not model_name:
            return {
                "enabled": False,
                "reason": f"no model name: set {MODEL_NAME_ENV} (the upload's containerSpec.env does)",
            }
        try:
            self.records = RecordWriter(
                records_uri=s.records_uri,
                model_name=model_name,
                context=self.identity,
                sample_rate=s.sample_rate,
                batch=s.records_batch,
                flush_seconds=s.records_flush_seconds,
                capacity=s.records_queue,
                write=self._write,
            )
        except ValueError as exc:  # a model name that gives no folder: serve, without records
            return {"enabled": False, "reason": str(exc)}
        return {
            "enabled": True,
            "prefix": self.records.prefix,
            "sample_rate": s.sample_rate,
            "batch": s.records_batch,
            "flush_seconds": s.records_flush_seconds,
        }

    def close(self) -> None:
        """Flush the records (at worker exit) and log what they came to."""
        if self._closed:
            return
        self._closed = True
        if self.records is not None:
            stats = self.records.close(RECORDS_CLOSE_SECONDS)
            log_json(
                "INFO", "serving stopped", event="serving.stop", records=stats.as_dict(), pid=os.getpid()
            )

    # --- HTTP ---------------------------------------------------------------------------------

    def __call__(self, environ: Mapping[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        request_id = str(environ.get(REQUEST_ID_HEADER) or uuid.uuid4().hex)
        s = self.settings
        if path == s.health_route and method in ("GET", "HEAD"):
            status, body = self._health()
        elif path == s.predict_route and method == "POST":
            status, body = self._predict(environ, request_id)
        elif path in (s.health_route, s.predict_route):
            status, body = 405, {"error": f"{method} is not allowed on {path}"}
        else:
            status, body = (
                404,
                {
                    "error": f"no route {path}: GET {s.health_route} (health), POST {s.predict_route} (predict)"
                },
            )
        data = json.dumps(body, separators=(",", ":")).encode()
        start_response(
            _STATUS[status],
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                ("X-Request-Id", request_id),
            ],
        )
        return [b"" if method == "HEAD" else data]

    def _health(self) -> tuple[int, dict[str, Any]]:
        if self.model is not None:
            out: dict[str, Any] = {"status": "ready", **self.identity}
            if self.records is not None:
                out["records"] = self.records.stats.as_dict()
            return 200, out
        if self.error:
            return 503, {"status": "failed", "error": self.error}
        return 503, {"status": "loading"}

    def _predict(self, environ: Mapping[str, Any], request_id: str) -> tuple[int, dict[str, Any]]:
        model = self.model
        if model is None:
            return 503, {
                "error": self.error or "the model is still loading: retry when the health route answers 200"
            }
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            return 400, {"error": "Content-Length is not a number"}
        if length > MAX_BODY_BYTES:
            return 413, {"error": f"the request body is over {MAX_BODY_BYTES} bytes: send fewer instances"}
        raw = environ["wsgi.input"].read(length if length >= 0 else MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return 413, {"error": f"the request body is over {MAX_BODY_BYTES} bytes: send fewer instances"}
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return 400, {"error": f"the request body is not JSON: {exc}"}
        if not isinstance(body, dict):
            return 400, {"error": 'the request body must be a JSON object {"instances": [...]}'}
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            return 400, {"error": '"instances" must be a non-empty array of objects or arrays'}
        parameters = body.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            return 400, {"error": f'"parameters" must be an object, got {type(parameters).__name__}'}
        try:
            rows = model.named(instances)
            predictions = model.predict(rows)
        except InstanceError as exc:
            return 400, {"error": str(exc)}
        except (ValueError, TypeError) as exc:  # the estimator refused the values
            return 400, {"error": f"the model could not score these instances: {exc}"}
        except Exception as exc:
            log_json(
                "ERROR",
                f"prediction failed: {type(exc).__name__}: {exc}",
                event="serving.error",
                request_id=request_id,
                traceback=traceback.format_exc(limit=5),
            )
            return 500, {"error": f"prediction failed: {type(exc).__name__}: {exc}"}
        if self.records is not None:
            self.records.offer(request_id, rows, predictions)
        return 200, {"predictions": predictions}


_STATUS: Final = {
    200: "200 OK",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _worker_exit(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    if isinstance(app, ServingApp):
        app.close()


def _boot_failed() -> None:
    # From the loader thread: end the worker with gunicorn's boot-error code; the arbiter halts.
    os._exit(WORKER_BOOT_ERROR)


def run(settings: Settings, *, host: str = "0.0.0.0") -> NoReturn:
    """Serve until SIGTERM/SIGINT (gunicorn's arbiter in this process; the app in its workers)."""
    from gunicorn.app.base import BaseApplication

    options: dict[str, Any] = {
        "bind": [f"{host}:{settings.port}"],
        "workers": settings.workers,
        "worker_class": "gthread",
        "threads": settings.threads,
        "graceful_timeout": GRACEFUL_SECONDS,
        "timeout": 60,
        "keepalive": 5,
        "preload_app": False,  # each worker loads the model after it starts listening
        "loglevel": "warning",
        "accesslog": None,
        "errorlog": "-",
        "proc_name": "mlops-events-serve",
        "control_socket_disable": True,  # no $HOME/.gunicorn socket shared between servers
        "worker_exit": _worker_exit,
    }

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> ServingApp:
            return ServingApp(settings, on_load_failure=_boot_failed).start()

    _Gunicorn().run()
    raise SystemExit(0)  # run() exits itself; this keeps the type honest
