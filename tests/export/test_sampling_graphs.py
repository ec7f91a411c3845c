"""PixelRNN's incremental sampling step exported as ONNX graphs: onnxruntime steps as torch does."""

from __future__ import annotations

import pytest
import torch

from rnnvision.errors import UserError
from rnnvision.export import export_model
from rnnvision.export.sampling import OnnxSampler, sampling_paths
from rnnvision.models import create_model, get_model_entry

pytest.importorskip("onnxruntime")

STATE = {"task": "generate", "meta": {"name": "tiny", "task": "generate", "in_chans": 1, "img_size": None}}


def _export(name: str, tmp_path, **options):
    torch.manual_seed(0)
    model = create_model(name, **{**get_model_entry(name).tiny, **options}).eval()
    out = export_model(model, STATE, out=tmp_path / f"{name}.onnx")
    return model, out


@pytest.mark.parametrize("name", ["pixelrnn_row", "pixelrnn_diag"])
def test_onnx_sampling_graphs_give_the_models_conditionals(name, tmp_path):
    model, out = _export(name, tmp_path)
    assert all(p.is_file() for p in sampling_paths(out))
    images = (torch.rand(3, 1, *model.img_size, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    sampler = OnnxSampler(out)
    _, stepped = sampler.autoregress(images, torch.ones_like(images, dtype=torch.bool))
    with torch.no_grad():
        from rnnvision.models.autoregressive import pixel_log_probs

        one_pass = pixel_log_probs(model(images), images, model.levels)  # (B, C, H, W)
    torch.testing.assert_close(stepped, one_pass, atol=1e-4, rtol=1e-4)


def test_onnx_sampling_with_many_levels_and_a_completion(tmp_path):
    model, out = _export("pixelrnn_diag", tmp_path, levels=4)
    sampler = OnnxSampler(out)
    images = torch.randint(0, 4, (2, 1, *model.img_size), generator=torch.Generator().manual_seed(2)).float() / 3
    known = torch.zeros(1, 1, *model.img_size, dtype=torch.bool)
    known[..., :2, :] = True
    completed = sampler.complete(images, known, generator=torch.Generator().manual_seed(3))
    assert torch.equal(completed[..., :2, :], images[..., :2, :])  # the known rows are kept
    assert set((completed * 3).round().unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    with torch.no_grad():
        expected = model.complete(images, known, method="incremental", generator=torch.Generator().manual_seed(3))
    assert torch.equal(completed, expected)  # same draws from the same stream: same images
    assert sampler.sample(2, generator=torch.Generator().manual_seed(4)).shape == (2, 1, *model.img_size)


def test_export_refuses_to_overwrite_a_sampling_graph(tmp_path):
    sampling_paths(tmp_path / "pixelrnn_row.onnx")[1].write_text("mine")
    with pytest.raises(UserError, match="already exists"):
        _export("pixelrnn_row", tmp_path)
    assert not (tmp_path / "pixelrnn_row.onnx").exists()
    assert (tmp_path / "pixelrnn_row.end_row.onnx").read_text() == "mine"


def test_pixelcnn_has_no_sampling_graphs(tmp_path):
    _, out = _export("pixelcnn", tmp_path)
    assert out.is_file() and not any(p.exists() for p in sampling_paths(out))
