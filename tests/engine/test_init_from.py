"""train.init_from: a run starts from another checkpoint's weights (pretrain, then fine-tune)."""

from __future__ import annotations

import pytest
import torch

from rnnvision.config import config_from_dict
from rnnvision.engine import load_checkpoint, train
from rnnvision.errors import UserError

BASE = {
    "model": {"name": "row_gru", "hidden_size": 16, "head_hidden": 8},
    "data": {"name": "digits"},
    "train": {"epochs": 1, "batch_size": 128, "lr": 0.01, "device": "cpu", "seed": 1},
}


def config(model=None, **train_options):
    raw = {k: dict(v) for k, v in BASE.items()}
    raw["model"].update(model or {})
    raw["train"].update(train_options)
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("init") / "pre"
    train(config(), out_dir=out, quiet=True)
    return out / "best.pt"


def test_init_from_starts_from_the_checkpoint_weights(pretrained, tmp_path):
    # lr 0 and no weight decay: the fine-tuned weights must stay exactly the pretrained ones
    result = train(config(init_from=str(pretrained), lr=0.0, weight_decay=0.0), out_dir=tmp_path / "ft", quiet=True)
    source = load_checkpoint(pretrained)["state_dict"]
    tuned = result.model.state_dict()
    assert all(torch.equal(source[k], tuned[k]) for k in source)
    saved = load_checkpoint(tmp_path / "ft" / "best.pt")
    assert saved["config"]["train"]["init_from"] == str(pretrained)


def test_init_from_keeps_fresh_tensors_whose_shapes_differ(pretrained, tmp_path, capsys):
    fresh = config(model={"head_hidden": 12}, init_from=str(pretrained), lr=0.0, weight_decay=0.0)
    result = train(fresh, out_dir=tmp_path / "ft", quiet=False)
    source = load_checkpoint(pretrained)["state_dict"]
    tuned = result.model.state_dict()
    assert torch.equal(tuned["rnn.weight_hh_l0"], source["rnn.weight_hh_l0"])  # the recurrent layer carried over
    assert tuned["head.0.weight"].shape != source["head.0.weight"].shape
    log = capsys.readouterr().err
    # rnn (4 tensors) and head.3.bias (10,) fit; head.0.{weight,bias} and head.3.weight do not
    assert (
        "initialised 5 of 8 tensors" in log and "freshly initialised: head.0.bias, head.0.weight, head.3.weight" in log
    )


def test_init_from_refuses_a_checkpoint_with_nothing_that_fits(pretrained, tmp_path):
    raw = {
        **BASE,
        "model": {"name": "pixel_lstm", "hidden_size": 5},
        "train": {**BASE["train"], "init_from": str(pretrained)},
    }
    with pytest.raises(UserError, match="no tensor of"):
        train(config_from_dict(raw), out_dir=tmp_path / "x", quiet=True)
