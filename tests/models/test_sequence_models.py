"""The long-range lab's models: every cell builds, reads causally, and chrono is for LSTM and GRU only."""

from __future__ import annotations

import math

import pytest
import torch

from rnnvision.errors import UserError
from rnnvision.layers.recurrent import GRU, LSTM
from rnnvision.models import create_model
from rnnvision.models.sequence import CELLS


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_regresses_from_the_last_step_and_tags_every_step(cell):
    torch.manual_seed(0)
    regressor = create_model("sequence_regressor", cell=cell, hidden_size=6, num_layers=2, seq_len=9)
    tagger = create_model("sequence_tagger", cell=cell, hidden_size=6, in_features=10, num_classes=9, seq_len=9)
    x = torch.rand(3, 9, 2, requires_grad=True)
    out = regressor(x)
    assert out.shape == (3, 1)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert grad[:, 0].abs().sum() > 0  # the answer depends on the first step
    assert tagger(torch.rand(3, 9, 10)).shape == (3, 9, 9)
    assert regressor.to_sequence(x) is x and torch.equal(regressor.forward_sequence(x), out)


@pytest.mark.parametrize("cell", CELLS)
def test_the_tagger_is_causal(cell):
    torch.manual_seed(0)
    tagger = create_model("sequence_tagger", cell=cell, hidden_size=6, in_features=4, num_classes=3, seq_len=8).eval()
    x = torch.rand(2, 8, 4)
    changed = x.clone()
    changed[:, 5:] = torch.rand(2, 3, 4)
    with torch.no_grad():
        a, b = tagger(x), tagger(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5])  # steps before the change do not see it
    assert not torch.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("cell, layer", [("lstm", LSTM), ("gru", GRU)])
def test_chrono_uses_the_sequence_length_as_t_max(cell, layer):
    torch.manual_seed(0)
    model = create_model("sequence_regressor", cell=cell, hidden_size=64, gate_init="chrono", seq_len=200)
    assert isinstance(model.rnn, layer) and model.rnn.chrono_max == 200
    keep = model.rnn.bias_ih_l0[64:128].detach()  # the forget (LSTM) / update (GRU) block
    assert float(keep.min()) >= 0 and float(keep.max()) <= math.log(199)
    assert float(keep.max()) > math.log(100)  # time scales up to T, not torch's U(-1/8, 1/8)


@pytest.mark.parametrize("cell", ["rnn", "mingru", "indrnn", "lru"])
def test_chrono_on_a_cell_without_gate_biases_is_one_line(cell):
    with pytest.raises(UserError) as info:
        create_model("sequence_regressor", cell=cell, gate_init="chrono")
    assert "\n" not in str(info.value) and "chrono" in str(info.value)


def test_an_unknown_cell_names_the_choices():
    with pytest.raises(UserError, match="unknown cell 'lsmt'; choose one of rnn, lstm, gru, mingru, indrnn, lru"):
        create_model("sequence_tagger", cell="lsmt")
