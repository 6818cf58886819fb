# The image every pipeline component runs on (kfp_components.BASE_IMAGE; override the name at
# compile time with `mlops-events compile --base-image IMAGE`). It holds this project with its
# `ml` extra, so components install nothing at run time. The pins below are the versions of the
# development environment; tests/pipelines/test_compile.py fails when they disagree.
#
#   docker build -t <registry>/mlops-events/python-components:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLOPS_BACKEND=vertex

WORKDIR /opt/mlops-events

# Pinned component runtime (same versions as local).
RUN pip install \
    "kfp==2.17.0" \
    "scikit-learn==1.9.1" \
    "pandas==2.3.3" \
    "pyarrow==26.0.1" \
    "numpy==2.4.6" \
    "scipy==1.17.1" \
    "joblib==1.6.0"

COPY pyproject.toml README.md ./
COPY events ./events
COPY functions ./functions
COPY pipelines ./pipelines
COPY stack ./stack
COPY mlops_cli ./mlops_cli
RUN pip install ".[ml]" && python -c "import pipelines.components.steps, sklearn, pandas, kfp"
