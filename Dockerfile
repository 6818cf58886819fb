# The one image of the pipelines: every component runs on it (kfp_components.BASE_IMAGE; override
# the name at compile time with `mlops-events compile --base-image IMAGE`) and so does the serving
# container (`mlops-events serve`). It holds this project with its `pipelines` extra, at exactly
# the versions of uv.lock, so components install nothing at run time and run what was tested.
#
#   docker build -t <registry>/mlops-events/python-components:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/mlops-events

# The locked dependencies first (a layer that changes only with uv.lock), hash-checked. The lock is
# read with the standard library (deploy/lockfile.py), so the image needs no uv.
COPY uv.lock ./
COPY deploy/lockfile.py ./deploy/lockfile.py
RUN python deploy/lockfile.py --extra pipelines --out /tmp/requirements.txt \
    && pip install --no-deps --require-hashes -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY pyproject.toml README.md LICENSE ./
COPY events ./events
COPY functions ./functions
COPY pipelines ./pipelines
COPY stack ./stack
COPY mlops_cli ./mlops_cli
COPY deploy ./deploy
COPY bench ./bench
# --no-deps: the project adds no package of its own; `pip check` proves the locked set is complete.
# pip compiles what it installs (PYTHONDONTWRITEBYTECODE only stops Python writing at run time, and
# image layers keep mtimes, so those .pyc stay valid). The sources copied above are compiled too:
# `python -m ...` (every KFP component) runs from this directory and imports them, not the installed
# copy, and nothing compiled at run time is kept. unchecked-hash: an image's files never change.
RUN pip install --no-deps . && pip check \
    && python -m compileall -q --invalidation-mode unchecked-hash events functions pipelines stack mlops_cli deploy bench \
    && python -c "import pipelines.components.steps, sklearn, pandas, kfp, google.cloud.aiplatform" \
    && mlops-events --help > /dev/null
