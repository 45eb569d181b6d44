#!/usr/bin/env bash
# Installs one image's Python set into the environment of $PYTHON (default: python3), from its requirement files
# only. The Dockerfile runs it for each image, the dev venv is built with it (scripts/install-python.sh), and
# tests/deploy/test_image_contents.py builds a venv per image with it and runs what that image serves.
#
#   airflow        Airflow + the application: the Kubernetes-mode scheduler, api-server, dag-processor, triggerer
#                  (claims, summaries, releases; no stage runs there)
#   airflow-local  airflow + the models' stack: compose, where stages run in the Airflow workers
#   worker         the application + the models' stack, without Airflow: stage pods
#
# TORCH_VARIANT=cpu (default; a local CPU build from /opt/wheels where the machine carries one) or cuda.
set -euo pipefail
image=${1:?usage: install-image.sh airflow|airflow-local|worker}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
variant=${TORCH_VARIANT:-cpu}
torch_version=2.13.0
# INSTALLER=uv (default: $UV, or uv installed into that Python) or pip (the Airflow image, whose user site uv
# cannot install into).
installer=${INSTALLER:-uv}
if [ -n "${UV:-}" ]; then uv_command=("$UV")
else uv_command=("$python" -m uv); [ "$installer" = uv ] && "$python" -m pip install -q uv
fi
install() {
  if [ "$installer" = uv ]; then "${uv_command[@]}" pip install -q "$@" --python "$python"
  else "$python" -m pip install -q --no-cache-dir "$@"; fi
}
uninstall() {
  if [ "$installer" = uv ]; then "${uv_command[@]}" pip uninstall -q "$@" --python "$python"
  else "$python" -m pip uninstall -q -y "$@"; fi
}
# Write the bytecode at install time: uv does not by default, and where PYTHONDONTWRITEBYTECODE is set every
# process would compile its imports from source again (~10 s of loading WhisperX per stage process).
export UV_COMPILE_BYTECODE=1
find_links=()
for dir in /opt/wheels; do [ -d "$dir" ] && find_links+=(--find-links "$dir"); done
# The image's lock (scripts/lock-images.sh): every package at the version the tests ran.
lock=(-c "$here/locks/$image.txt")

application() { install -r "$here/requirements.txt" "${lock[@]}"; }
orchestration() { install -r "$here/requirements-airflow.txt" -r "$here/requirements.txt" "${lock[@]}"; }
models() {
  local constraints
  constraints=$(mktemp)
  if [ "$variant" = cpu ]; then
    echo "torch==$torch_version+cpu" > "$constraints"
    # the machine's CPU build where it carries one, else PyTorch's CPU index (PyPI's torch is the CUDA build)
    local cpu_index=()
    [ ${#find_links[@]} -eq 0 ] && cpu_index=(--extra-index-url https://download.pytorch.org/whl/cpu)
    install "${find_links[@]}" "${cpu_index[@]}" "torch==$torch_version+cpu" "${lock[@]}"
  else
    echo "torch==$torch_version" > "$constraints"
    install "torch==$torch_version" "${lock[@]}"  # PyPI's build, with its CUDA (13) libraries
    install -r "$here/requirements-gpu.txt" "${lock[@]}"  # the CUDA 12 cuBLAS CTranslate2 loads
  fi
  install "${find_links[@]}" -r "$here/requirements-ml.txt" -c "$constraints" "${lock[@]}"
  rm -f "$constraints"
  # whisperx pins torch 2.8 and CUDA-only torchaudio/torchcodec/triton: install it (and the package carrying
  # Whisper's vocabulary files) without dependencies. torchaudio's native libraries are built for another torch
  # and fail to load; its Python part works without them, and WhisperX never calls into them.
  install --no-deps whisperx==3.8.6 openai-whisper==20250625 torchaudio==2.11.0
  # RapidOCR asks for the GUI build of OpenCV (libGL): its dependencies are in requirements-ml.txt, headless
  install --no-deps rapidocr-onnxruntime==1.4.4
  uninstall torchcodec torchvision 2>/dev/null || true
  rm -f "$("$python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"/torchaudio/lib/*.so
}

case "$image" in
  airflow) orchestration ;;
  airflow-local) orchestration; models ;;
  worker) application; models ;;
  *) echo "unknown image $image: airflow, airflow-local or worker" >&2; exit 2 ;;
esac
