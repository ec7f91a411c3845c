"""The time-invariant chunked scan equals the loop, forwards and backwards in time, real and complex."""

from __future__ import annotations

import pytest
import torch

from rnnvision.ops.scan import time_invariant_scan


def _loop(lam, b, h0, reverse):
    h, out = h0, [None] * b.shape[1]
    for t in reversed(range(b.shape[1])) if reverse else range(b.shape[1]):
        h = lam * h + b[:, t]
        out[t] = h
    return torch.stack(out, 1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("steps,chunk", [(1, 1), (17, 4), (17, 17), (30, 7)])
@pytest.mark.parametrize("reverse", [False, True])
def test_equals_the_loop(dtype, steps, chunk, reverse):
    torch.manual_seed(steps)
    lam = torch.rand(5, dtype=torch.float64) * 1.9 - 0.95
    if dtype.is_complex:
        lam = torch.polar(lam.abs(), torch.rand(5, dtype=torch.float64) * 6)
    b = torch.randn(3, steps, 5, dtype=dtype)
    h0 = torch.randn(3, 5, dtype=dtype)
    got = time_invariant_scan(lam, b, h0, chunk=chunk, reverse=reverse)
    torch.testing.assert_close(got, _loop(lam, b, h0, reverse), atol=1e-12, rtol=1e-12)
