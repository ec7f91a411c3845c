"""``rnnvision gradflow``: per-step input-gradient norms of a trained sequence classifier, and a one-line refusal."""

from __future__ import annotations

import pytest
import torch

from rnnvision.cli import main
from rnnvision.engine.checkpoint import load_checkpoint, save_checkpoint
from rnnvision.engine.gradflow import gradient_flow
from rnnvision.models import create_model

pytestmark = pytest.mark.slow  # one tiny training run on the digits

RECIPE = """model:
  name: {model}
{options}data:
  name: digits
train:
  epochs: 1
  batch_size: 256
  lr: 0.01
  seed: 0
  device: cpu
"""


def _train(root, model: str, options: str) -> str:
    config = root / f"{model}.yaml"
    config.write_text(RECIPE.format(model=model, options=options))
    assert main(["train", str(config), "--out", str(root / model), "--quiet"]) == 0
    return str(root / model / "best.pt")


def _same_run_other_model(source: str, path, model: dict) -> str:
    """The checkpoint of ``source`` with another (untrained) model: for models whose training the test does not need."""
    state = load_checkpoint(source)
    state["config"]["model"] = model
    state["model_name"] = model["name"]  # a checkpoint's name must agree with its config (checked on load)
    state["state_dict"] = create_model(**model).state_dict()
    return str(save_checkpoint(path, state))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gradflow")
    lstm = _train(root, "pixel_lstm", "  hidden_size: 8\n  gate_init: chrono\n")
    torch.manual_seed(0)
    return {
        "pixel_lstm": lstm,
        "pixel_lru": _same_run_other_model(
            lstm, root / "lru.pt", {"name": "pixel_lru", "dim": 8, "state_size": 4, "depth": 1, "img_size": 8}
        ),
        "renet": _same_run_other_model(
            lstm, root / "renet.pt", {"name": "renet", "hidden_sizes": [4, 4], "head_hidden": 8, "img_size": 8}
        ),
    }


def test_gradflow_plots_every_step_and_the_forget_gate(runs, tmp_path, capsys):
    out = tmp_path / "grad.png"
    assert main(["gradflow", runs["pixel_lstm"], "--out", str(out), "--n", "8"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "forget gate" in capsys.readouterr().out
    flow = gradient_flow(runs["pixel_lstm"], n=8)
    assert flow.grad_norm.shape == (64,) and flow.n == 8  # one value per pixel of an 8x8 digit
    assert bool((flow.grad_norm >= 0).all()) and flow.grad_norm.max() > 0
    assert set(flow.gates) == {"forget"} and flow.gates["forget"].shape == (64,)
    assert bool(((flow.gates["forget"] > 0) & (flow.gates["forget"] < 1)).all())


def test_gradflow_matches_autograd_on_one_image(runs):
    from rnnvision.data import build_dataset
    from rnnvision.engine.checkpoint import load_model

    model, _ = load_model(runs["pixel_lru"])
    image, label = build_dataset("digits", split="test")[0]
    flow = gradient_flow(runs["pixel_lru"], n=1)
    assert not flow.gates  # an LRU has no gates
    seq = image.flatten()[None, :, None].clone().requires_grad_(True)  # (1, 64, 1): the pixels in raster order
    torch.testing.assert_close(model(image[None]), model.forward_sequence(seq))
    loss = torch.nn.functional.cross_entropy(model.forward_sequence(seq), torch.as_tensor([label]))
    (grad,) = torch.autograd.grad(loss, seq)
    torch.testing.assert_close(flow.grad_norm, grad[0].norm(dim=-1), rtol=1e-5, atol=1e-9)


def test_gradflow_refuses_a_model_that_is_not_a_sequence_model(runs, tmp_path, capsys):
    assert main(["gradflow", runs["renet"], "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a sequence model" in err
    assert not (tmp_path / "g.png").exists()
