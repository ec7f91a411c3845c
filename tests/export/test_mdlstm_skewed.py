"""The skewed MDLSTM scan that export traces computes what the reference and the wavefront compute."""

from __future__ import annotations

import pytest
import torch

from rnnvision.ops.mdlstm import CORNERS, mdlstm2d_reference, mdlstm2d_skewed, mdlstm2d_wavefront


@pytest.mark.parametrize("directions,size", [(1, (5, 7)), (2, (1, 4)), (4, (6, 3))])
def test_skewed_scan_matches_reference_and_wavefront_outputs_and_gradients(directions, size):
    torch.manual_seed(0)
    corners, chans, hidden = tuple(CORNERS)[:directions], 3, 4
    inputs = [
        torch.randn(2, chans, *size, dtype=torch.float64),
        torch.randn(directions, 5 * hidden, chans, dtype=torch.float64),
        torch.randn(directions, 5 * hidden, 2 * hidden, dtype=torch.float64) / 2,
        torch.randn(directions, 5 * hidden, dtype=torch.float64),
    ]
    results = []
    for kernel in (mdlstm2d_reference, mdlstm2d_skewed):
        leaves = [t.clone().requires_grad_() for t in inputs]
        out = kernel(*leaves, corners=corners)  # (D, B, H, Hi, Wi)
        out.square().sum().backward()
        results.append((out.detach(), [leaf.grad for leaf in leaves]))
    (ref, ref_grads), (skewed, skewed_grads) = results
    assert skewed.shape == (directions, 2, hidden, *size)
    torch.testing.assert_close(skewed, ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(skewed_grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(skewed, mdlstm2d_wavefront(*inputs, corners=corners), rtol=1e-12, atol=1e-12)
