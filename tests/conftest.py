from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# pytest-xdist runs one worker per core; one thread each avoids oversubscribing the machine.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def shared_dataset(name: str) -> Path:
    """The folder of ``name`` in ../shared/data, or skip the test with the reason."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"real {name} data not found at {folder} (see ../shared/data/SOURCES.md)")
    return folder


@pytest.fixture
def shared_data_root() -> Path:
    """../shared/data itself (skips when absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


def assert_close_scaled(
    actual: torch.Tensor, expected: torch.Tensor, *, atol: float = 1e-5, msg: str | None = None
) -> None:
    """Compare a fast path with its float32 reference: ``atol`` for values up to 1 in size, scaled by the largest
    magnitude of ``expected`` beyond that (summation order differs between Intel and AMD kernels, AVX-512 or
    not, 1 or 2 threads; the rounding error grows with the magnitudes summed, not with the element)."""
    scale = max(1.0, float(expected.detach().abs().max())) if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, atol=atol * scale, rtol=0, msg=msg)
