"""ReNetLayer: the folded sweeps equal one sweep per column and per row, outputs and gradients."""

from __future__ import annotations

import pytest
import torch

from rnnvision.layers import ReNetLayer, renet_reference
from tests.conftest import assert_close_scaled

CASES = [("lstm", 2, (6, 10)), ("gru", 3, (9, 3)), ("rnn", 1, (5, 7)), ("lstm", 1, (1, 9))]


@pytest.mark.parametrize("cell,patch,size", CASES)
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_folded_sweeps_equal_the_per_column_per_row_reference(cell, patch, size, impl):
    torch.manual_seed(0)
    layer = ReNetLayer(2, 4, patch_size=patch, cell=cell, impl=impl)
    x = torch.randn(3, 2, *size)
    out_shape = (3, 8, size[0] // patch, size[1] // patch)
    weights = torch.randn(out_shape)
    results = []
    for fn in (layer, lambda xi: renet_reference(layer, xi)):
        xi = x.clone().requires_grad_(True)
        out = fn(xi)
        layer.zero_grad()
        (out * weights).sum().backward()
        results.append((out.detach(), xi.grad, {n: p.grad.clone() for n, p in layer.named_parameters()}))
    (out_f, gx_f, gp_f), (out_r, gx_r, gp_r) = results
    assert out_f.shape == out_shape
    assert_close_scaled(out_f, out_r, atol=1e-5)
    assert_close_scaled(gx_f, gx_r, atol=1e-5)
    for name in gp_f:
        assert_close_scaled(gp_f[name], gp_r[name], atol=1e-5, msg=name)


def test_every_output_sees_the_whole_image():
    torch.manual_seed(1)
    layer = ReNetLayer(1, 3, patch_size=2)
    x = torch.randn(1, 1, 8, 6, requires_grad=True)
    layer(x)[0, :, 0, 0].sum().backward()  # the top-left output position
    assert (x.grad.abs() > 0).all()


def test_sizes_that_are_not_multiples_of_the_patch_raise():
    layer = ReNetLayer(1, 3, patch_size=2)
    with pytest.raises(ValueError, match="not a multiple of the patch size 2"):
        layer(torch.randn(1, 1, 5, 4))
    with pytest.raises(ValueError, match=r"expects input \(batch, 1, height, width\)"):
        layer(torch.randn(1, 3, 4, 4))


def test_channels_last_input_gives_the_same_output():
    """A ReNet layer's output is a channels-last view, which is what the next layer receives."""
    torch.manual_seed(2)
    layer = ReNetLayer(3, 4, patch_size=2)
    x = torch.randn(2, 3, 6, 8)
    torch.testing.assert_close(layer(x.contiguous(memory_format=torch.channels_last)), layer(x), atol=0, rtol=0)
