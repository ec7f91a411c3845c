"""IndRNN: the fused loop with its hand-written backward equals the autograd reference (float64)."""

from __future__ import annotations

import pytest
import torch

from rnnvision.layers.indrnn import IndRNN
from rnnvision.ops.indrnn import indrnn_fused, indrnn_reference


def _pair(num_layers: int) -> tuple[IndRNN, IndRNN]:
    torch.manual_seed(0)
    fused = IndRNN(3, 5, num_layers, impl="fused").double()
    reference = IndRNN(3, 5, num_layers, impl="reference").double()
    reference.load_state_dict(fused.state_dict())
    with torch.no_grad():  # some units above 1, some negative: growth, sign flips and ReLU cut-offs all occur
        for u in fused.recurrent:
            u.copy_(torch.tensor([1.1, -0.7, 0.3, 1.0, 0.0], dtype=torch.float64))
        reference.load_state_dict(fused.state_dict())
    return fused, reference


@pytest.mark.parametrize("num_layers", [1, 2])
def test_fused_equals_reference_on_outputs_and_every_gradient(num_layers):
    fused, reference = _pair(num_layers)
    x = torch.randn(4, 11, 3, dtype=torch.float64)
    h0 = torch.randn(num_layers, 4, 5, dtype=torch.float64)
    weight = torch.randn(4, 11, 5, dtype=torch.float64)
    results = []
    for model in (fused, reference):
        xi, hi = x.clone().requires_grad_(True), h0.clone().requires_grad_(True)
        out, final = model(xi, hi)
        ((out * weight).sum() + final.square().sum()).backward()
        results.append((out, final, xi.grad, hi.grad, {n: p.grad for n, p in model.named_parameters()}))
    (out_f, fin_f, gx_f, gh_f, gp_f), (out_r, fin_r, gx_r, gh_r, gp_r) = results
    assert bool((out_r == 0).any()) and bool((out_r > 0).any())  # the ReLU cuts some steps, not all
    for a, b in ((out_f, out_r), (fin_f, fin_r), (gx_f, gx_r), (gh_f, gh_r)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    assert gp_f.keys() == gp_r.keys()
    for name in gp_f:
        torch.testing.assert_close(gp_f[name], gp_r[name], rtol=0, atol=1e-10, msg=name)


def test_the_fused_backward_passes_gradcheck():
    torch.manual_seed(1)
    drive = torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True)
    u = torch.tensor([0.5, 1.2, -0.4, 0.9], dtype=torch.float64, requires_grad=True)
    h0 = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(indrnn_fused, (drive, u, h0))
    torch.testing.assert_close(indrnn_fused(drive, u, h0), indrnn_reference(drive, u, h0), rtol=0, atol=0)


def test_a_unit_with_weight_one_carries_its_value():
    model = IndRNN(1, 1, impl="fused")
    with torch.no_grad():
        model.inputs[0].weight.fill_(1.0)
        model.inputs[0].bias.zero_()
        model.recurrent[0].fill_(1.0)
    x = torch.zeros(1, 500, 1)
    x[0, 0] = 0.25
    with torch.no_grad():
        out, _ = model(x)
    assert float(out[0, -1]) == 0.25  # h_t = relu(0 + 1 * h_{t-1}): remembered for 500 steps


def test_bad_shapes_and_impls_raise():
    with pytest.raises(ValueError, match="impl must be one of"):
        IndRNN(2, 3, impl="cuda")
    with pytest.raises(ValueError, match="expects input"):
        IndRNN(2, 3)(torch.zeros(1, 4, 5))
    with pytest.raises(ValueError, match="h0 must be"):
        IndRNN(2, 3)(torch.zeros(1, 4, 2), torch.zeros(1, 2, 3))
