"""Gate-bias initialisation: default is torch's, untouched; chrono (Tallec & Ollivier 2018) has the stated law."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnnvision.layers import GRU, LSTM, RNN
from rnnvision.models.registry import create_model

PAIRS = {"rnn": (RNN, nn.RNN), "lstm": (LSTM, nn.LSTM), "gru": (GRU, nn.GRU)}


@pytest.mark.parametrize("cell", sorted(PAIRS))
def test_default_init_is_torch_nn_init_under_the_same_seed(cell):
    ours, theirs = PAIRS[cell]
    torch.manual_seed(123)
    a = ours(5, 9, 2, bidirectional=True)
    torch.manual_seed(123)
    b = theirs(5, 9, 2, bidirectional=True, batch_first=True)
    assert a.state_dict().keys() == b.state_dict().keys()
    for name, value in b.state_dict().items():
        assert torch.equal(a.state_dict()[name], value), name


def _ks_uniform(samples: torch.Tensor, low: float, high: float) -> float:
    """Kolmogorov-Smirnov distance between the samples and U(low, high)."""
    x = samples.double().sort().values
    n = x.numel()
    cdf = ((x - low) / (high - low)).clamp(0, 1)
    above = torch.arange(1, n + 1, dtype=torch.float64) / n - cdf
    below = cdf - torch.arange(0, n, dtype=torch.float64) / n
    return float(torch.maximum(above, below).max())


@pytest.mark.parametrize("cell,keep,opposite", [("lstm", 1, 0), ("gru", 1, None)])
def test_chrono_biases_follow_log_uniform_1_to_tmax_minus_1(cell, keep, opposite):
    hidden, t_max = 400, 784
    torch.manual_seed(0)
    layer = PAIRS[cell][0](3, hidden, 2, bidirectional=True, gate_init="chrono", chrono_max=t_max)
    torch.manual_seed(0)
    default = PAIRS[cell][0](3, hidden, 2, bidirectional=True)
    blocks = len(layer.bias_ih_l0) // hidden
    seen = []
    for suffix in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
        b_ih, b_hh = getattr(layer, "bias_ih" + suffix).detach(), getattr(layer, "bias_hh" + suffix).detach()
        total = (b_ih + b_hh).view(blocks, hidden)  # the bias each gate sees: (G, H)
        b_keep = total[keep]
        u = b_keep.exp()  # should be U(1, T_max - 1)
        assert u.min() >= 1.0 - 1e-5 and u.max() <= t_max - 1 + 1e-3
        if opposite is not None:
            torch.testing.assert_close(total[opposite], -b_keep)
        # the other gates keep torch's draw from the same seed
        for block in set(range(blocks)) - {keep, opposite}:
            reference = getattr(default, "bias_ih" + suffix).detach().view(blocks, hidden)[block]
            torch.testing.assert_close(b_ih.view(blocks, hidden)[block], reference)
        seen.append(b_keep)
    assert not torch.equal(seen[0], seen[1])  # every layer and direction draws its own
    u = torch.cat(seen).exp()  # 1,600 draws
    assert _ks_uniform(u, 1.0, t_max - 1.0) < 1.63 / math.sqrt(u.numel())  # KS test at the 1 % level
    quartiles = torch.quantile(u.double(), torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    expected = 1 + (t_max - 2) * torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    assert ((quartiles - expected).abs() / (t_max - 2)).max() < 0.05
    for name, p in layer.named_parameters():  # the weights are torch's
        if name.startswith("weight"):
            assert torch.equal(p, dict(default.named_parameters())[name]), name


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_fused_and_reference_agree_with_chrono(cell):
    torch.manual_seed(0)
    layer = PAIRS[cell][0](4, 6, 2, bidirectional=True, gate_init="chrono", chrono_max=50)
    x = torch.randn(3, 11, 4)
    results = {}
    for impl in ("fused", "reference"):
        layer.impl = impl
        layer.zero_grad()
        xi = x.clone().requires_grad_(True)
        out, _ = layer(xi)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results[impl] = (out.detach(), xi.grad, {n: p.grad.clone() for n, p in layer.named_parameters()})
    (o_f, gx_f, gp_f), (o_r, gx_r, gp_r) = results["fused"], results["reference"]
    torch.testing.assert_close(o_r, o_f, atol=1e-5, rtol=0)
    torch.testing.assert_close(gx_r, gx_f, atol=1e-5, rtol=0)
    for name in gp_f:
        torch.testing.assert_close(gp_r[name], gp_f[name], atol=1e-5, rtol=0, msg=name)


def test_chrono_survives_reset_parameters_and_refuses_what_it_cannot_do():
    torch.manual_seed(0)
    layer = LSTM(3, 8, gate_init="chrono", chrono_max=100)
    layer.reset_parameters()
    assert layer.bias_hh_l0[8:16].abs().max() == 0 and layer.bias_ih_l0[8:16].min() >= 0
    with pytest.raises(ValueError, match="no gates"):
        RNN(3, 4, gate_init="chrono", chrono_max=10)
    with pytest.raises(ValueError, match="chrono_max"):
        LSTM(3, 4, gate_init="chrono")
    with pytest.raises(ValueError, match="bias"):
        GRU(3, 4, gate_init="chrono", chrono_max=10, bias=False)
    with pytest.raises(ValueError, match="gate_init"):
        LSTM(3, 4, gate_init="ones")


def test_pixel_models_take_chrono_with_the_sequence_length_as_t_max():
    torch.manual_seed(0)
    model = create_model("pixel_lstm", hidden_size=16, img_size=8, gate_init="chrono")  # 64 steps
    forget = model.rnn.bias_ih_l0[16:32].detach()
    assert forget.min() >= 0 and forget.max() <= math.log(63) + 1e-6
    torch.testing.assert_close(model.rnn.bias_ih_l0[:16].detach(), -forget)
    assert create_model("pixel_gru", hidden_size=4, img_size=8, gate_init="chrono").rnn.gate_init == "chrono"
