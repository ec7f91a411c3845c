"""Config: defaults, YAML, --set overrides, strict keys and types, the shipped recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnvision.config import TrainConfig, config_from_dict, load_config
from rnnvision.data import build_dataset
from rnnvision.demo import demo_config
from rnnvision.engine.trainer import resolve_model_kwargs
from rnnvision.errors import UserError
from rnnvision.models import create_model, get_model_entry, list_models
from rnnvision.models.classifier import ReaderOptions
from rnnvision.options import shared_options

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
        [
            "train.lr=1e-3",
            "model.hidden_size=64",
            "data.name=fashion-mnist",
            "model.img_size=[28, 28]",
            "train.bf16=true",
        ],
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


CLASSIFIERS = ["row_rnn", "row_gru", "row_lstm", "row_bilstm", "pixel_lstm", "pixel_gru"]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_shared_classifier_options_are_checked_and_filled_like_a_builders_own(name):
    options = get_model_entry(name).options()
    assert shared_options(ReaderOptions).items() <= options.items()  # same annotation and default
    data = {"name": "digits"}
    with pytest.raises(UserError, match="^config: unknown key model.hiden_size; model keys are .*hidden_size"):
        config_from_dict({"model": {"name": name, "hiden_size": 8}, "data": data})
    with pytest.raises(UserError, match="^model.hidden_size must be int, got 'big'"):
        config_from_dict({"model": {"name": name, "hidden_size": "big"}, "data": data})
    with pytest.raises(UserError, match=r"^model.img_size must be int \| tuple\[int, int\], got \[8, 'x'\]"):
        config_from_dict({"model": {"name": name, "img_size": [8, "x"]}, "data": data})
    config = config_from_dict({"model": {"name": name, "hidden_size": 8, "img_size": [8, 6]}, "data": data})
    assert config.model == {"name": name, "hidden_size": 8, "img_size": (8, 6)}
    kwargs = resolve_model_kwargs(config.model, build_dataset("digits", split="test").info)
    assert kwargs["impl"] == "auto" and kwargs["in_chans"] == 1 and kwargs["num_classes"] == 10
    model = create_model(name, **{k: v for k, v in kwargs.items() if k != "name"})
    assert model.rnn.hidden_size == 8 and model.img_size == (8, 6)
    default = create_model(name)  # the shared options' defaults when none is given
    assert (default.rnn.hidden_size, default.img_size, default.num_classes, default.in_chans) == (128, (28, 28), 10, 1)


RENAMED = [name for name in list_models() if get_model_entry(name).renamed]


def test_renamed_options_are_listed_for_the_models_that_had_them():
    assert set(RENAMED) == {
        "pixelrnn_row",
        "pixelrnn_diag",
        "pixelcnn",
        "crnn",
        "crnn_gru",
        "pixel_mingru",
        "pixel_minlstm",
        "cross_mingru",
        "pixel_lru",
    }


@pytest.mark.parametrize("name", RENAMED)
def test_old_option_names_still_configure_and_build_the_same_model(name):
    entry = get_model_entry(name)
    options = entry.options()
    assert set(entry.renamed.values()) <= set(options) and not set(entry.renamed) & set(options)
    new = {"name": name, **entry.tiny}
    old_names = {new_name: old_name for old_name, new_name in entry.renamed.items() if new_name in entry.tiny}
    old = {old_names.get(key, key): value for key, value in new.items()}
    assert old != new
    data = {"name": {"generate": "binarized-mnist", "recognize": "digit-strings"}.get(entry.task, "digits")}
    assert config_from_dict({"model": old, "data": data}).model == config_from_dict({"model": new, "data": data}).model
    torch.manual_seed(0)
    built_old = create_model(name, **{k: v for k, v in old.items() if k != "name"}).state_dict()
    torch.manual_seed(0)
    built_new = create_model(name, **{k: v for k, v in new.items() if k != "name"}).state_dict()
    assert built_old.keys() == built_new.keys() and all(torch.equal(built_old[k], built_new[k]) for k in built_old)
    old_name, new_name = next(iter(old_names.items()))[::-1]
    with pytest.raises(UserError, match=f"^model '{name}': {old_name} is the old name of {new_name}; give only"):
        config_from_dict({"model": {**new, old_name: new[new_name]}, "data": data})


def test_set_with_an_old_name_replaces_the_option_the_file_gives_under_its_new_name(tmp_path):
    path = tmp_path / "gen.yaml"
    path.write_text(
        "model:\n  name: pixelrnn_row\n  hidden_size: 16\n  num_layers: 3\ndata:\n  name: binarized-mnist\n"
    )
    assert load_config(path, ["model.hidden=4", "model.num_layers=2"]).model["hidden_size"] == 4
    path.write_text("model:\n  name: pixelrnn_row\n  hidden: 16\ndata:\n  name: binarized-mnist\n")
    assert load_config(path, ["model.hidden_size=8"]).model["hidden_size"] == 8
