# syntax=docker/dockerfile:1
# Two images from one file:
#   airflow - Airflow 3.3 + Lectern's DAGs and application (no torch): api-server, scheduler, dag-processor, triggerer
#   worker  - what stage pods run (`python -m lectern stage ...`): CUDA torch, WhisperX, decord, ffmpeg, tesseract

FROM apache/airflow:3.3.2-python3.11 AS airflow
# numeric users: root (0) for apt, then the image's airflow user (50000, group root)
USER 0
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tesseract-ocr tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/*
USER 50000
COPY --chown=50000:0 requirements.txt /opt/lectern/requirements.txt
RUN pip install --no-cache-dir -r /opt/lectern/requirements.txt
COPY --chown=50000:0 pyproject.toml /opt/lectern/
COPY --chown=50000:0 include /opt/lectern/include
RUN pip install --no-cache-dir --no-deps /opt/lectern
COPY --chown=50000:0 dags /opt/airflow/dags
COPY --chown=50000:0 plugins /opt/airflow/plugins

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS worker
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 OMP_THREAD_LIMIT=1 PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 python3.12-venv ffmpeg tesseract-ocr tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/* \
 && python3.12 -m venv /opt/venv
WORKDIR /opt/lectern
COPY requirements.txt requirements-ml.txt ./
# CUDA builds of torch/torchaudio that whisperx 3.8 pins, then the rest.
RUN pip install torch==2.8.0 torchaudio==2.8.0 \
 && pip install -r requirements.txt -r requirements-ml.txt \
 && pip install whisperx==3.8.6 openai-whisper==20250625
COPY pyproject.toml ./
COPY include ./include
RUN pip install --no-deps . \
 && useradd --uid 10001 --create-home lectern
USER 10001
ENTRYPOINT ["python", "-m", "lectern"]
