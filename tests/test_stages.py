"""Recipes trained in stages: the ``stages:`` list of a recipe, ``rnnvision train --stage``,
benchmarks/train_stages.py, and the stage a weights entry records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rnnvision.cli import main
from rnnvision.config import count_stages, load_config
from rnnvision.engine import load_checkpoint
from rnnvision.errors import UserError
from rnnvision.weights import catalogue
from rnnvision.weights.make import make_weights
from tests.serve.conftest import save_recipe_model

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "model": {"name": "row_lstm", "hidden_size": 8, "head_hidden": 8},
    "data": {"name": "digits"},
    "train": {"epochs": 1, "batch_size": 64, "lr": 0.01, "seed": 0, "device": "cpu"},
}


def write_recipe(folder: Path, stages: object, name: str = "tiny.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({**TINY, "stages": stages}))
    return path


def test_each_stage_is_the_recipe_with_its_own_overrides_then_the_users(tmp_path):
    recipe = write_recipe(tmp_path, [{"train.lr": 0.001, "model.dropout": 0.2}, {"train.epochs": 3}])
    assert count_stages(recipe) == 3
    first, second, third = (load_config(recipe, stage=k) for k in (1, 2, 3))
    assert (first.train.lr, first.train.epochs) == (0.01, 1)
    assert (second.train.lr, second.model["dropout"], second.train.epochs) == (0.001, 0.2, 1)
    assert (third.train.lr, third.train.epochs) == (0.01, 3)  # overrides of the recipe, not of stage 2
    assert "dropout" not in third.model
    assert load_config(recipe, ["train.lr=0.5"], stage=2).train.lr == 0.5  # --set comes last
    assert count_stages(ROOT / "configs" / "mnist_pixel_lstm.yaml") == 3
    shipped = load_config(ROOT / "configs" / "permuted_mnist_pixel_lru.yaml", stage=4)
    assert (shipped.train.epochs, shipped.train.lr, shipped.data["max_shift"]) == (10, 0.0005, 1)


@pytest.mark.parametrize(
    ("stages", "stage", "message"),
    [
        ([{"train.lr": 0.001}], 3, "has 2 stage(s); the stage must be 1 to 2, got 3"),
        ([{"train.lr": 0.001}], 0, "the stage must be 1 to 2, got 0"),
        ({"train.lr": 0.001}, 1, "stages must be a list of mappings"),
        ([{"lr": 0.001}], 1, "stage 2 key must be one of model.KEY, data.KEY, train.KEY; got 'lr'"),
        ([{}, {"train.lr": -1}], 1, "stage 3: train.lr must be a finite number"),  # a broken later stage, found early
        ([{"model.no_such_option": 1}], 2, "stage 2: unknown key model.no_such_option"),
    ],
)
def test_a_bad_stage_is_a_one_line_error_naming_it(tmp_path, stages, stage, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write_recipe(tmp_path, stages), stage=stage)


def test_train_stage_2_needs_the_run_it_continues(tmp_path, capsys):
    recipe = write_recipe(tmp_path, [{"train.lr": 0.001}])
    assert main(["train", str(recipe), "--stage", "2", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stage 2 of" in err and "--set train.init_from=RUN/best.pt" in err
    assert not (tmp_path / "run").exists()


def test_train_stages_runs_each_stage_from_the_one_before(tmp_path):
    recipe = write_recipe(tmp_path, [{"train.lr": 0.002}])
    out = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_stages.py"), str(recipe), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("$ rnnvision train") == 2 and "--stage 2" in done.stdout
    first, second = (load_checkpoint(out / f"stage{k}" / "best.pt")["config"]["train"] for k in (1, 2))
    assert first["init_from"] == "" and first["lr"] == 0.01
    assert second["init_from"] == str(out / "stage1" / "best.pt") and second["lr"] == 0.002

    again = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "train_stages.py"),
            str(recipe),
            "--out",
            str(out),
            "--from-stage",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 2 and "--from-stage must be 1 to 2" in again.stderr and "Traceback" not in again.stderr


def test_make_weights_records_the_stage(tmp_path, monkeypatch):
    recipe = write_recipe(tmp_path, [{"train.lr": 0.002}], name="digits_row_lstm.yaml")
    run = tmp_path / "run"
    save_recipe_model("digits_row_lstm.yaml", ["model.hidden_size=8", "model.head_hidden=8"], run / "best.pt")
    folder = tmp_path / "shipped"
    made = make_weights(recipe, run, folder=folder, stage=2)
    assert made.entry.stage == 2
    monkeypatch.setattr(catalogue, "FOLDER", folder)
    assert catalogue.get_weights("digits_row_lstm").stage == 2  # through catalogue.json
    with pytest.raises(UserError, match="the stage must be 1 to 2, got 3"):
        make_weights(recipe, run, folder=folder, stage=3)
