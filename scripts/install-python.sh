#!/usr/bin/env bash
# Creates .venv with everything Lectern needs on a CPU machine: the airflow-local image's Python set (Airflow, the
# application, the models' stack on CPU torch; scripts/install-image.sh), the test tools, and Lectern itself.
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip uv
PYTHON="$venv/bin/python" UV="$venv/bin/uv" TORCH_VARIANT=cpu scripts/install-image.sh airflow-local
uv() { "$venv/bin/uv" pip "$@" --python "$venv/bin/python"; }
UV_COMPILE_BYTECODE=1 uv install -q -r requirements-test.txt
uv install -q --no-deps -e .
"$venv/bin/python" -c "import whisperx, airflow, lectern, decord, av, matplotlib; print('python environment ready:', airflow.__version__)"
