"""Cross-scan: each order visits the pixels as documented, and its inverse map puts them back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnvision.layers.cross_scan import CrossScan2d
from rnnvision.layers.minrnn import MinGRU
from rnnvision.ops.cross_scan import ORDERS, cross_merge, cross_scan, cross_unscan

B, C, H, W = 2, 3, 4, 5  # H != W so that rows and columns cannot be confused


def _pixel_ids():
    """(B, C, H, W) whose value names the pixel: 100*row + column (+ 1000*batch + 10000*channel)."""
    rows = torch.arange(H)[:, None] * 100 + torch.arange(W)[None, :]
    return (rows + 1000 * torch.arange(B)[:, None, None, None] + 10000 * torch.arange(C)[None, :, None, None]).float()


def test_each_order_visits_the_pixels_as_documented():
    seqs = cross_scan(_pixel_ids())
    assert seqs.shape == (4 * B, H * W, C)
    visits = {
        0: [(t // W, t % W) for t in range(H * W)],
        1: [(t % H, t // H) for t in range(H * W)],
    }
    visits[2], visits[3] = visits[0][::-1], visits[1][::-1]
    for order in range(4):
        for batch in range(B):
            expected = torch.tensor([100 * r + c + 1000 * batch for r, c in visits[order]]).float()
            torch.testing.assert_close(seqs[order * B + batch, :, 0], expected, msg=ORDERS[order])
            torch.testing.assert_close(seqs[order * B + batch, :, 2], expected + 20000)


def test_each_orders_inverse_map_puts_every_pixel_back():
    x = torch.randn(B, C, H, W)
    back = cross_unscan(cross_scan(x), H, W)  # (4, B, C, H, W)
    for order in range(4):
        torch.testing.assert_close(back[order], x, rtol=0, atol=0, msg=ORDERS[order])
    torch.testing.assert_close(cross_merge(cross_scan(x), H, W), 4 * x)
    with pytest.raises(ValueError, match="sequences"):
        cross_unscan(torch.zeros(4 * B, H * W + 1, C), H, W)


def test_a_causal_layer_sees_the_prefix_of_each_order():
    x = torch.rand(1, 1, H, W)
    out = CrossScan2d(_CumSum())(x)[0, 0]  # a running sum: step t sees steps 0..t of its order
    expected = torch.zeros(H, W)
    for r in range(H):
        for c in range(W):
            row_prefix = x[0, 0].flatten()[: r * W + c + 1].sum()
            col_prefix = x[0, 0].t().flatten()[: c * H + r + 1].sum()
            row_suffix = x[0, 0].flatten()[r * W + c :].sum()
            col_suffix = x[0, 0].t().flatten()[c * H + r :].sum()
            expected[r, c] = row_prefix + col_prefix + row_suffix + col_suffix
    torch.testing.assert_close(out, expected)


class _CumSum(nn.Module):
    def forward(self, seq):
        return seq.cumsum(1), None  # (N, T, C), and a state like the recurrent layers return


def test_cross_scan_runs_a_recurrent_layer_and_trains():
    layer = CrossScan2d(MinGRU(C, 6))
    x = torch.randn(B, C, H, W, requires_grad=True)
    out = layer(x)
    assert out.shape == (B, 6, H, W)
    out.square().mean().backward()
    assert x.grad.abs().sum() > 0 and layer.layer.proj.weight.grad.abs().sum() > 0
