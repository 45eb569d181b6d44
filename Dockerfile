# syntax=docker/dockerfile:1
# Three images from one file, each installing its Python set with scripts/install-image.sh from its requirement
# files at its lock's versions (locks/, scripts/lock-images.sh; tests/deploy/test_image_contents.py builds the same
# sets as venvs and runs what each image serves):
#   airflow        Airflow 3.3 + Lectern's DAGs and application, no models: api-server, scheduler, dag-processor,
#                  triggerer when stages run in pods (LECTERN_EXECUTION=kubernetes)
#   airflow-local  airflow + the models' stack on CPU torch: compose, where stages run in the Airflow workers
#   worker         what stage pods run (`python -m lectern stage ...`), without Airflow: CUDA torch, WhisperX,
#                  PyAV, ffmpeg, tesseract

FROM apache/airflow:3.3.2-python3.11 AS airflow
# numeric users: root (0) for apt, then the image's airflow user (50000, group root)
USER 0
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tesseract-ocr tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/*
USER 50000
WORKDIR /opt/lectern
COPY --chown=50000:0 requirements.txt requirements-airflow.txt requirements-ml.txt ./
COPY --chown=50000:0 scripts/install-image.sh scripts/
COPY --chown=50000:0 locks ./locks
ENV PYTHON=python INSTALLER=pip
RUN scripts/install-image.sh airflow
COPY --chown=50000:0 pyproject.toml ./
COPY --chown=50000:0 include ./include
RUN pip install --no-cache-dir --no-deps /opt/lectern
COPY --chown=50000:0 dags /opt/airflow/dags
COPY --chown=50000:0 plugins /opt/airflow/plugins

FROM airflow AS airflow-local
RUN TORCH_VARIANT=cpu scripts/install-image.sh airflow-local

# Python 3.11, as the Airflow images and the locks. PyPI's torch wheels carry their CUDA libraries (nvidia-* in the
# lock); the node's NVIDIA container runtime brings the driver.
FROM python:3.11-slim-bookworm AS worker
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 OMP_THREAD_LIMIT=1 PATH=/opt/venv/bin:$PATH \
    PYTHON=/opt/venv/bin/python
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tesseract-ocr tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/* \
 && python -m venv /opt/venv
WORKDIR /opt/lectern
COPY requirements.txt requirements-ml.txt ./
COPY scripts/install-image.sh scripts/
COPY locks ./locks
RUN TORCH_VARIANT=cuda scripts/install-image.sh worker
COPY pyproject.toml ./
COPY include ./include
RUN pip install --no-deps . \
 && useradd --uid 10001 --create-home lectern
USER 10001
ENTRYPOINT ["python", "-m", "lectern"]
