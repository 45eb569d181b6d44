"""A real Airflow 3 deployment on loopback for the UI tests: api-server, scheduler, dag-processor and triggerer
(LocalExecutor) on a fresh Postgres database, with the repo's DAGs and plugins, started in their own process
group and stopped with it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.conftest import ROOT

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowServer:
    def __init__(self, home: Path, metadata_db_url: str, extra_env: dict[str, str]):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = home / "airflow-processes.log"
        self.env = {
            **os.environ,
            **extra_env,
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "LECTERN_AIRFLOW_URL": self.url,
        }
        self.process: subprocess.Popen | None = None

    def airflow(self, *args: str) -> str:
        airflow = str(Path(sys.executable).with_name("airflow"))
        proc = subprocess.run([airflow, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed: {proc.stderr[-3000:]}")
        return proc.stdout

    def start(self, pools_file: Path | None = None) -> "AirflowServer":
        (self.home / "airflow").mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        if pools_file:
            self.airflow("pools", "import", str(pools_file))
        airflow = str(Path(sys.executable).with_name("airflow"))
        script = " ".join(f"{airflow} {c} &" for c in COMPONENTS) + " wait"
        with open(self.log_file, "ab") as log:
            # its own session: stopping signals the whole group, the four components and their children
            self.process = subprocess.Popen(["bash", "-c", script], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_until(lambda: self.get("/api/v2/monitor/health") is not None, 180, "the api-server to answer")
        return self

    def stop(self, grace_seconds: float = 60) -> None:
        """SIGTERM to the whole process group, a grace period for the components to shut down, then SIGKILL."""
        if self.process is None:
            return
        group = self.process.pid
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and self._group_alive(group):
            self.process.poll()  # reap the group leader
            time.sleep(0.5)
        if self._group_alive(group):
            os.killpg(group, signal.SIGKILL)
        self.process.wait(timeout=30)

    @staticmethod
    def _group_alive(group: int) -> bool:
        try:
            os.killpg(group, 0)
            return True
        except ProcessLookupError:
            return False

    def get(self, path: str):
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return None

    def wait_until(self, condition, timeout: float, what: str, interval: float = 2.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Airflow exited while waiting for {what}; see {self.log_file}")
            value = condition()
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"waited {timeout:.0f}s for {what}; see {self.log_file}")
