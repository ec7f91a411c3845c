"""Which nodes the calibrated static pass keeps in 8 bits."""

from __future__ import annotations

import pytest

from rnnvision.export.quantize import _convolution_chains

onnx = pytest.importorskip("onnx")


def node(op: str, inputs: list[str], output: str):
    return onnx.helper.make_node(op, inputs, [output], name=output)


def test_a_chain_runs_from_each_convolution_through_relu_mask_and_pooling_to_the_first_other_reader():
    graph = onnx.helper.make_graph(
        [
            node("Conv", ["x", "w"], "conv1"),
            node("Relu", ["conv1"], "relu1"),
            node("Mul", ["relu1", "mask"], "mask1"),
            node("MaxPool", ["mask1"], "pool1"),
            node("Conv", ["pool1", "w"], "conv2"),
            node("Tanh", ["conv2"], "tanh2"),  # not one of the chained operators: the chain stops
            node("Relu", ["tanh2"], "relu3"),  # a Relu that follows no convolution stays float
            node("Conv", ["relu3", "w"], "conv4"),
            node("Relu", ["conv4"], "relu4"),
            node("Mul", ["conv4", "relu4"], "gate4"),  # conv4 has two readers: its chain is conv4 alone
        ],
        "g",
        [],
        [],
    )
    assert _convolution_chains(graph) == ["conv1", "relu1", "mask1", "pool1", "conv2", "conv4"]
