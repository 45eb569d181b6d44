"""A real Airflow 3 deployment on this machine: api-server, scheduler, dag-processor and triggerer (LocalExecutor)
with Lectern's DAGs and plugin, started in their own process group and stopped with it. `python -m lectern ui`
runs one for people; the UI tests run one on a fresh Postgres database."""

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

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
AIRFLOW = str(Path(sys.executable).with_name("airflow"))  # the CLI of the Airflow installed beside Lectern


def run_airflow(env: dict[str, str], *args: str) -> str:
    """One `airflow` command; its output, or a RuntimeError with the end of what it wrote to stderr."""
    proc = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed: {proc.stderr[-3000:]}")
    return proc.stdout


def prepare_metadata(home: Path, env: dict[str, str], pools: dict | None = None) -> None:
    """Airflow's metadata DB migrated, and Lectern's pools imported (a scheduler runs no task of a pool that does
    not exist)."""
    (home / "airflow").mkdir(parents=True, exist_ok=True)
    run_airflow(env, "db", "migrate")
    if pools:
        pools_file = home / "airflow-pools.json"
        pools_file.write_text(json.dumps(pools))
        run_airflow(env, "pools", "import", str(pools_file))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes():
    """(pid, the /proc stat fields after the command name, argv as bytes) of each process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        yield int(entry.name), stat, argv


def group_processes(group: int):
    """(pid, the /proc stat fields after the command name, command line) of each process in a process group."""
    for pid, stat, argv in processes():
        if int(stat[2]) == group:
            yield pid, stat, b" ".join(argv).decode(errors="replace").strip()


class LocalAirflow:
    def __init__(self, home: Path, env: dict[str, str], metadata_db_url: str | None = None, port: int | None = None,
                 dags_folder: Path = REPO / "dags", plugins_folder: Path = REPO / "plugins"):
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = home / "airflow-processes.log"
        self.env = {
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",  # new DAG files show within seconds
            **env,
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # the phase DAGs chain on each other's Assets and the backfill triggers them: none starts paused
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # loopback only: no login
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "LECTERN_AIRFLOW_URL": self.url,
        }
        if metadata_db_url:
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_db_url
        self.process: subprocess.Popen | None = None
        self.killed = False

    def start(self, pools: dict | None = None, timeout: float = 180) -> "LocalAirflow":
        """Migrate Airflow's metadata DB, import the pools, start the components; returns once the api-server
        answers."""
        prepare_metadata(self.home, self.env, pools)
        script = " ".join(f"{AIRFLOW} {component} &" for component in COMPONENTS) + " wait"
        with open(self.log_file, "ab") as log:
            # its own session: stopping signals the whole group, the four components and their children
            self.process = subprocess.Popen(["bash", "-c", script], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_until(lambda: self.get("/api/v2/monitor/health") is not None, timeout, "the api-server to answer")
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
        if not self._wait_group_gone(group, grace_seconds):
            self.killed = True
            os.killpg(group, signal.SIGKILL)
            self._wait_group_gone(group, 15)
        self.process.wait(timeout=30)

    def running(self) -> bool:
        return self.process is not None and bool(self.members(self.process.pid))

    def _wait_group_gone(self, group: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.process.poll()  # reap the group leader
            if not self.members(group):
                return True
            time.sleep(0.2)
        return not self.members(group)

    @staticmethod
    def members(group: int) -> list[str]:
        """The live processes of a process group ("pid state command"); zombies, already dead and waiting to be
        reaped, do not count."""
        return [f"{pid} {stat[0]} {command[:120]}" for pid, stat, command in group_processes(group) if stat[0] != "Z"]

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
