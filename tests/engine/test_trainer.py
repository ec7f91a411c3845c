"""The one trainer: schedule, files, best/last checkpoints, exact resume, reports."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from rnnvision.config import config_from_dict
from rnnvision.engine import Trainer, load_checkpoint, load_model, train
from rnnvision.engine.distributed import init_distributed
from rnnvision.engine.evaluation import evaluate_checkpoint
from rnnvision.engine.trainer import lr_factor
from rnnvision.errors import UserError

TINY = {
    "model": {"name": "row_lstm", "hidden_size": 32, "head_hidden": 16, "dropout": 0.1},
    "data": {"name": "digits", "max_shift": 1},
    "train": {"epochs": 3, "batch_size": 64, "lr": 0.02, "warmup_epochs": 0.5, "device": "cpu", "seed": 3},
}


def tiny_config(**train):
    raw = {k: dict(v) for k, v in TINY.items()}
    raw["train"].update(train)
    return config_from_dict(raw)


def stop_during_epoch_2(monkeypatch, config, out_dir):
    """Train ``config`` into ``out_dir`` and interrupt it as epoch 2 starts (last.pt holds epoch 1)."""
    original = Trainer._train_epoch

    def interrupted(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, out_dir=out_dir, quiet=True)
    monkeypatch.setattr(Trainer, "_train_epoch", original)


def test_schedule_warms_up_then_decays_to_the_floor():
    factors = [lr_factor(s, warmup_steps=4, total_steps=20, min_ratio=0.1) for s in range(21)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))
    assert math.isclose(factors[20], 0.1)


def test_training_writes_the_run_directory(tmp_path):
    result = train(tiny_config(), out_dir=tmp_path / "run", quiet=True)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {
        "best.pt",
        "last.pt",
        "config.yaml",
        "metrics.jsonl",
        "curves.png",
        "results.json",
        "confusion.png",
        "predictions.png",
        "gates.png",
    } <= files
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["step"] == 3 * 19  # 1,257 images, full batches of 64
    assert rows[0]["train_loss"] > rows[-1]["train_loss"]
    assert result.test_metrics["n"] == 360 and result.test_metrics["accuracy"] > 0.3  # well above chance (0.1)
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["metrics"]["test"] == result.test_metrics and best["num_params"] > 0 and "training" not in best
    assert best["config"]["model"]["num_classes"] == 10 and best["config"]["model"]["img_size"] == [8, 8]
    assert best["metrics"]["epoch"] == max(rows, key=lambda r: r["val_accuracy"])["epoch"]
    model, _ = load_model(tmp_path / "run" / "best.pt")
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_same_seed_same_run(tmp_path):
    a = train(tiny_config(epochs=1), out_dir=tmp_path / "a", quiet=True)
    b = train(tiny_config(epochs=1), out_dir=tmp_path / "b", quiet=True)
    sa, sb = (load_checkpoint(p / "last.pt")["state_dict"] for p in (a.out_dir, b.out_dir))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_continues_the_same_schedule_and_step_count(tmp_path, monkeypatch):
    config = tiny_config()
    straight = train(config, out_dir=tmp_path / "straight", quiet=True)

    stop_during_epoch_2(monkeypatch, tiny_config(), tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["training"]["epoch"] == 1
    resumed = train(tiny_config(), out_dir=tmp_path / "resumed", resume=tmp_path / "resumed" / "last.pt", quiet=True)

    a = load_checkpoint(straight.out_dir / "last.pt")
    b = load_checkpoint(resumed.out_dir / "last.pt")
    assert b["training"]["step"] == a["training"]["step"] == 57
    for key in a["state_dict"]:
        torch.testing.assert_close(b["state_dict"][key], a["state_dict"][key], atol=1e-6, rtol=0)
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert resumed.test_metrics == straight.test_metrics


def test_an_existing_run_is_not_overwritten(tmp_path):
    train(tiny_config(epochs=1), out_dir=tmp_path / "run", quiet=True)
    before = (tmp_path / "run" / "best.pt").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        train(tiny_config(epochs=1), out_dir=tmp_path / "run", quiet=True)
    assert (tmp_path / "run" / "best.pt").read_bytes() == before


def test_bf16_autocast_trains(tmp_path):
    dtypes = []

    def record(module, inputs, output):
        if isinstance(module, torch.nn.LSTM):
            dtypes.append(output[0].dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        result = train(tiny_config(bf16=True), out_dir=tmp_path / "bf16", quiet=True)
    finally:
        handle.remove()
    assert torch.bfloat16 in dtypes  # the recurrent layer really ran in bfloat16
    assert result.test_metrics["accuracy"] > 0.3


def test_uneven_batch_over_processes_is_refused(tmp_path):
    ctx = init_distributed("cpu")
    three = dataclasses.replace(ctx, world_size=3)  # a context as torchrun would give rank 0 of 3
    with pytest.raises(UserError, match="train.batch_size 64 must divide evenly over 3 processes"):
        Trainer(tiny_config(), out_dir=tmp_path / "run", ctx=three)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_datasets_that_redraw_per_epoch_are_told_the_epoch(tmp_path, monkeypatch):
    from rnnvision.data.binarized import BinarizedImages

    seen = []
    original = BinarizedImages.set_epoch

    def record(self, epoch):
        seen.append((self.info.name, epoch, len(self)))
        original(self, epoch)

    monkeypatch.setattr(BinarizedImages, "set_epoch", record)
    raw = {
        "model": {"name": "pixelrnn_row", "hidden": 4, "layers": 1, "out_hidden": 8},
        "data": {"name": "binarized-digits"},
        "train": {"epochs": 2, "batch_size": 128, "device": "cpu"},
    }
    train(config_from_dict(raw), out_dir=tmp_path / "run", quiet=True)
    assert seen == [("binarized-digits", 1, 1257), ("binarized-digits", 2, 1257)]  # the training split, every epoch


def test_weight_average_follows_its_warmed_up_decay():
    from rnnvision.engine.ema import WeightAverage

    model = torch.nn.BatchNorm1d(3)
    average = WeightAverage(model, decay=0.9)
    start = model.weight.detach().clone()
    expected = start.clone()
    for step, value in enumerate([2.0, -1.0, 5.0]):
        model.weight.data.fill_(value)
        model.num_batches_tracked.fill_(step + 7)
        average.update(step)
        d = min(0.9, (1 + step) / (10 + step))
        expected = d * expected + (1 - d) * value
    torch.testing.assert_close(average.module.weight, expected)
    assert int(average.module.num_batches_tracked) == 9  # integer buffers are copied, not averaged
    assert not average.module.weight.requires_grad and not average.module.training


def test_ema_weights_are_evaluated_saved_and_resumed(tmp_path, monkeypatch):
    straight = train(tiny_config(ema_decay=0.95), out_dir=tmp_path / "straight", quiet=True)
    last = load_checkpoint(tmp_path / "straight" / "last.pt")
    trained, averaged = last["state_dict"], last["training"]["ema_state_dict"]
    assert any(not torch.equal(trained[k], averaged[k]) for k in trained)  # the average is not the last weights
    one = train(tiny_config(epochs=1, ema_decay=0.95), out_dir=tmp_path / "one", quiet=True)  # best = last epoch
    one_best, one_last = (load_checkpoint(one.out_dir / name) for name in ("best.pt", "last.pt"))
    assert all(torch.equal(one_best["state_dict"][k], v) for k, v in one_last["training"]["ema_state_dict"].items())
    # best.pt holds the weights that were tested: evaluating it again gives the same figures
    assert evaluate_checkpoint(tmp_path / "straight" / "best.pt", batch_size=512) == straight.test_metrics

    stop_during_epoch_2(monkeypatch, tiny_config(ema_decay=0.95), tmp_path / "resumed")
    resumed = train(
        tiny_config(ema_decay=0.95), out_dir=tmp_path / "resumed", resume=tmp_path / "resumed" / "last.pt", quiet=True
    )
    again = load_checkpoint(tmp_path / "resumed" / "last.pt")["training"]["ema_state_dict"]
    for key in averaged:
        torch.testing.assert_close(again[key], averaged[key], atol=1e-6, rtol=0)
    assert resumed.test_metrics == straight.test_metrics


def test_ema_decay_outside_its_range_is_refused():
    with pytest.raises(UserError, match="ema_decay must lie in"):
        tiny_config(ema_decay=1.0)
