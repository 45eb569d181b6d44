"""`make test-images` writes its run to bench/results/images.md: the date, each test's outcome, each image's build
time and size, and what the worker's CUDA check loaded."""

from __future__ import annotations

import datetime
import platform

from tests.conftest import ROOT
from tests.images.test_images import RECORD

OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        OUTCOMES.setdefault(report.nodeid.rsplit("::", 1)[-1], report.outcome)


def pytest_sessionfinish(session, exitstatus):
    if not OUTCOMES or not session.config.getoption("-m") == "images":
        return
    lines = [f"# `make test-images`, {datetime.date.today()}", "",
             f"{platform.node()}: {platform.processor() or platform.machine()}, buildah (chroot isolation), base "
             "from lectern_dev.images (Debian bookworm, Python 3.11, debootstrap). No GPU: libraries loaded, no kernel "
             "run.",
             "", "| test | outcome |", "| --- | --- |",
             *(f"| {name} | {outcome} |" for name, outcome in OUTCOMES.items()),
             "", "| image | build s | layers | size GB |", "| --- | --- | --- | --- |",
             *(f"| {target} | {built['seconds']} | "
               f"{'built again (downloads from the cache mounts)' if built['fresh'] else 'as cached'} | "
               f"{built['size_bytes'] / 1e9:.2f} |"
               for target, built in RECORD.get("builds", {}).items())]
    if cuda := RECORD.get("cuda"):
        lines += ["", f"Worker CUDA check: torch {cuda['torch']} (CUDA {cuda['torch_cuda']}), ctranslate2 "
                  f"{cuda['ctranslate2']}, {len(cuda['loaded'])} libraries loaded, {cuda['ldd_checked']} checked "
                  f"with ldd, unresolved: {cuda['unresolved'] or 'none'}; ctranslate2.get_cuda_device_count() = "
                  f"{cuda['ctranslate2_cuda_devices']}.", "", "| loaded | file |", "| --- | --- |",
                  *(f"| {name} | `{path.split('site-packages/')[-1]}` |" for name, path in cuda["loaded"].items())]
    (ROOT / "bench" / "results" / "images.md").write_text("\n".join(lines) + "\n")
