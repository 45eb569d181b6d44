"""Lectern's images built for real on a machine without a Docker engine or a registry: buildah, chroot isolation.

- `local_base()`: the Dockerfile's PYTHON_BASE made here: Debian bookworm (debootstrap, minbase) with Python 3.11,
  venv and pip, trusting the machine's extra CA certificates (as a company's own base image would), committed as a
  local image. Built once; later calls reuse it.
- `build(target)`: `buildah bud` of one Dockerfile target from that base, with the machine's package-index settings
  as build arguments and its local wheels (/opt/wheels: the CPU torch) mounted for the installs only. Downloads are
  kept between builds by the Dockerfile's cache mounts.
- `run_in(image, command, mounts, env)`: a command in a container of the image (`buildah run`), host folders mounted
  at the same paths, on the host's network (a loopback server is reachable).

`podman run` cannot work here (setrlimit refused, hybrid cgroups); buildah's chroot isolation does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

BASE = "localhost/lectern-base-bookworm-py311"
MIRROR = os.environ.get("LECTERN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
ROOT = Path(__file__).resolve().parents[2]
# What pip and uv need to reach the package index from this machine, passed on where set (build arguments: none is
# written into an image).
INDEX_SETTINGS = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL",
                  "SSL_CERT_FILE", "UV_NATIVE_TLS")
LOCAL_WHEELS = Path("/opt/wheels")
EXTRA_CERTIFICATES = Path("/usr/local/share/ca-certificates")


def _buildah(*args: str, timeout: float = 3600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["buildah", *args], check=True, text=True, timeout=timeout, **kwargs)


def prune() -> None:
    """Images no tag names any more (an earlier build's layers, ~9 GB a worker): gone before a build adds more."""
    subprocess.run(["buildah", "rm", "--all"], capture_output=True)  # containers a killed build left
    subprocess.run(["buildah", "rmi", "--prune"], capture_output=True)


def image_exists(name: str) -> bool:
    return subprocess.run(["buildah", "inspect", "--type", "image", name], capture_output=True).returncode == 0


def local_base(name: str = BASE) -> str:
    """The bookworm + Python 3.11 base image, made once (about a minute: debootstrap from the Debian mirror)."""
    if image_exists(name):
        return name
    with tempfile.TemporaryDirectory(dir="/var/tmp") as work:
        rootfs = Path(work) / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,python3-pip,"
                        "ca-certificates", "bookworm", str(rootfs), MIRROR], check=True, capture_output=True,
                       timeout=1800)
        for certificate in EXTRA_CERTIFICATES.glob("*.crt"):
            shutil.copy(certificate, rootfs / "usr/local/share/ca-certificates" / certificate.name)
        subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], check=True, capture_output=True)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = Path(work) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        container = _buildah("from", "scratch", capture_output=True).stdout.strip()
        try:
            _buildah("add", "--quiet", container, str(tar), "/", capture_output=True)
            _buildah("config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                     "--cmd", "/bin/bash", container)
            _buildah("commit", "--quiet", container, name, capture_output=True)
        finally:
            _buildah("rm", container, capture_output=True)
    return name


def build(target: str, base: str = BASE, log: Path | None = None, fresh: bool = False) -> dict:
    """One Dockerfile target built from the base: {"image", "seconds", "size_bytes", "fresh"}. `fresh`: every
    layer built again (the cache mounts' downloads still reused)."""
    name = f"localhost/lectern-{target}:test"
    args = ["bud", "--isolation", "chroot", "--layers", "--target", target, "-t", name,
            "--build-arg", f"PYTHON_BASE={base}", *(["--no-cache"] if fresh else [])]
    for setting in INDEX_SETTINGS:
        if os.environ.get(setting):
            args += ["--build-arg", f"{setting}={os.environ[setting]}"]
    if LOCAL_WHEELS.is_dir():  # the machine's CPU torch (airflow-local), where PyTorch's own index is not reachable
        args += ["--volume", f"{LOCAL_WHEELS}:{LOCAL_WHEELS}:ro"]
    started = time.monotonic()
    with open(log or os.devnull, "w") as output:
        _buildah(*args, str(ROOT), stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)
    return {"image": name, "seconds": round(time.monotonic() - started, 1), "size_bytes": image_size(name),
            "fresh": fresh}


def image_size(name: str) -> int:
    """The image's size (its layers, uncompressed), in bytes, from buildah's "2.13 GB" (decimal units)."""
    listed = json.loads(_buildah("images", "--json", name, capture_output=True).stdout)
    number, unit = listed[0]["size"].split()
    return round(float(number) * {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[unit])


def run_in(image: str, command: list[str], mounts: list[Path] = (), env: dict[str, str] | None = None,
           user: str | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    """A command in a fresh container of the image (removed after): each mount at its own path, the host's
    network; stdout and stderr captured."""
    args = ["run", "--isolation", "chroot"]
    for mount in mounts:
        args += ["--volume", f"{mount}:{mount}"]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    if user:
        args += ["--user", user]
    for _ in range(3):
        container = _buildah("from", "--quiet", image, capture_output=True).stdout.strip()
        try:
            proc = subprocess.run(["buildah", *args, container, "--", *command], capture_output=True, text=True,
                                  timeout=timeout)
        finally:
            _buildah("rm", container, capture_output=True)
        # buildah 1.28 re-executes itself from a sealed memfd; sealing it now and then fails (EBUSY) before the
        # command starts: that run never began, so it is run again
        if not (proc.returncode and "sealing memfd copy" in proc.stderr):
            return proc
    return proc
