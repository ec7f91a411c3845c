"""Config: defaults, YAML, --set overrides, strict keys and types, the shipped recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnvision.config import TrainConfig, config_from_dict, load_config
from rnnvision.demo import demo_config
from rnnvision.errors import UserError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_is_valid(path):
    config = load_config(path)
    assert config.task and config.model["name"] and config.data["name"]


def test_demo_trains_exactly_the_digits_recipe():
    assert load_config(CONFIGS / "digits_row_lstm.yaml").to_dict() == demo_config().to_dict()


def test_overrides_are_typed_and_applied(tmp_path):
    config = load_config(
        CONFIGS / "mnist_row_lstm.yaml",
        ["train.lr=1e-3", "model.hidden_size=64", "data.name=fashion-mnist", "model.img_size=[28, 28]", "train.bf16=true"],
    )
    assert config.train.lr == 1e-3 and config.model["hidden_size"] == 64 and config.train.bf16 is True
    assert config.data["name"] == "fashion-mnist" and config.model["img_size"] == (28, 28)
    assert config.train.epochs == 20 and config.train.weight_decay == TrainConfig().weight_decay


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.lr=fast", "train.lr must be float, got 'fast'"),
        ("model.hidden_size=1.5", "model.hidden_size must be int"),
        ("train.bf16=2", "train.bf16 must be bool"),
        ("model.hiden_size=3", "unknown key model.hiden_size"),
        ("train.epoch=3", "unknown key train.epoch"),
        ("data.name=imagenet", "unknown dataset 'imagenet'"),
        ("model.name=resnet", "unknown model 'resnet'"),
        ("optim.lr=3", "--set key must be one of"),
        ("train.lr", "--set takes key=value"),
    ],
)
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config(CONFIGS / "mnist_row_lstm.yaml", [override])


def test_bad_files_give_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "broken.yaml").write_text("model: {name: row_lstm\n")
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_config(tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="must be a YAML mapping"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(UserError, match="unknown section optimizer"):
        config_from_dict({"model": {"name": "row_lstm"}, "data": {"name": "digits"}, "optimizer": {}})
    with pytest.raises(UserError, match="data.name is required"):
        config_from_dict({"model": {"name": "row_lstm"}})
