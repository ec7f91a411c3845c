"""The complex diagonal chunked scan on real pairs equals the loop, forwards and backwards in time."""

from __future__ import annotations

import pytest
import torch

from rnnvision.ops.scan import complex_diagonal_scan


def _loop(lam, b, h0, reverse):
    """The specification in complex arithmetic: lam (H,), b (B, T, H), h0 (B, H), all complex."""
    h, out = h0, [None] * b.shape[1]
    for t in reversed(range(b.shape[1])) if reverse else range(b.shape[1]):
        h = lam * h + b[:, t]
        out[t] = h
    return torch.stack(out, 1)


def _pairs(z):
    return torch.stack([z.real, z.imag], dim=-2)  # (..., H) complex -> (..., 2, H) real


def _lam(modulus):
    phase = torch.rand(modulus.shape[0], dtype=torch.float64) * 6.3
    return torch.polar(modulus, phase)


@pytest.mark.parametrize("steps,chunk", [(1, 1), (17, 4), (17, 17), (30, 7), (29, 100)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_equals_the_loop(steps, chunk, reverse, with_state):
    torch.manual_seed(steps)
    # moduli from 0 (and below float64's range of lam^C) to 1 - 1e-9: no range limit, nothing divides
    lam = _lam(torch.tensor([0.0, 1e-200, 1e-3, 0.3, 0.9, 0.999, 1 - 1e-9], dtype=torch.float64))
    b = torch.randn(3, steps, 7, dtype=torch.complex128)
    h0 = torch.randn(3, 7, dtype=torch.complex128) if with_state else torch.zeros(3, 7, dtype=torch.complex128)
    got = complex_diagonal_scan(
        _pairs(b), _pairs(lam), _pairs(h0) if with_state else None, chunk=chunk, reverse=reverse
    )
    torch.testing.assert_close(got, _pairs(_loop(lam, b, h0, reverse)), atol=1e-12, rtol=1e-12)


def test_in_place_on_a_slice_of_the_units_and_from_bfloat16():
    torch.manual_seed(0)
    lam = _lam(torch.rand(6, dtype=torch.float64))
    b = torch.randn(2, 23, 6, dtype=torch.complex128)
    pairs = _pairs(b)  # (2, 23, 2, 6)
    expected = _pairs(_loop(lam[2:], b[..., 2:], torch.zeros(2, 4, dtype=torch.complex128), False))
    before = pairs[..., :2].clone()
    out = complex_diagonal_scan(pairs[..., 2:], _pairs(lam[2:]), None, chunk=5, out=pairs[..., 2:])
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(pairs[..., 2:], expected, atol=1e-12, rtol=1e-12)  # written in place
    assert torch.equal(pairs[..., :2], before)  # the other units untouched
    low = _pairs(b).to(torch.bfloat16)
    got = complex_diagonal_scan(low, _pairs(lam).float(), None, chunk=5)
    assert got.dtype == torch.float32  # lam's dtype
    want = _loop(
        lam.to(torch.complex64),
        torch.complex(low[:, :, 0].float(), low[:, :, 1].float()),
        torch.zeros(2, 6, dtype=torch.complex64),
        False,
    )
    torch.testing.assert_close(got, _pairs(want), atol=1e-4, rtol=1e-4)
