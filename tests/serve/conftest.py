"""Models and images for the serve tests.

The classifier is trained (a few seconds of the digits recipe), so a drawn digit's answer
means something. The recognition, segmentation and generation models are the recipes' tiny
versions saved untrained in the trainer's checkpoint format: the serve tests check what the
server and the page do with a model's output, not how good it is, and training them would cost
minutes on a busy 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnnvision.cli import main
from rnnvision.config import load_config
from rnnvision.data import build_dataset
from rnnvision.engine.checkpoint import save_checkpoint
from rnnvision.engine.trainer import count_parameters, dataset_meta, resolve_model_kwargs
from rnnvision.models import create_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CLASSIFIER = ["model.hidden_size=32", "model.head_hidden=32", "train.epochs=5", "train.lr=0.01"]
UNTRAINED = {
    "strings": ("digit_strings_crnn.yaml", ["model.size=tiny", "data.source=sklearn", "data.max_length=4", "data.test_size=4"]),
    "scenes": ("digit_scenes_mdlstm.yaml", ["model.hidden_sizes=[4, 4]", "model.head_chans=8", "data.test_images=4"]),
    "pixels": ("digits_pixelrnn_row.yaml", ["model.hidden=8", "model.layers=1", "model.out_hidden=16"]),
}


def save_untrained(recipe: str, overrides: list[str], path: Path) -> Path:
    """A checkpoint of the recipe's model with its initial weights (seed 0), loadable by ``load_model``."""
    config = load_config(CONFIGS / recipe, overrides)
    data = {k: v for k, v in config.data.items() if k != "name"}
    info = build_dataset(config.data["name"], split="test", **data).info
    config.model = {"name": config.model["name"], **resolve_model_kwargs(config.model, info)}
    torch.manual_seed(0)
    model = create_model(config.model["name"], **{k: v for k, v in config.model.items() if k != "name"})
    return save_checkpoint(path, {
        "model_name": config.model["name"], "task": config.task, "config": config.to_dict(), "meta": dataset_meta(info),
        "state_dict": model.state_dict(), "metrics": {}, "num_params": count_parameters(model),
    })


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """name -> checkpoint: digits (classify, trained), strings (recognize), scenes (segment), pixels (generate)."""
    root = tmp_path_factory.mktemp("serve-models")
    args = ["train", str(CONFIGS / "digits_row_lstm.yaml"), "--out", str(root / "digits"), "--quiet"]
    assert main(args + [item for s in CLASSIFIER for item in ("--set", s)]) == 0
    out = {"digits": root / "digits" / "best.pt"}
    for name, (recipe, overrides) in UNTRAINED.items():
        out[name] = save_untrained(recipe, overrides, root / f"{name}.pt")
    return out


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> dict[str, Path]:
    """PNG files: a test digit (8 x 8), a digit line, a digit scene."""
    root = tmp_path_factory.mktemp("serve-images")
    digits = build_dataset("digits", split="test")
    Image.fromarray((digits.images[0, 0].numpy() * 255).round().astype(np.uint8)).save(root / "digit.png")
    line, _ = build_dataset("digit-strings", split="test", source="sklearn", max_length=4, test_size=1)[0]
    Image.fromarray((line[0].numpy() * 255).round().astype(np.uint8)).save(root / "line.png")
    scene = build_dataset("digit-scenes", split="test", test_images=1).images[0, 0].numpy()
    Image.fromarray(scene).save(root / "scene.png")
    return {"digit": root / "digit.png", "line": root / "line.png", "scene": root / "scene.png"}
