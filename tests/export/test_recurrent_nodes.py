"""A padded recurrent layer exports as one ONNX node per layer that takes the lengths itself, and
onnxruntime's result equals the reference loop's on batches of other sizes and lengths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnvision.export.onnx import OPSET
from rnnvision.layers import GRU, LSTM, RNN
from tests.conftest import assert_close_scaled
from tests.export.graphs import all_ops

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


class Padded(nn.Module):
    """The layer on a right-padded batch, with an initial state when ``with_state``."""

    def __init__(self, layer: nn.Module, with_state: bool) -> None:
        super().__init__()
        self.layer, self.with_state = layer, with_state

    def forward(self, x, lengths, h0, c0):
        state = None
        if self.with_state:
            state = (h0, c0) if isinstance(self.layer, LSTM) else h0
        return self.layer(x, state, lengths=lengths, final_state=False)[0]


CASES = [
    ("lstm", {}, 2, True, False),
    ("lstm", {"bias": False}, 1, False, True),
    ("gru", {}, 2, True, True),
    ("gru", {}, 1, False, False),
    ("rnn", {"nonlinearity": "tanh"}, 2, True, True),
    ("rnn", {"nonlinearity": "relu"}, 1, True, False),
]


@pytest.mark.parametrize("cell,options,num_layers,bidirectional,with_state", CASES)
def test_exported_padded_layer_is_one_node_per_layer_and_matches_the_reference(
    cell, options, num_layers, bidirectional, with_state, tmp_path
):
    torch.manual_seed(0)
    layer = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[cell](5, 6, num_layers, bidirectional=bidirectional, **options)
    model = Padded(layer.eval(), with_state)
    states = num_layers * (2 if bidirectional else 1)

    def inputs(batch: int, steps: int, lengths: list[int]):
        x = torch.randn(batch, steps, 5)
        return x, torch.tensor(lengths), torch.randn(states, batch, 6), torch.randn(states, batch, 6)

    path = tmp_path / "layer.onnx"
    names = ["x", "lengths", "h0", "c0"]
    with torch.no_grad():  # as rnnvision's export runs it
        torch.onnx.export(
            model,
            inputs(2, 4, [4, 2]),
            str(path),
            input_names=names,
            output_names=["y"],
            dynamic_axes={
                "x": {0: "b", 1: "t"},
                "lengths": {0: "b"},
                "h0": {1: "b"},
                "c0": {1: "b"},
                "y": {0: "b", 1: "t"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    ops = all_ops(onnx.load(str(path)).graph)
    assert ops.count(cell.upper()) == num_layers and "GatherElements" not in ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = [n.name for n in session.get_inputs()]  # an unused initial state is not a graph input
    for batch, steps, lengths in ((1, 4, [4]), (4, 7, [3, 7, 1, 5])):  # other sizes, unsorted lengths
        x, lengths, h0, c0 = inputs(batch, steps, lengths)
        values = dict(zip(names, (x, lengths, h0, c0)))
        (ours,) = session.run(None, {n: values[n].numpy() for n in feeds})
        layer.impl = "reference"
        with torch.no_grad():
            reference = model(x, lengths, h0, c0)
        layer.impl = "auto"
        assert_close_scaled(torch.from_numpy(ours), reference, atol=1e-5)
        if batch == 4:  # the third sequence has length 1: zeros past it
            assert (torch.from_numpy(ours)[2, 1:] == 0).all()
