"""The wavefront 2D LSTM equals the per-pixel reference loop, outputs and every gradient."""

from __future__ import annotations

import math

import pytest
import torch

from rnnvision.layers import MDLSTM2d
from rnnvision.ops.mdlstm import CORNERS, mdlstm2d_reference, mdlstm2d_wavefront, wavefront_plan

SIZES = [(1, 9), (9, 1), (5, 7)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("directions", [1, 2, 3, 4])
@pytest.mark.parametrize("merge", ["sum", "concat"])
def test_wavefront_equals_reference_on_outputs_and_all_gradients(size, directions, merge):
    torch.manual_seed(directions)
    # float64: the two paths sum in different orders, so float32 results differ by rounding that
    # depends on the CPU (AVX-512 or not) and thread count; in float64 that rounding is ~1e-16.
    layer = MDLSTM2d(3, 5, directions=directions, merge=merge).double()
    x = torch.randn(3, 3, *size, dtype=torch.float64) * 2  # batch 3, odd sizes
    weights = torch.randn(3, layer.out_chans, *size, dtype=torch.float64)  # a generic loss that touches every output
    results = {}
    for impl in ("wavefront", "reference"):
        layer.impl = impl
        xi = x.clone().requires_grad_(True)
        out = layer(xi)
        layer.zero_grad()
        (out * weights).sum().backward()
        results[impl] = (out.detach(), xi.grad, {n: p.grad.clone() for n, p in layer.named_parameters()})
    (out_w, gx_w, gp_w), (out_r, gx_r, gp_r) = results["wavefront"], results["reference"]
    assert out_w.shape == (3, layer.out_chans, *size)
    torch.testing.assert_close(out_w, out_r, atol=1e-10, rtol=0)
    torch.testing.assert_close(gx_w, gx_r, atol=1e-10, rtol=0)
    assert set(gp_w) == {"weight_ih", "weight_hh", "bias"}
    for name in gp_w:
        assert gp_r[name].abs().max() > 0, name
        torch.testing.assert_close(gp_w[name], gp_r[name], atol=1e-10, rtol=0, msg=name)


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_reference_is_the_textbook_equation_on_a_two_pixel_column():
    """Top-left scan of a 2x1 image, one unit: the lower pixel's vertical predecessor is the upper one."""
    torch.manual_seed(0)
    w_ih, w_hh, bias = torch.randn(1, 5, 1), torch.randn(1, 5, 2), torch.randn(1, 5)
    x = torch.tensor([[[[0.7], [-1.3]]]])  # (B=1, C=1, H=2, W=1)
    out = mdlstm2d_reference(x, w_ih, w_hh, bias, corners=("top-left",))[0, 0, 0, :, 0]  # (2,) rows
    w, u_h, u_v, b = w_ih[0, :, 0].tolist(), w_hh[0, :, 0].tolist(), w_hh[0, :, 1].tolist(), bias[0].tolist()
    h_up = c_up = 0.0
    for row, value in enumerate((0.7, -1.3)):
        a = [w[k] * value + b[k] + u_h[k] * 0.0 + u_v[k] * h_up for k in range(5)]  # no horizontal predecessor
        i, f_h, f_v, o, g = _sigmoid(a[0]), _sigmoid(a[1]), _sigmoid(a[2]), _sigmoid(a[3]), math.tanh(a[4])
        c = f_h * 0.0 + f_v * c_up + i * g
        h = o * math.tanh(c)
        assert abs(out[row].item() - h) < 1e-6
        h_up, c_up = h, c


@pytest.mark.parametrize("impl", ["wavefront", "reference"])
def test_each_direction_sees_only_the_pixels_towards_its_corner(impl):
    torch.manual_seed(1)
    layer = MDLSTM2d(2, 3, directions=4, impl=impl)
    x = torch.randn(1, 2, 5, 6)
    poked = x.clone()
    poked[0, :, 2, 3] += 1.0  # change one pixel
    changed = (layer.forward_directions(poked) - layer.forward_directions(x)).abs().amax(dim=(1, 2)) > 0  # (D, H, W)
    rows, cols = torch.arange(5)[:, None], torch.arange(6)[None, :]
    for d, corner in enumerate(layer.corners):
        flip_rows, flip_cols = CORNERS[corner]
        below = rows <= 2 if flip_rows else rows >= 2
        after = cols <= 3 if flip_cols else cols >= 3
        assert torch.equal(changed[d], below & after), corner  # exactly the quadrant away from the corner


def test_concat_stacks_the_directions_in_corner_order():
    torch.manual_seed(2)
    layer = MDLSTM2d(2, 4, directions=3, merge="concat")
    x = torch.randn(2, 2, 3, 4)
    per_direction = layer.forward_directions(x)  # (D, B, H, h, w)
    out = layer(x)
    assert out.shape == (2, 12, 3, 4) and layer.corners == ("top-left", "bottom-right", "top-right")
    for d in range(3):
        torch.testing.assert_close(out[:, 4 * d : 4 * (d + 1)], per_direction[d])
    layer.merge = "sum"
    torch.testing.assert_close(layer(x), per_direction.sum(0))


def test_wavefront_plan_visits_every_pixel_once_in_diagonal_order():
    plan = wavefront_plan(4, 6, ("top-left", "bottom-right"), torch.device("cpu"))
    pixels = 24
    assert sum(n for n, _, _ in plan.steps) == pixels and len(plan.steps) == 4 + 6 - 1
    for d in range(2):
        order = plan.gather[d * pixels : (d + 1) * pixels]
        assert sorted(order.tolist()) == list(range(pixels))
        torch.testing.assert_close(plan.scatter[d * pixels + order], torch.arange(pixels) + d * pixels)
    rows, cols = plan.gather[:pixels] // 6, plan.gather[:pixels] % 6
    assert torch.all((rows + cols)[1:] >= (rows + cols)[:-1])  # top-left scan: anti-diagonals in order
    rows, cols = plan.gather[pixels:] // 6, plan.gather[pixels:] % 6
    assert torch.all((rows + cols)[1:] <= (rows + cols)[:-1])  # bottom-right scan: from the far corner


def test_wavefront_runs_under_no_grad_and_keeps_dtype():
    layer = MDLSTM2d(1, 2)
    with torch.no_grad():
        out = mdlstm2d_wavefront(
            torch.randn(2, 1, 3, 3), layer.weight_ih, layer.weight_hh, layer.bias, corners=layer.corners
        )
    assert out.shape == (4, 2, 2, 3, 3) and out.dtype == torch.float32


def test_bad_options_and_inputs_raise():
    with pytest.raises(ValueError, match="directions must be 1 to 4"):
        MDLSTM2d(1, 2, directions=5)
    with pytest.raises(ValueError, match="merge must be one of"):
        MDLSTM2d(1, 2, merge="max")
    with pytest.raises(ValueError, match="impl must be"):
        MDLSTM2d(1, 2, impl="fused")
    with pytest.raises(ValueError, match=r"expects input \(batch, 3, height, width\)"):
        MDLSTM2d(3, 2)(torch.randn(1, 2, 4, 4))


def test_wavefront_is_the_same_computation_in_float64_on_a_larger_image():
    """fp32 rounding grows along long scan paths; in float64 the two agree to rounding of 1e-16."""
    torch.manual_seed(3)
    layer = MDLSTM2d(3, 6, directions=4).double()
    x = torch.rand(2, 3, 17, 12, dtype=torch.float64)
    with torch.no_grad():
        fast = layer.forward_directions(x)
        layer.impl = "reference"
        torch.testing.assert_close(layer.forward_directions(x), fast, atol=1e-12, rtol=0)
