"""pixel_mingru / pixel_minlstm / cross_mingru: every implementation gives the same model."""

from __future__ import annotations

import pytest
import torch

from rnnvision.cli import main
from rnnvision.errors import UserError
from rnnvision.models import create_model
from tests.conftest import assert_close_scaled


@pytest.mark.parametrize("name", ["pixel_mingru", "pixel_minlstm"])
def test_pixel_models_agree_across_implementations_and_read_in_their_order(name):
    torch.manual_seed(0)
    model = create_model(name, img_size=5, dim=6, depth=2, permutation_seed=3, pool="last").eval()
    images = torch.rand(3, 1, 5, 5)
    outputs = {}
    for impl in ("reference", "chunked", "log"):
        model.stack.set_impl(impl)
        outputs[impl] = model(images)
    assert_close_scaled(outputs["chunked"], outputs["reference"], atol=1e-5)
    assert_close_scaled(outputs["log"], outputs["reference"], atol=1e-5)
    # reading in the seeded order = reading images whose pixels were shuffled into that order
    plain = create_model(name, img_size=5, dim=6, depth=2, pool="last").eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k != "permutation"})
    shuffled = images.flatten(1)[:, model.permutation].reshape(3, 1, 5, 5)
    assert_close_scaled(plain(shuffled), outputs["log"], atol=1e-5)


def test_mean_and_last_pooling_differ_and_bad_options_raise():
    torch.manual_seed(1)
    images = torch.rand(2, 1, 4, 4)
    last = create_model("pixel_mingru", img_size=4, dim=6, depth=1, pool="last")
    mean = create_model("pixel_mingru", img_size=4, dim=6, depth=1, pool="mean")
    mean.load_state_dict(last.state_dict())
    assert not torch.allclose(last(images), mean(images))
    with pytest.raises(UserError, match="model 'pixel_mingru': pool must be 'last' or 'mean', got 'max'"):
        create_model("pixel_mingru", pool="max")
    with pytest.raises(UserError, match="impl must be one of"):
        create_model("pixel_minlstm", impl="fast")
    with pytest.raises(UserError, match="patch_size"):
        create_model("cross_mingru", img_size=10, patch_size=4)


def test_cli_refuses_a_bad_model_option_value_in_one_line(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("model: {name: pixel_mingru, img_size: 8, pool: max}\ndata: {name: digits}\n")
    assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pool must be 'last' or 'mean'" in err


def test_cross_model_sees_the_whole_grid():
    torch.manual_seed(2)
    model = create_model("cross_mingru", img_size=8, patch_size=2, dim=8, depth=1).eval()
    images = torch.rand(2, 1, 8, 8, requires_grad=True)
    model(images)[0, 0].backward()
    assert (images.grad[0].abs().sum(0) > 0).all()  # every pixel of image 0 reaches its logits
    assert images.grad[1].abs().sum() == 0  # and nothing of image 1 does
