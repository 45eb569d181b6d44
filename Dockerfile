# syntax=docker/dockerfile:1
# Three images from one file, each installing its Python set with scripts/install-image.sh from its requirement
# files at its lock's versions (locks/, scripts/lock-images.sh) into one venv, /opt/venv:
#   airflow        Airflow 3.3 (from its lock) + Lectern's DAGs and application, no models: api-server, scheduler,
#                  dag-processor, triggerer when stages run in pods (LECTERN_EXECUTION=kubernetes)
#   airflow-local  airflow + the models' stack on CPU torch: compose, where stages run in the Airflow workers
#   worker         what stage pods run (`lectern stage ...`), without Airflow: CUDA torch, WhisperX with the CUDA 12
#                  cuBLAS its CTranslate2 loads, PyAV, ffmpeg, tesseract
# The bases are build arguments (defaults: the public images); `make test-images` builds every target from a local
# Debian bookworm with Python 3.11 and runs what each serves (tests/images). The building machine's package-index
# settings come in as build arguments too, for the installs only; none of them stays in an image.
ARG PYTHON_BASE=python:3.11-slim-bookworm

FROM ${PYTHON_BASE} AS base
# The package-index settings, in every stage that installs (a build argument lives in its own stage), unset unless
# given: none is written into an image.
ARG PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CERT UV_INDEX_URL UV_EXTRA_INDEX_URL SSL_CERT_FILE UV_NATIVE_TLS
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    PYTHON=/opt/venv/bin/python UV=/opt/venv/bin/uv UV_LINK_MODE=copy UV_CACHE_DIR=/var/cache/uv
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tesseract-ocr tesseract-ocr-eng curl \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
# Downloads are kept between builds in a cache mount, never in a layer.
RUN --mount=type=cache,target=/var/cache/uv --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install uv==0.13.10
WORKDIR /opt/lectern
COPY scripts/install-image.sh scripts/
COPY locks ./locks

FROM base AS airflow
ARG PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CERT UV_INDEX_URL UV_EXTRA_INDEX_URL SSL_CERT_FILE UV_NATIVE_TLS
COPY requirements.txt requirements-airflow.txt ./
RUN --mount=type=cache,target=/var/cache/uv scripts/install-image.sh airflow
COPY pyproject.toml ./
COPY include ./include
COPY scripts/airflow-entrypoint.sh /usr/local/bin/airflow-entrypoint
# Airflow's conventions, as its own image and Helm chart expect them: user 50000 in group 0, AIRFLOW_HOME
# /opt/airflow with the DAGs and the plugin in it.
ENV AIRFLOW_HOME=/opt/airflow AIRFLOW__CORE__LOAD_EXAMPLES=False
RUN --mount=type=cache,target=/var/cache/uv uv pip install --no-deps /opt/lectern \
 && useradd --uid 50000 --gid 0 --create-home airflow \
 && mkdir -p /opt/airflow/logs /opt/airflow/auth \
 && chown -R 50000:0 /opt/airflow && chmod -R g+rwX /opt/airflow
COPY --chown=50000:0 dags /opt/airflow/dags
COPY --chown=50000:0 plugins /opt/airflow/plugins
USER 50000
ENTRYPOINT ["airflow-entrypoint"]
CMD ["version"]

FROM airflow AS airflow-local
ARG PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CERT UV_INDEX_URL UV_EXTRA_INDEX_URL SSL_CERT_FILE UV_NATIVE_TLS
USER 0
COPY requirements-ml.txt ./
RUN --mount=type=cache,target=/var/cache/uv TORCH_VARIANT=cpu scripts/install-image.sh airflow-local
USER 50000

FROM base AS worker
ARG PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CERT UV_INDEX_URL UV_EXTRA_INDEX_URL SSL_CERT_FILE UV_NATIVE_TLS
ENV OMP_THREAD_LIMIT=1
COPY requirements.txt requirements-ml.txt requirements-gpu.txt ./
RUN --mount=type=cache,target=/var/cache/uv TORCH_VARIANT=cuda scripts/install-image.sh worker
# CTranslate2 (faster-whisper, WhisperX) dlopens libcublas.so.12; torch's CUDA 13 libraries are found by torch
# itself. The CUDA 12 cuBLAS wheel (requirements-gpu.txt) is put on the loader's path.
ENV LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib
COPY pyproject.toml ./
COPY include ./include
RUN --mount=type=cache,target=/var/cache/uv uv pip install --no-deps /opt/lectern \
 && useradd --uid 10001 --create-home lectern
USER 10001
ENTRYPOINT ["lectern"]
