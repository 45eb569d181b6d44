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
# llama-cpp-python is a source package (llama.cpp compiled with cmake): 7-9 minutes on 2 cores. Its wheel is built
# once into a cache outside the checkout, which later set-ups (and CI on the same machine) install from. Built for
# AVX2, not -march=native: the native build crashed (SIGSEGV) on its first token on this Xeon, whose AMX it used,
# and a wheel kept in a cache may meet another CPU.
wheels=${LECTERN_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lectern/wheels}
llama=$(sed -n -E 's/^llama-cpp-python\[server\]==([^ ]+).*/\1/p' requirements-test.txt)
if ! compgen -G "$wheels/llama_cpp_python-$llama-*.whl" >/dev/null; then
  echo "building llama-cpp-python $llama from source into $wheels (once; 7-9 minutes on 2 cores)"
  mkdir -p "$wheels"
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$venv/bin/python" -m pip wheel -q --no-deps -w "$wheels" \
    "llama-cpp-python==$llama"
fi
# --only-binary: the wheel built above, never PyPI's source package built again by uv with -march=native (that
# build, kept in uv's cache, crashed llama.cpp's server on its first token in CI).
UV_COMPILE_BYTECODE=1 uv install -q -r requirements-test.txt --find-links "$wheels" --only-binary llama-cpp-python
uv install -q --no-deps -r requirements-test-nodeps.txt
uv install -q --no-deps -e .
"$venv/bin/python" -c "import whisperx, airflow, lectern, decord, av, matplotlib, llama_cpp; print('python environment ready:', airflow.__version__)"
# One token from SmolLM2 through the installed llama.cpp: a build that crashes on this CPU fails here, not in a test.
"$venv/bin/python" -m lectern_dev.llm_server --check || {
  echo "llama-cpp-python from $wheels cannot generate on this CPU: remove that wheel and run make setup again" >&2
  exit 1
}
