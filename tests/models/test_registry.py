"""Every registered model builds tiny, runs, and trains every parameter; the registry is strict."""

from __future__ import annotations

import pytest
import torch

import rnnvision
from rnnvision.config import config_from_dict
from rnnvision.errors import UserError
from rnnvision.impl import IMPL_SETS, impl_names
from rnnvision.models import create_model, get_model_entry, list_models, register_model
from rnnvision.options import builder_options


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_tiny_and_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    entry = get_model_entry(name)
    model = create_model(name, **entry.tiny)
    model.train()
    inputs = model.example_inputs(batch_size=2)
    output = model(*inputs)
    outputs = output if isinstance(output, (tuple, list)) else (output,)
    assert outputs[0].shape[0] == 2
    for out in outputs:
        assert torch.isfinite(out).all(), name
    sum(out.float().square().mean() for out in outputs).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert not missing, f"{name}: no gradient for {missing}"


def test_the_foundation_classifiers_are_registered():
    expected = {"row_rnn", "row_gru", "row_lstm", "row_bilstm", "pixel_lstm", "pixel_gru"}
    assert expected <= set(list_models("classify"))
    assert list_models() == sorted(list_models())


def test_classifier_output_shape_and_public_api():
    model = rnnvision.create_model("row_lstm", num_classes=7, img_size=(12, 10), hidden_size=16)
    assert model(torch.rand(3, 1, 12, 10)).shape == (3, 7)
    gates = model.gates(torch.rand(3, 1, 12, 10))
    assert gates["forget"].shape == (1, 1, 3, 12, 16)  # (layers, directions, B, T=rows, H)


PERMUTED = [name for name in list_models() if "permutation_seed" in builder_options(get_model_entry(name).builder)]


def test_every_pixel_reader_takes_a_permutation():
    assert {"pixel_lstm", "pixel_gru", "pixel_mingru", "pixel_lru"} <= set(PERMUTED)


@pytest.mark.parametrize("name", PERMUTED)
def test_permuted_pixel_model_reads_in_its_fixed_order(name):
    tiny = {**get_model_entry(name).tiny, "img_size": 4}
    a = create_model(name, **tiny, permutation_seed=3)
    b = create_model(name, **tiny, permutation_seed=3)
    assert torch.equal(a.permutation, b.permutation) and a.permutation.shape == (16,)
    assert "permutation" in a.state_dict()
    # The permuted model on an image equals the same weights reading, in raster order, the image whose
    # raster pixel t is the original pixel perm[t]: the permutation is applied, and applied as documented.
    torch.manual_seed(0)
    plain = create_model(name, **tiny).eval()
    plain.load_state_dict({k: v for k, v in a.state_dict().items() if k != "permutation"})
    a.eval()
    images = torch.rand(2, 1, 4, 4)
    shuffled = images.reshape(2, 1, 16)[:, :, a.permutation].reshape(2, 1, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(a(images), plain(shuffled))
        assert not torch.allclose(a(images), plain(images))  # the order matters to this model


@pytest.mark.parametrize("name", list_models())
def test_impl_is_a_shared_set_that_the_config_checks(name):
    options = get_model_entry(name).options()
    if "impl" not in options:
        # pixelcnn: no recurrence; the long-range lab's sequence models: the cell's own default
        # implementation for every cell (the lab compares cells, not implementations)
        assert name in ("pixelcnn", "sequence_regressor", "sequence_tagger")
        return
    annotation, default = options["impl"]
    assert annotation in IMPL_SETS and default == "auto"
    names = ", ".join(map(repr, impl_names(annotation)))
    with pytest.raises(UserError, match=f"^model.impl must be one of {names}, got 'fuzed'"):
        config_from_dict({"model": {"name": name, "impl": "fuzed"}, "data": {"name": "digits"}})
    with pytest.raises(UserError, match=f"model '{name}': impl must be one of"):
        create_model(name, **{**get_model_entry(name).tiny, "impl": "fuzed"})  # from Python, the layer refuses it


def test_duplicate_names_and_unknown_models_and_options_raise():
    with pytest.raises(ValueError, match="already registered"):
        register_model(task="classify")(get_model_entry("row_lstm").builder)
    with pytest.raises(UserError, match="unknown model 'row_transformer'"):
        create_model("row_transformer")
    with pytest.raises(UserError, match="has no option hidden"):
        create_model("row_lstm", hidden=3)
