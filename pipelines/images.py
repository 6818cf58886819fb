"""The one image of this project (components and serving), as compiled into the templates.

``mlops-events compile --base-image IMAGE`` rewrites ``BASE_IMAGE`` in every task and writes
``MLOPS_SERVING_IMAGE=IMAGE`` into every task's environment, so the registry's uploads name the
image that trained the model (``pipelines.backends.serving_image``). Cheap to import (no kfp).
"""

from __future__ import annotations

from typing import Final

BASE_IMAGE: Final = "mlops-events/python-components:0.1.0"
SERVING_IMAGE_ENV: Final = "MLOPS_SERVING_IMAGE"
