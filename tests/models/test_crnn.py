"""CRNN: padded columns never leak into valid ones; masked BatchNorm equals BatchNorm on valid pixels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnvision.errors import UserError
from rnnvision.models import create_model
from rnnvision.models.crnn import MaskedBatchNorm2d, column_mask
from rnnvision.ops.ctc import ctc_greedy_decode


def test_masked_batchnorm_with_full_mask_equals_batchnorm():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4, 7) * 2 + 1
    ours, theirs = MaskedBatchNorm2d(5), nn.BatchNorm2d(5)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.normal_()
    theirs.load_state_dict(ours.state_dict())
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = ours(a, torch.ones(3, 1, 1, 7)), theirs(b)
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=1e-5)
    (ya * torch.linspace(-1, 1, ya.numel()).reshape(ya.shape)).sum().backward()
    (yb * torch.linspace(-1, 1, yb.numel()).reshape(yb.shape)).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.running_mean, theirs.running_mean)
    torch.testing.assert_close(ours.running_var, theirs.running_var)


def test_masked_batchnorm_statistics_come_from_the_valid_columns_only():
    torch.manual_seed(1)
    widths = torch.tensor([7, 3, 5])
    mask = column_mask(widths, 7)  # (B, 1, 1, W)
    x = torch.randn(3, 4, 2, 7) * mask + 100.0 * (1 - mask)  # padding holds garbage
    ours, reference = MaskedBatchNorm2d(4), nn.BatchNorm2d(4)
    y = ours(x, mask)
    # the valid pixels of each channel laid side by side: (1, C, 1, N)
    valid = torch.cat([x[b, :, :, : int(w)].reshape(4, -1) for b, w in enumerate(widths)], dim=1)[None, :, None]
    y_ref = reference(valid)
    y_valid = torch.cat([y[b, :, :, : int(w)].reshape(4, -1) for b, w in enumerate(widths)], dim=1)[None, :, None]
    torch.testing.assert_close(y_valid, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.running_mean, reference.running_mean)
    torch.testing.assert_close(ours.running_var, reference.running_var)
    ours.eval(), reference.eval()
    torch.testing.assert_close(ours(x, mask), reference(x))  # eval: running statistics, mask unused


@pytest.mark.parametrize("name", ["crnn", "crnn_gru"])
def test_an_image_alone_and_inside_a_padded_batch_gives_the_same_scores(name):
    torch.manual_seed(2)
    model = create_model(name, size="tiny", num_classes=6, img_height=16)
    images, widths = model.example_inputs(batch_size=5)  # widths 24, 31, 38, 24, 31
    model.train()
    for _ in range(3):  # move the running statistics away from their initial values
        model(images, widths)
    model.eval()
    single_width = 29  # odd, and narrower than the batch
    single = torch.rand(1, 1, 16, single_width)
    batch = torch.rand(4, 1, 16, 45)
    batch[2] = 0.0
    batch[2, :, :, :single_width] = single[0]
    batch[2, :, :, single_width:] = torch.rand(1, 16, 45 - single_width)  # padding content must not matter
    batch_widths = torch.tensor([45, 40, single_width, 33])
    with torch.no_grad():
        alone = model(single, torch.tensor([single_width]))  # (1, T, K)
        together = model(batch, batch_widths)  # (4, T', K)
    steps = single_width // 4
    assert alone.shape == (1, steps, 6) and together.shape == (4, 45 // 4, 6)
    torch.testing.assert_close(together[2, :steps], alone[0], atol=1e-5, rtol=1e-5)
    lengths = model.output_lengths(batch_widths)
    assert ctc_greedy_decode(together, lengths)[2] == ctc_greedy_decode(alone)[0]


def test_crnn_sizes_and_input_checks():
    model = create_model("crnn", size="small", num_classes=11)
    assert model(torch.rand(2, 1, 32, 40), torch.tensor([40, 17])).shape == (2, 10, 11)
    with pytest.raises(ValueError, match="widths must lie"):
        model(torch.rand(1, 1, 32, 40), torch.tensor([3]))
    with pytest.raises(ValueError, match="32 pixels high"):
        model(torch.rand(1, 1, 30, 40))
    with pytest.raises(UserError, match="multiple of 16"):  # the registry turns a refused value into a UserError
        create_model("crnn", img_height=40)
    base = sum(p.numel() for p in create_model("crnn", size="base").parameters())
    assert 8_000_000 < base < 9_500_000  # the paper's CRNN has 8.3M parameters
