#!/usr/bin/env bash
# Writes locks/<image>.txt: every package of each image's Python set at one version (uv pip compile over its
# requirement files), which scripts/install-image.sh applies as constraints, so an image built later gets the set
# the tests ran. Run it after changing a requirement file and commit the locks (a test checks they still satisfy
# the requirement files).
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
torch=$(mktemp --suffix=.txt)
echo "torch==2.13.0" > "$torch"
compile() {
  local out=$1 python=$2
  shift 2
  "$uv" pip compile -q --python-version "$python" --no-header --no-annotate "$@" -o "$out"
  # what install-image.sh installs itself, without dependencies, at its own pins
  sed -i -E '/^(torchaudio|torchcodec|whisperx|openai-whisper)==/d' "$out"
}
mkdir -p locks
compile locks/airflow.txt 3.11 requirements-airflow.txt requirements.txt
compile locks/airflow-local.txt 3.11 requirements-airflow.txt requirements.txt requirements-ml.txt "$torch"
compile locks/worker.txt 3.11 requirements.txt requirements-ml.txt requirements-gpu.txt "$torch"
rm -f "$torch"
