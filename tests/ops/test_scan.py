"""Both scans equal the loop on outputs and gradients, on odd lengths, any chunk, strong decay."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnvision.ops.scan import linear_scan, linear_scan_reference
from tests.conftest import assert_close_scaled


def _grads(fn, log_a, b, h0, weights):
    leaves = [t.clone().requires_grad_(True) for t in (log_a, b) + ((h0,) if h0 is not None else ())]
    out = fn(leaves[0], leaves[1], leaves[2] if h0 is not None else None)
    (out * weights).sum().backward()
    return out.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("impl", ["chunked", "log"])
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("signed", [False, True])
def test_scan_equals_loop_on_outputs_and_gradients(impl, with_h0, signed):
    torch.manual_seed(0)
    batch, steps, hidden = 3, 37, 5  # 37 steps: four full chunks of 8 and a padded one
    log_a = -F.softplus(2 * torch.randn(batch, steps, hidden))
    b = torch.randn(batch, steps, hidden)
    b = b if signed else b.abs()
    h0 = torch.randn(batch, hidden) if with_h0 else None
    weights = torch.randn(batch, steps, hidden)  # a loss that weighs every step differently

    out, grads = _grads(lambda la, bb, h: linear_scan(la, bb, h, impl=impl, chunk=8), log_a, b, h0, weights)
    ref, ref_grads = _grads(linear_scan_reference, log_a, b, h0, weights)
    assert out.shape == (batch, steps, hidden)
    assert_close_scaled(out, ref, atol=1e-5)
    for got, expected in zip(grads, ref_grads):
        assert_close_scaled(got, expected, atol=1e-5)


@pytest.mark.parametrize("steps,chunk", [(1, None), (5, 16), (16, 16), (17, 4), (17, 1), (30, None)])
def test_lengths_shorter_than_or_equal_to_a_chunk(steps, chunk):
    torch.manual_seed(1)
    log_a, b, h0 = -torch.rand(2, steps, 3), torch.randn(2, steps, 3), torch.randn(2, 3)
    expected = linear_scan_reference(log_a, b, h0)
    for impl in ("chunked", "log"):
        assert_close_scaled(linear_scan(log_a, b, h0, impl=impl, chunk=chunk), expected, atol=1e-5)


@pytest.mark.parametrize("impl", ["chunked", "log"])
def test_strong_decay_and_vanishing_inputs_stay_exact(impl):
    torch.manual_seed(2)
    # a decay of e^-30 per step (an update gate saturated at 1), and inputs that are exactly 0
    log_a = torch.full((2, 40, 3), -30.0)
    log_a[:, ::5] = -0.01
    b = torch.rand(2, 40, 3)
    b[:, 7:12] = 0.0
    weights = torch.randn(2, 40, 3)
    out, grads = _grads(lambda la, bb, h: linear_scan(la, bb, h, impl=impl, chunk=16), log_a, b, None, weights)
    ref, ref_grads = _grads(linear_scan_reference, log_a, b, None, weights)
    assert_close_scaled(out, ref, atol=1e-5)
    for got, expected in zip(grads, ref_grads):
        assert torch.isfinite(got).all()
        assert_close_scaled(got, expected, atol=1e-5)


def test_log_space_keeps_float32_accuracy_over_long_sequences():
    torch.manual_seed(3)
    log_a = -F.softplus(torch.randn(2, 2000, 4, dtype=torch.float64))
    b = torch.rand(2, 2000, 4, dtype=torch.float64)
    exact = linear_scan_reference(log_a, b).double()  # float32 loop; compare against float64 below
    exact64 = torch.stack(_loop64(log_a, b), dim=1)
    assert (exact - exact64).abs().max() < 1e-5
    for impl in ("chunked", "log"):
        got = linear_scan(log_a.float(), b.float(), impl=impl).double()
        assert (got - exact64).abs().max() < 1e-5, impl


def _loop64(log_a, b):
    h, states = torch.zeros(b.shape[0], b.shape[2], dtype=torch.float64), []
    for t in range(b.shape[1]):
        h = log_a[:, t].exp() * h + b[:, t]
        states.append(h)
    return states


def test_computes_in_float32_and_returns_the_input_dtype():
    log_a, b = -torch.rand(2, 9, 3, dtype=torch.bfloat16), torch.randn(2, 9, 3, dtype=torch.bfloat16)
    out = linear_scan(log_a, b)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), linear_scan_reference(log_a, b), atol=2e-2, rtol=1e-2)


@pytest.mark.parametrize("impl", ["chunked", "log"])
def test_bfloat16_inputs_with_long_memory_keep_float32_accuracy(impl):
    # 784 steps (a pixel sequence) of a decay near 1: the state sums hundreds of inputs. Carried in
    # bfloat16 (8-bit mantissa) it is off by about 30%; accumulated in float32 only the inputs' own
    # bfloat16 rounding remains (measured 1.6e-3 of the norm).
    log_a = torch.full((2, 784, 8), -1e-3)
    b = torch.rand(2, 784, 8, generator=torch.Generator().manual_seed(0))
    expected = linear_scan_reference(log_a.double(), b.double())
    out = linear_scan(log_a.bfloat16(), b.bfloat16(), impl=impl)
    assert out.dtype == torch.bfloat16
    assert (out.double() - expected).norm() / expected.norm() < 1e-2


def test_bad_arguments_raise():
    log_a, b = -torch.rand(2, 5, 3), torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="impl must be"):
        linear_scan(log_a, b, impl="fused")
    with pytest.raises(ValueError, match="both be"):
        linear_scan(log_a, b[:, :4])
    with pytest.raises(ValueError, match="time >= 1"):
        linear_scan(log_a[:, :0], b[:, :0])
    with pytest.raises(ValueError, match="h0 must be"):
        linear_scan(log_a, b, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="chunk must be"):
        linear_scan(log_a, b, chunk=0)
