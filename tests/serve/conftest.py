"""Models and images for the serve tests, made in seconds.

The digits classifier is trained (a plain loop of a few epochs, no reports), so the answer to a
drawn digit means something. The recognition, segmentation and generation models are the
recipes' tiny versions saved with their initial weights: the serve tests check what the server
and the page do with a model's output, not how good it is. All are saved in the trainer's
checkpoint format, through the recipes, so ``load_model`` rebuilds them like any run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from rnnvision.config import load_config
from rnnvision.data import build_dataset
from rnnvision.data.base import dataset_meta
from rnnvision.engine.checkpoint import save_checkpoint
from rnnvision.engine.evaluation import evaluate
from rnnvision.engine.trainer import count_parameters, resolve_model_kwargs
from rnnvision.models import create_model
from rnnvision.tasks import make_task

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = {  # name: (recipe, overrides, training epochs)
    "digits": ("digits_row_lstm.yaml", ["model.hidden_size=32", "model.head_hidden=32", "model.dropout=0"], 6),
    "strings": (
        "digit_strings_crnn.yaml",
        ["model.size=tiny", "data.source=sklearn", "data.max_length=4", "data.test_size=4"],
        0,
    ),
    "scenes": (
        "digit_scenes_mdlstm.yaml",
        ["model.hidden_sizes=[4, 4]", "model.head_chans=8", "data.test_images=4"],
        0,
    ),
    "pixels": ("digits_pixelrnn_row.yaml", ["model.hidden=8", "model.layers=1", "model.out_hidden=16"], 0),
}


def save_recipe_model(recipe: str, overrides: list[str], path: Path, *, epochs: int = 0, data_dir=None) -> Path:
    """A checkpoint of the recipe's model, initial weights (seed 0) trained ``epochs`` times over the
    training split with AdamW (lr 0.01, batch 32); test metrics when trained."""
    config = load_config(CONFIGS / recipe, overrides)
    data = {k: v for k, v in config.data.items() if k != "name"}
    test = build_dataset(config.data["name"], split="test", root=data_dir, **data)
    config.model = {"name": config.model["name"], **resolve_model_kwargs(config.model, test.info)}
    torch.manual_seed(0)
    model = create_model(config.model["name"], **{k: v for k, v in config.model.items() if k != "name"})
    task = make_task(config.task, dataset_meta(test.info))
    metrics = {}
    if epochs:
        train = build_dataset(config.data["name"], split="train", root=data_dir, **data)
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
        generator = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            model.train()
            for batch in DataLoader(train, batch_size=32, shuffle=True, collate_fn=task.collate, generator=generator):
                optimizer.zero_grad()
                task.training_loss(model, batch).backward()
                optimizer.step()
        metrics = {"test": evaluate(model, test, task, batch_size=256, device=torch.device("cpu"))[0]}
    return save_checkpoint(
        path,
        {
            "model_name": config.model["name"],
            "task": config.task,
            "config": config.to_dict(),
            "meta": dataset_meta(test.info),
            "state_dict": model.state_dict(),
            "metrics": metrics,
            "num_params": count_parameters(model),
        },
    )


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """name -> checkpoint: digits (classify, trained), strings (recognize), scenes (segment), pixels (generate)."""
    root = tmp_path_factory.mktemp("serve-models")
    return {
        name: save_recipe_model(recipe, overrides, root / name / "best.pt", epochs=epochs)
        for name, (recipe, overrides, epochs) in RECIPES.items()
    }


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
