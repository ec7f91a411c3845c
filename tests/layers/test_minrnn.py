"""minGRU / minLSTM: every scan equals the loop (outputs and gradients); stepping equals one call."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from rnnvision.layers.minrnn import MinGRU, MinLSTM, MinRNNStack
from rnnvision.ops.min_gates import g, minlstm_coefficients
from tests.conftest import assert_close_scaled

CELLS = {"mingru": MinGRU, "minlstm": MinLSTM}


def _run(layer, x, h0, impl, weights):
    layer.impl = impl
    xi = x.clone().requires_grad_(True)
    hi = None if h0 is None else h0.clone().requires_grad_(True)
    out, last = layer(xi, hi)
    layer.zero_grad()
    ((out * weights).sum() + (last * 3).sum()).backward()
    grads = {name: p.grad.clone() for name, p in layer.named_parameters()}
    return out.detach(), last.detach(), xi.grad, None if hi is None else hi.grad, grads


@pytest.mark.parametrize("cell,impl,with_h0", list(itertools.product(CELLS, ("chunked", "log"), (False, True))))
def test_scan_equals_the_sequential_loop_on_outputs_and_gradients(cell, impl, with_h0):
    torch.manual_seed(0)
    batch, steps = 3, 29  # odd length: the last chunk of 8 is padded
    layer = CELLS[cell](5, 7, chunk=8)
    x = torch.randn(batch, steps, 5)
    h0 = torch.randn(batch, 7) if with_h0 else None
    weights = torch.randn(batch, steps, 7)
    reference = _run(layer, x, h0, "reference", weights)
    scanned = _run(layer, x, h0, impl, weights)
    assert scanned[0].shape == (batch, steps, 7)
    for got, expected in zip(scanned[:4], reference[:4]):
        if expected is not None:
            assert_close_scaled(got, expected, atol=1e-5)
    assert set(scanned[4]) == {"proj.weight", "proj.bias"}
    for name in scanned[4]:
        assert_close_scaled(scanned[4][name], reference[4][name], atol=1e-5, msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_streaming_steps_and_pieces_equal_the_full_call(cell):
    torch.manual_seed(1)
    layer = CELLS[cell](4, 6, impl="auto", chunk=4)
    x, h0 = torch.randn(2, 11, 4), torch.randn(2, 6)
    with torch.no_grad():
        full, last = layer(x, h0)
        h, steps = h0, []
        for t in range(11):
            h = layer.step(x[:, t], h)
            steps.append(h)
        assert_close_scaled(torch.stack(steps, 1), full, atol=1e-5)
        first, mid = layer(x[:, :5], h0)  # a long sequence arriving in two pieces
        second, end = layer(x[:, 5:], mid)
        assert_close_scaled(torch.cat([first, second], 1), full, atol=1e-5)
        assert_close_scaled(end, last, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_the_stack_streams_step_by_step_like_its_full_call(cell):
    torch.manual_seed(2)
    stack = MinRNNStack(3, 8, 2, cell=cell, mlp_ratio=2.0).eval()
    x = torch.randn(2, 9, 3)
    with torch.no_grad():
        full, last = stack(x)
        states, outs = None, []
        for t in range(9):
            y, states = stack.step(x[:, t], states)
            outs.append(y)
    assert_close_scaled(torch.stack(outs, 1), full, atol=1e-5)
    for a, b in zip(states, last):
        assert_close_scaled(a, b, atol=1e-5)


def test_stack_impls_agree_and_switch_together():
    torch.manual_seed(3)
    stack = MinRNNStack(2, 6, 3, cell="mingru")
    x = torch.randn(3, 21, 2)
    outs = {}
    for impl in ("reference", "chunked", "log"):
        stack.set_impl(impl)
        assert {block.rnn.impl for block in stack.blocks} == {impl}
        outs[impl] = stack(x)[0].detach()
    assert_close_scaled(outs["chunked"], outs["reference"], atol=1e-5)
    assert_close_scaled(outs["log"], outs["reference"], atol=1e-5)


def test_minlstm_log_space_coefficients_are_the_normalised_gates():
    torch.manual_seed(4)
    k_f, k_i, k_h = torch.randn(3, 2, 5, 4).mul(4).unbind(0)
    log_a, b = minlstm_coefficients(torch.cat([k_f, k_i, k_h], -1))
    f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
    torch.testing.assert_close(log_a.exp(), f / (f + i))
    torch.testing.assert_close(b, i / (f + i) * g(k_h))


def test_candidate_activation_is_positive_continuous_and_matches_the_paper():
    v = torch.tensor([-30.0, -1.0, -1e-6, 0.0, 2.0])
    torch.testing.assert_close(
        g(v), torch.tensor([torch.sigmoid(torch.tensor(-30.0)).item(), 0.2689414, 0.5, 0.5, 2.5])
    )
    assert (g(torch.randn(1000) * 10) > 0).all()
    log_g = torch.where(v >= 0, (F.relu(v) + 0.5).log(), -F.softplus(-v))  # the paper's log_g
    torch.testing.assert_close(g(v).log(), log_g)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="impl must be"):
        MinGRU(3, 4, impl="fused")
    layer = MinGRU(3, 4)
    with pytest.raises(ValueError, match=r"expects input \(batch, time, 3\)"):
        layer(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="h0 must be"):
        layer(torch.randn(2, 5, 3), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="impl must be"):
        MinRNNStack(3, 4, 1).set_impl("scan")
