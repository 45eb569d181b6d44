"""The CUDA libraries the GPU worker's CTranslate2 and torch load, read from the installed packages themselves, and
where each comes from. Standard library only: `make test-images` runs this file inside the built worker image
(`python cuda_libraries.py`: every library loads, `ldd` finds every dependency, CTranslate2 counts 0 GPUs), and
`make test` checks the worker lock against what the dev venv's ctranslate2 and torch name (no gigabytes
downloaded).

- CTranslate2 dlopens its CUDA libraries by soname (strings in libctranslate2: `libcublas.so.12`, ...).
- torch preloads its own from the nvidia-* wheels beside it, by folder and name pattern (`cuda_libs` in
  torch/__init__.py: ("cublas", "libcublasLt.so.*[0-9]"), ...); the CPU build carries the same list.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

# The node's NVIDIA driver, mounted by its container runtime: in no image.
DRIVER = {"libcuda.so.1"}
# Loaded only for what Lectern never asks of CTranslate2: tensor parallelism over several GPUs (NCCL, MPI).
UNUSED = {"libnccl.so.2": "tensor parallelism (several GPUs, MPI)"}
SONAME = re.compile(rb"lib(?:cu|nv|cudnn)[A-Za-z0-9_]*\.so\.\d+")
TORCH_LIB = re.compile(r'\(\s*"(\w+)",\s*"(lib[\w-]+)\.so\.\*\[0-9\]"\s*\)')


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        raise ModuleNotFoundError(f"{name} is not installed")
    return Path(spec.origin).parent


def ctranslate2_sonames() -> set[str]:
    """The CUDA libraries CTranslate2 dlopens, by soname, read from its shared library (the driver's left out)."""
    package = _package_dir("ctranslate2")
    libraries = sorted(package.parent.glob("ctranslate2.libs/libctranslate2*.so*")) or sorted(
        package.glob("libctranslate2*.so*"))
    if not libraries:
        raise FileNotFoundError(f"no libctranslate2 beside {package}")
    names = {match.decode() for library in libraries for match in SONAME.findall(library.read_bytes())}
    return names - DRIVER - set(UNUSED)


def torch_libraries() -> list[tuple[str, str]]:
    """(nvidia-* folder, library name) that torch preloads for CUDA, in its order, from its own source."""
    text = (_package_dir("torch") / "__init__.py").read_text()
    found = TORCH_LIB.findall(text)
    if not found:
        raise ValueError("torch/__init__.py lists no CUDA libraries (cuda_libs): its layout changed")
    return found


# The folder (as torch names it) of each library CTranslate2 asks for by soname.
FOLDERS = {"libcublas": "cublas", "libcublasLt": "cublas", "libcudnn": "cudnn", "libcudart": "cuda_runtime",
           "libnvrtc": "cuda_nvrtc", "libcufft": "cufft", "libcurand": "curand", "libcusparse": "cusparse"}


def carriers(folder: str, cuda_major: int | None = None) -> re.Pattern:
    """The lock lines of the nvidia-* packages that carry a folder's libraries: `nvidia-cublas-cu12==…`, or
    `nvidia-cublas==12.…` (CUDA 13's packages dropped the suffix); any CUDA version when cuda_major is None."""
    base = "nvidia-" + folder.replace("_", "-")
    if cuda_major is None:
        return re.compile(rf"^{re.escape(base)}(-cu\d+)?==", re.MULTILINE)
    return re.compile(rf"^{re.escape(base)}(-cu{cuda_major}==|=={cuda_major}\.)", re.MULTILINE)


def missing_from_lock(lock_text: str) -> list[str]:
    """The CUDA libraries ctranslate2 and torch load that no package in the lock carries."""
    missing = []
    for soname in sorted(ctranslate2_sonames()):
        stem, major = soname.split(".so.")
        folder = FOLDERS.get(stem)
        # cuBLAS's soname major is its CUDA major (libcublas.so.12: CUDA 12); others match any CUDA version
        cuda = int(major) if folder == "cublas" else None
        if folder is None or not carriers(folder, cuda).search(lock_text):
            missing.append(f"{soname} (ctranslate2)")
    for folder, name in torch_libraries():
        if not carriers(folder).search(lock_text):
            missing.append(f"{name} (torch, nvidia-{folder.replace('_', '-')})")
    return missing


def _site_packages() -> Path:
    return _package_dir("torch").parent


def _mapped() -> list[str]:
    """The shared libraries this process has loaded (their files)."""
    return sorted({line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                   if ".so" in line.rsplit("/", 1)[-1]})


def load_all() -> dict:
    """In the worker image: CTranslate2's libraries load by soname through the loader's path (LD_LIBRARY_PATH), as
    CTranslate2 finds them, before torch is imported (torch preloads a libcublas.so.12 of its own finding, which
    would hide a missing path); then torch imports with its CUDA libraries and each one it preloads loads (from
    the folder its own libcudart came from, else its nvidia-* folder); `ldd` finds every dependency of each and of
    torch's and CTranslate2's own libraries; CTranslate2 counts the GPUs (0 without a driver)."""
    loaded, failed = {}, {}
    for soname in sorted(ctranslate2_sonames()):
        try:
            ctypes.CDLL(soname)
            loaded[f"ctranslate2 {soname}"] = next(path for path in _mapped() if path.endswith(f"/{soname}"))
        except OSError as error:
            failed[f"ctranslate2 {soname}"] = str(error)
    import torch

    nvidia = _site_packages() / "nvidia"
    cudart = next((path for path in _mapped() if Path(path).name.startswith("libcudart.so")), None)
    if cudart is None:
        raise RuntimeError(f"torch {torch.__version__} imported without loading libcudart: not a CUDA build")
    for folder, name in torch_libraries():
        mapped = [path for path in _mapped() if Path(path).name.startswith(f"{name}.so")]
        own = sorted(glob.glob(str(Path(cudart).parent / f"{name}.so.*[0-9]")))
        candidates = own or mapped or sorted(glob.glob(str(nvidia / folder / "lib" / f"{name}.so.*[0-9]")))
        try:
            ctypes.CDLL(candidates[-1], mode=ctypes.RTLD_GLOBAL)
            loaded[f"torch {name}"] = candidates[-1]
        except (IndexError, OSError) as error:
            failed[f"torch {name}"] = str(error) if candidates else f"in no nvidia-* folder under {nvidia}"
    own_libraries = [*map(str, (_package_dir("torch") / "lib").glob("libtorch_cuda*.so")),
                     *map(str, _package_dir("ctranslate2").parent.glob("ctranslate2.libs/*.so*"))]
    unresolved = {}
    for path in sorted({*loaded.values(), *own_libraries}):
        lines = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout.splitlines()
        if bad := [line.strip() for line in lines if "not found" in line]:
            unresolved[path] = bad
    import ctranslate2

    return {"loaded": loaded, "failed": failed, "ldd_checked": len({*loaded.values(), *own_libraries}),
            "unresolved": unresolved, "ctranslate2_cuda_devices": ctranslate2.get_cuda_device_count(),
            "ctranslate2": ctranslate2.__version__, "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "torch_cuda_available": torch.cuda.is_available(), "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH")}


if __name__ == "__main__":
    report = load_all()
    print(json.dumps(report, indent=1))
    sys.exit(1 if report["failed"] or report["unresolved"] or report["ctranslate2_cuda_devices"] != 0 else 0)
