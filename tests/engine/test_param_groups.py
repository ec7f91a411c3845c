"""AdamW decays weight matrices and kernels, never biases or normalisation parameters (by role, not shape)."""

from __future__ import annotations

import torch
from torch import nn

from rnnvision.engine.trainer import _param_groups
from rnnvision.layers import MDLSTM2d


def _names(model: nn.Module, group: dict) -> set[str]:
    ids = {id(p) for p in group["params"]}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def test_biases_and_norms_are_not_decayed_whatever_their_shape():
    model = nn.Sequential(MDLSTM2d(3, 4, directions=2), nn.Flatten(), nn.LayerNorm(8), nn.Linear(8, 5))
    decay, no_decay = _param_groups(model, 0.1)
    assert model[0].bias.ndim == 2  # (D, 5H): a bias with two dimensions, decayed by an ndim rule
    assert _names(model, decay) == {"0.weight_ih", "0.weight_hh", "3.weight"}
    assert _names(model, no_decay) == {"0.bias", "2.weight", "2.bias", "3.bias"}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0


def test_every_trainable_parameter_is_in_exactly_one_group_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.BatchNorm1d(4), nn.LSTM(4, 3))
    model[3].weight.requires_grad_(False)
    groups = _param_groups(model, 0.01)
    listed = [id(p) for g in groups for p in g["params"]]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert len(listed) == len(set(listed)) and set(listed) == trainable
    assert _names(model, groups[0]) == {"0.weight", "4.weight_ih_l0", "4.weight_hh_l0"}
    torch.optim.AdamW(groups, lr=1e-3)  # a valid optimizer configuration
