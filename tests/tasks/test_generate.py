"""The generate task: NLL in nats per image and bits per dimension, summable statistics, reports."""

from __future__ import annotations

import math

import torch

from rnnvision.config import config_from_dict
from rnnvision.data import build_dataset
from rnnvision.engine import train
from rnnvision.models import create_model
from rnnvision.tasks import make_task
from rnnvision.tasks.generate import NOT_COMPARABLE, completion_grid, quantize


def test_metrics_are_nats_per_image_and_bits_per_dimension():
    task = make_task("generate", {"name": "binarized-mnist"})
    metrics = task.finalize(
        {"nll": torch.tensor(800.0, dtype=torch.float64), "n": torch.tensor(10), "dims": torch.tensor(7840)}
    )
    assert set(metrics) == {"nll_nats", "bits_per_dim", "n"}
    assert metrics["nll_nats"] == 80.0 and metrics["n"] == 10
    assert math.isclose(metrics["bits_per_dim"], 80.0 / 784 / math.log(2))
    assert task.metric == "nll_nats" and not task.higher_is_better


def test_threshold_results_say_they_are_not_comparable():
    task = make_task("generate", {"name": "binarized-mnist-threshold"})
    metrics = task.finalize({"nll": torch.tensor(1.0), "n": torch.tensor(1), "dims": torch.tensor(1)})
    assert metrics["note"] == NOT_COMPARABLE


def test_statistics_of_batches_add_up_to_the_whole():
    torch.manual_seed(0)
    model = create_model("pixelrnn_diag", hidden=4, layers=1, out_hidden=8, img_size=8).eval()
    task = make_task("generate", {"name": "binarized-digits"})
    images = torch.stack([build_dataset("binarized-digits", split="test")[i] for i in range(10)])
    with torch.no_grad():
        whole = task.eval_stats(model, images)
        parts = [task.eval_stats(model, images[:3]), task.eval_stats(model, images[3:])]
        nll = -model.log_prob(images).double().sum()
    torch.testing.assert_close(whole["nll"], parts[0]["nll"] + parts[1]["nll"])
    torch.testing.assert_close(whole["nll"], nll)
    assert int(whole["dims"]) == 640 and int(whole["n"]) == 10


def test_training_lowers_the_nll_and_writes_samples_and_completions(tmp_path):
    raw = {
        "model": {"name": "pixelrnn_row", "hidden": 8, "layers": 2, "out_hidden": 16},
        "data": {"name": "binarized-digits"},
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.01, "device": "cpu", "seed": 0},
    }
    config = config_from_dict(raw)
    torch.manual_seed(0)
    untrained = create_model("pixelrnn_row", **{k: v for k, v in config.model.items() if k != "name"}, img_size=8)
    test = build_dataset("binarized-digits", split="test")
    before = -untrained.log_prob(torch.stack([test[i] for i in range(len(test))])).mean().item()
    result = train(config, out_dir=tmp_path / "run", quiet=True)
    assert result.test_metrics["n"] == 360 and result.test_metrics["nll_nats"] < before - 10
    assert (tmp_path / "run" / "samples.png").stat().st_size > 0 and (tmp_path / "run" / "completions.png").exists()


def test_completion_grid_rows_hold_occluded_completions_original():
    model = create_model("pixelcnn", hidden=4, layers=1, out_hidden=8, img_size=6)
    images = quantize(torch.rand(2, 1, 6, 6), 2)
    grid = completion_grid(model, images, known_rows=3, samples=2, generator=torch.Generator().manual_seed(0))
    assert grid.shape == (8, 1, 6, 6)
    assert torch.equal(grid[3], images[0]) and torch.equal(grid[7], images[1])
    assert (grid[0, :, 3:] == 0.5).all() and torch.equal(grid[0, :, :3], images[0, :, :3])
    assert torch.equal(grid[1, :, :3], images[0, :, :3])
