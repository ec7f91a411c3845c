"""PixelRNN layers: masks as in section 3.4, fused equals the per-pixel reference (outputs and
gradients, fp32, odd sizes, batch > 1), and the incremental steppers equal the full layers."""

from __future__ import annotations

import pytest
import torch

from rnnvision.layers.pixelrnn import (
    DiagonalBiLSTM,
    DiagonalBiLSTMStepping,
    MaskedConv2d,
    RowLSTM,
    RowLSTMStepping,
    causal_mask,
    channel_groups,
)

SIZES = [(1, 1), (1, 4), (3, 1), (3, 5), (5, 3)]


def _randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Weights large enough that every path matters (the default init is small)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=generator) - 0.5)
    return module


def test_mask_a_and_b_on_a_binary_image():
    groups = channel_groups(1, 1)
    a, b = causal_mask(groups, groups, (3, 3), "A")[0, 0], causal_mask(groups, groups, (3, 3), "B")[0, 0]
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]


def test_rgb_masks_order_the_channels_r_g_b():
    image = channel_groups(3, 3)  # R, G, B
    features = channel_groups(6, 3)  # two features per colour
    assert features.tolist() == [0, 0, 1, 1, 2, 2]
    centre_a = causal_mask(features, image, (7, 7), "A")[:, :, 3, 3]  # (features, colours)
    assert centre_a.tolist() == [[0, 0, 0]] * 2 + [[1, 0, 0]] * 2 + [[1, 1, 0]] * 2
    centre_b = causal_mask(image, features, (1, 1), "B")[:, :, 0, 0]  # (colours, features)
    assert centre_b.tolist() == [[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]
    above = causal_mask(features, image, (7, 7), "A")[:, :, :3]
    assert bool(above.eq(1).all())  # every channel sees every colour of the rows above


def test_gate_maps_repeat_the_groups_per_gate():
    conv = MaskedConv2d(6, 4 * 3, 1, mask_type="B", colors=3, out_blocks=4)
    centre = conv.mask[:, :, 0, 0]
    for gate in range(4):
        assert torch.equal(centre[3 * gate : 3 * gate + 3], centre[:3])
    with pytest.raises(ValueError, match="odd kernel"):
        MaskedConv2d(2, 2, 2, mask_type="A")


def _compare(layer, height, width, colors, batch=3):
    channels = layer.channels
    x = torch.randn(batch, channels, height, width, requires_grad=True)
    results = {}
    for impl in ("fused", "reference"):
        layer.impl = impl
        out = layer(x)
        grads = torch.autograd.grad(
            (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), [x, *layer.parameters()]
        )
        results[impl] = (out, grads)
    (out_f, grads_f), (out_r, grads_r) = results["fused"], results["reference"]
    assert out_f.shape == x.shape
    torch.testing.assert_close(out_f, out_r, atol=1e-5, rtol=1e-5)
    for g_f, g_r in zip(grads_f, grads_r):
        torch.testing.assert_close(g_f, g_r, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("colors", [1, 3])
def test_row_lstm_fused_equals_the_per_pixel_loop(height, width, colors):
    _compare(_randomize(RowLSTM(6, 3, kernel=3, colors=colors)), height, width, colors)


def test_row_lstm_with_a_wider_kernel():
    _compare(_randomize(RowLSTM(4, 2, kernel=5)), 4, 6, 1, batch=2)


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("colors", [1, 3])
def test_diagonal_bilstm_fused_equals_the_per_pixel_loop(height, width, colors):
    _compare(_randomize(DiagonalBiLSTM(6, 3, colors=colors)), height, width, colors)


@pytest.mark.parametrize(
    "layer_cls,stepping_cls", [(RowLSTM, RowLSTMStepping), (DiagonalBiLSTM, DiagonalBiLSTMStepping)]
)
def test_stepping_pixel_by_pixel_equals_the_whole_layer(layer_cls, stepping_cls):
    layer = _randomize(layer_cls(4, 2))
    x = torch.randn(2, 4, 4, 5)
    with torch.no_grad():
        expected = layer(x)
        stepping = stepping_cls(layer)
        state = stepping.start(2, 5, x)
        got = torch.zeros_like(expected)
        for r in range(4):
            for c in range(5):
                got[:, :, r, c], state = stepping.step(x[:, :, r, c], torch.tensor(c), state)
            state = stepping.end_row(state)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_diagonal_right_to_left_direction_reaches_a_pixel_only_from_rows_above():
    layer = _randomize(DiagonalBiLSTM(2, 2))
    x = torch.randn(1, 2, 4, 5, requires_grad=True)
    layer(x)[0, :, 2, 1].sum().backward()
    seen = x.grad[0].abs().sum(0)  # (H, W)
    assert seen[3].eq(0).all() and seen[2, 2:].eq(0).all()  # nothing below, nothing to the right
    assert seen[1, 4] != 0  # the top-right context arrives through the shifted right-to-left pass


def test_bad_options_raise():
    with pytest.raises(ValueError, match="at least 3"):
        RowLSTM(4, 2, kernel=1)
    with pytest.raises(ValueError, match="impl"):
        DiagonalBiLSTM(4, 2, impl="cuda")
