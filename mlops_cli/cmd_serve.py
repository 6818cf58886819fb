"""``mlops-events serve``: the serving container's entry point (Vertex AI custom-container contract).

Everything comes from the environment Vertex sets (``AIP_*``) and the Model's
``containerSpec.env`` (``MLOPS_*``); see docs/serving.md. The flags override the environment for
a run by hand.
"""

from __future__ import annotations

import argparse
import os
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model artifact over HTTP under Vertex AI's custom-container contract",
        description="Load model.joblib + metadata.json from $AIP_STORAGE_URI (gs:// or a local folder) and "
        "answer $AIP_HEALTH_ROUTE and $AIP_PREDICT_ROUTE on 0.0.0.0:$AIP_HTTP_PORT; write sampled "
        "request/response records under $MLOPS_SERVING_RECORDS_URI. Stops cleanly on SIGTERM.",
    )
    p.add_argument("--model-uri", help="the model artifact folder (default: $AIP_STORAGE_URI)")
    p.add_argument("--port", type=int, help="the port (default: $AIP_HTTP_PORT, else 8080)")
    p.add_argument("--host", default="0.0.0.0", help="the address to listen on (default: 0.0.0.0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.serving import contract

    env = dict(os.environ)
    if args.model_uri:
        env[contract.AIP_STORAGE_URI] = args.model_uri
    if args.port is not None:
        env[contract.AIP_HTTP_PORT] = str(args.port)
    try:
        settings = contract.Settings.from_env(env)
    except contract.SettingsError as exc:
        print(f"mlops-events serve: {exc}", file=sys.stderr)
        return 2
    from pipelines.serving.container import run as serve

    serve(settings, host=args.host)
