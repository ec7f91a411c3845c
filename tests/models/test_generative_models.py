"""PixelRNN / PixelCNN models: causality, exact likelihood = step-by-step conditionals, incremental
sampling = naive sampling, sampling and completion."""

from __future__ import annotations

import pytest
import torch

from rnnvision.errors import UserError
from rnnvision.models import create_model, list_models
from rnnvision.models.autoregressive import pixel_log_probs

GENERATORS = ["pixelcnn", "pixelrnn_diag", "pixelrnn_row"]
RECURRENT = ["pixelrnn_diag", "pixelrnn_row"]


def make(name: str, *, in_chans: int = 1, levels: int = 2, seed: int = 0, **options):
    """A small model whose every allowed path carries influence: weights large enough, and positive
    biases so that the ReLUs are active (a dead ReLU would hide a dependence, never create one)."""
    torch.manual_seed(seed)
    model = create_model(
        name, hidden=6, layers=2, out_hidden=12, in_chans=in_chans, levels=levels, img_size=(4, 5), **options
    )
    with torch.no_grad():
        for name_, p in model.named_parameters():
            p.uniform_(0.2, 0.6) if name_.endswith("bias") else p.uniform_(-0.6, 0.6)
    return model.eval()


def random_images(model, batch: int, height: int, width: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    values = torch.randint(0, model.levels, (batch, model.in_chans, height, width), generator=generator)
    return values.float() / (model.levels - 1)


def test_the_generation_models_are_registered():
    assert set(GENERATORS) <= set(list_models("generate"))


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("height,width", [(1, 6), (5, 7), (7, 5), (6, 6)])
def test_defaults_map_binary_images_of_any_size_to_logits_on_the_same_grid(name, height, width):
    model = create_model(name)
    assert model(torch.zeros(2, 1, height, width)).shape == (2, 1, height, width)


def _jacobian(model, x: torch.Tensor) -> torch.Tensor:
    """d logits[k, r, c] / d x for every output (k, r, c): (C, H, W, C_in, H, W) in one backward pass."""
    _, channels, height, width = x.shape
    outputs = channels * height * width
    xs = x.repeat(outputs, 1, 1, 1).requires_grad_(True)  # one batch item per output
    logits = model(xs)
    if model.levels > 2:  # a random mix of the softmax logits, so no influence cancels by accident
        mix = torch.rand(model.levels, generator=torch.Generator().manual_seed(7)) + 0.5
        logits = torch.einsum("blchw,l->bchw", logits, mix)
    pick = torch.eye(outputs).view(outputs, channels, height, width)  # item i reads output i
    (logits * pick).sum().backward()
    return xs.grad.view(channels, height, width, channels, height, width)


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize(
    "in_chans,levels,height,width",
    [(1, 2, 5, 7), (1, 2, 7, 5), (1, 2, 6, 6), (1, 2, 1, 4), (1, 4, 3, 4), (3, 4, 4, 3)],
)
def test_each_output_depends_on_earlier_pixels_only(name, in_chans, levels, height, width):
    model = make(name, in_chans=in_chans, levels=levels)
    jac = _jacobian(model, random_images(model, 1, height, width))
    order = torch.arange(height * width).view(height, width)  # raster position of every pixel
    for k in range(in_chans):
        for r in range(height):
            for c in range(width):
                influence = jac[k, r, c]  # (C_in, H, W)
                later = order > order[r, c]
                assert influence[:, later].eq(0).all(), f"{name}: output ({k},{r},{c}) sees a later pixel"
                assert influence[k:, r, c].eq(0).all(), f"{name}: output ({k},{r},{c}) sees its own or a later channel"
                earlier = influence[:, order < order[r, c]].abs().sum() + influence[:k, r, c].abs().sum()
                if order[r, c] > 0 or k > 0:
                    assert earlier > 0, f"{name}: output ({k},{r},{c}) sees nothing before it"


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("in_chans,levels", [(1, 2), (3, 4)])
def test_one_pass_likelihood_equals_the_sum_of_step_by_step_conditionals(name, in_chans, levels):
    model = make(name, in_chans=in_chans, levels=levels)
    x = random_images(model, 3, 4, 5)
    step_by_step = model.conditionals(x, method="naive")  # every pixel from a canvas holding only earlier ones
    one_pass = pixel_log_probs(model(x), x, levels)
    torch.testing.assert_close(step_by_step, one_pass, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(step_by_step.flatten(1).sum(1), model.log_prob(x), atol=1e-4, rtol=1e-5)
    assert (one_pass <= 0).all() and model.log_prob(x).shape == (3,)


@pytest.mark.parametrize("name", RECURRENT)
@pytest.mark.parametrize("in_chans,levels", [(1, 2), (1, 4), (3, 4)])
def test_incremental_gives_the_naive_conditionals_and_samples(name, in_chans, levels):
    model = make(name, in_chans=in_chans, levels=levels)
    x = random_images(model, 2, 4, 5)
    torch.testing.assert_close(
        model.conditionals(x, method="incremental"), model.conditionals(x, method="naive"), atol=1e-5, rtol=1e-5
    )
    draws = [
        model.sample(3, size=(3, 4), method=m, generator=torch.Generator().manual_seed(5))
        for m in ("incremental", "naive")
    ]
    assert torch.equal(draws[0], draws[1])


def test_binary_likelihood_is_exact_for_a_known_distribution():
    model = make("pixelcnn")
    x = random_images(model, 2, 3, 3)
    p = torch.sigmoid(model(x))
    expected = (x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    torch.testing.assert_close(model.log_prob(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", GENERATORS)
def test_samples_are_valid_reproducible_images(name):
    model = make(name, levels=4)
    a = model.sample(4, generator=torch.Generator().manual_seed(0))
    model.train()  # sampling switches to eval mode for its own work and gives the caller's mode back
    modes = []  # the mode of every module each time the network runs during sampling
    hook = torch.nn.modules.module.register_module_forward_pre_hook(lambda m, _: modes.append(m.training))
    try:
        b = model.sample(4, generator=torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    assert modes and not any(modes)  # every layer sampled in eval mode (no dropout here to show it otherwise)
    assert model.training is True and all(m.training for m in model.modules())
    assert a.shape == (4, 1, 4, 5) and torch.equal(a, b)
    assert set((a * 3).round().unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    model.eval()
    model.sample(1)
    assert model.training is False


@pytest.mark.parametrize("name", ["pixelrnn_diag", "pixelcnn"])
def test_completion_keeps_the_known_pixels_and_fills_the_rest(name):
    model = make(name)
    images = random_images(model, 3, 4, 5)
    known = torch.zeros(3, 1, 4, 5, dtype=torch.bool)
    known[:, :, :2] = True
    done = model.complete(images, known, generator=torch.Generator().manual_seed(0))
    assert torch.equal(done[:, :, :2], images[:, :, :2])
    assert set(done.unique().tolist()) <= {0.0, 1.0}
    redone = model.complete(images, known[0, 0], generator=torch.Generator().manual_seed(1))  # (H, W) mask broadcasts
    assert torch.equal(redone[:, :, :2], images[:, :, :2])
    everything = model.complete(images, torch.ones(4, 5, dtype=torch.bool))
    assert torch.equal(everything, images)


def test_bad_requests_raise_value_errors_and_bad_options_user_errors():
    with pytest.raises(ValueError, match="no recurrent state"):
        make("pixelcnn").sample(1, method="incremental")
    with pytest.raises(ValueError, match="method must be"):
        make("pixelrnn_row").sample(1, method="fast")
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, H, W\)"):
        make("pixelrnn_row")(torch.zeros(2, 3, 4, 4))
    with pytest.raises(UserError, match="in_chans"):
        create_model("pixelrnn_diag", in_chans=2)
    with pytest.raises(ValueError, match="at least 1"):
        make("pixelrnn_row").sample(0)
