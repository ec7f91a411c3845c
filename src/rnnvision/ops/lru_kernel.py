"""The LRU's CPU kernel: ``csrc/lru_scan.cpp``, one sequential pass over time per batch row.

Built on first use with ``torch.utils.cpp_extension`` (a C++ compiler is needed) into the per-user
cache, ``$XDG_CACHE_HOME/rnnvision/kernels/<torch version>-<python version>-<source hash>``, so a
build is made once per machine, torch and Python version and reused after. :func:`lru_kernel` returns the built module, or
None where it cannot be built (no compiler, a failed build): ``impl="auto"`` then runs the scan, and
``impl="fused"`` raises with the reason (:func:`kernel_problem`).

Why a plain loop: the recurrence does four multiply-adds per state and step, and one core has no
use for the scan's parallelism in time; the chunked scan on real planes runs about 2 C + T/C tensor
operations over views of the planes (C steps a chunk), each a separate pass through memory, while
this loop keeps a batch row's state in cache and reads the drive once. The same file also does
the readout's skip term ``D * u`` in one pass each way (:class:`rnnvision.ops.lru.SkipReadout`).
The build has no ``-march`` flag, so the file is safe in a cache shared by different CPUs: with GCC
on x86-64 each loop is compiled for AVX-512, for AVX2 and for the baseline, and the loader picks
the one the CPU runs (``target_clones``). See BENCHMARKS.md, "The LRU's CPU kernel".
"""

from __future__ import annotations

import functools
import hashlib
import sys
from pathlib import Path
from types import ModuleType

import torch

from rnnvision.data.root import user_cache

SOURCE = Path(__file__).resolve().parent / "csrc" / "lru_scan.cpp"


@functools.cache
def _build() -> tuple[ModuleType | None, str]:
    """(the module, "") or (None, why it could not be built); tried once per process."""
    import shutil

    from torch.utils import cpp_extension

    if shutil.which("c++") is None and shutil.which("g++") is None:
        return None, "no C++ compiler (c++ or g++) on PATH; install one, e.g. apt-get install g++"
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    name = f"rnnvision_lru_{digest}"
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    folder = user_cache() / "kernels" / f"torch{torch.__version__}-{python}-{digest}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not any(folder.glob(f"{name}*.so")):
            print(
                "rnnvision: building the LRU CPU kernel (once per machine, torch and Python version; about 20 s)",
                file=sys.stderr,
            )
        module = cpp_extension.load(
            name=name, sources=[str(SOURCE)], build_directory=str(folder), extra_cflags=["-O3"], verbose=False
        )
    except (RuntimeError, OSError, ImportError) as exc:
        return None, f"building {SOURCE.name} failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return module, ""


def lru_kernel() -> ModuleType | None:
    """The built kernel module (``forward``, ``backward``, ``skip_forward``, ``skip_backward``), or None where
    it cannot be built."""
    return _build()[0]


def kernel_problem() -> str:
    """Why :func:`lru_kernel` is None ("" when it is built)."""
    return _build()[1]
