"""int8 quantization of an exported model's weights: dynamic, plus the convolutions static when calibrated.

Dynamic quantization stores weights as int8 and quantizes activations on the fly per call, so it
needs no calibration data. ONNX: onnxruntime's ``quantize_dynamic`` on the ``MatMul`` (linear
layers on sequences, and the recurrent product inside an MDLSTM layer's ``Scan`` body) and ``LSTM``
nodes; onnxruntime has no int8 ``GRU``/``RNN`` kernel and leaves those and the ``Gemm`` of 2-D
linear heads in float32. Its dynamic convolution (``ConvInteger``) measured 2.5x slower than the
float ``Conv`` at batch 1 (BENCHMARKS.md), so convolutions are quantized only when calibration
inputs are given: then statically, before the dynamic pass, with per-channel int8 weights and uint8
activations whose ranges are the calibration inputs' min/max. The static pass writes the QDQ form
(``QuantizeLinear``/``DequantizeLinear`` pairs around float operators, which onnxruntime fuses into
``QLinearConv`` when it loads the file) and also covers the ``Relu``, ``MaxPool`` and ``Mul`` (a
padding mask) that follow a convolution: the ``Relu`` is folded into the convolution's output
range, the mask and the pooling run on uint8, so a CNN stays in 8 bits from one convolution to the
next (BENCHMARKS.md, "crnn int8: the QDQ form and one node per recurrent layer").

TorchScript: ``torch.ao`` dynamic quantization of the ``nn.Linear`` layers before tracing (the
recurrent layers here call torch's float kernels directly, which ``torch.ao`` cannot swap).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnvision.files import atomic_path

ONNX_QUANTIZED_OPS = ("MatMul", "LSTM")
ONNX_CALIBRATED_OPS = ("Conv",)  # the operators that make a model worth calibrating
ONNX_CHAINED_OPS = ("Relu", "MaxPool", "Mul")  # kept in 8 bits where they follow a convolution (a Mul: a mask)
Calibration = Sequence[dict[str, Tensor]]  # batches of the exported graph's inputs, by input name


def quantize_onnx(source: Path, out: Path, *, metadata: dict[str, str], calibration: Calibration | None = None) -> Path:
    """Write an int8 quantized copy of the ONNX file ``source`` to ``out``, with ``metadata``.

    With ``calibration`` (input batches, typically a few dozen training images) the convolutions
    are quantized statically first; the recurrent and linear weights are always quantized dynamically.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    from rnnvision.export.onnx import set_metadata

    with atomic_path(out) as tmp, tempfile.TemporaryDirectory() as work, _quantizer_advice_silenced():
        current = str(source)
        model = onnx.load(current)
        if calibration and _convolutions(model.graph):
            _read_weights_directly(model.graph)
            onnx.save(model, str(Path(work) / "float.onnx"))
            current = str(Path(work) / "convolutions.onnx")
            quantize_static(
                str(Path(work) / "float.onnx"),
                current,
                _Feeds(calibration),
                op_types_to_quantize=list(ONNX_CALIBRATED_OPS + ONNX_CHAINED_OPS),
                nodes_to_quantize=_convolution_chains(model.graph),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        quantize_dynamic(
            current,
            str(tmp),
            op_types_to_quantize=list(ONNX_QUANTIZED_OPS),
            weight_type=QuantType.QInt8,
            extra_options={"EnableSubgraph": True},
        )
        graph = onnx.load(str(tmp))
        set_metadata(graph, metadata)
        onnx.save(graph, str(tmp))
    return out


@contextmanager
def _quantizer_advice_silenced() -> Iterator[None]:
    """Keep onnxruntime's quantizer from logging its advice to the user's terminal ("run
    pre-processing before quantization", and "is the model already quantized?" when the dynamic pass
    reads the static pass's output): neither applies to the graphs exported here."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def float_convolutions(path: Path) -> int:
    """How many float ``Conv`` nodes the ONNX file at ``path`` holds (those a dynamic int8 export leaves)."""
    import onnx

    return _convolutions(onnx.load(str(path)).graph)


def _convolutions(graph: Any) -> int:
    """How many nodes of ``graph`` calibration would quantize statically (its ``Conv`` nodes)."""
    return sum(node.op_type in ONNX_CALIBRATED_OPS for node in graph.node)


def _convolution_chains(graph: Any) -> list[str]:
    """Names of the convolutions and of the nodes that follow each in a chain of ``ONNX_CHAINED_OPS``
    (each the only reader of the one before), which the static pass keeps in 8 bits together. A
    ``Relu`` or ``Mul`` elsewhere, such as a gate's product, stays float."""
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    chosen = []
    for node in graph.node:
        if node.op_type not in ONNX_CALIBRATED_OPS:
            continue
        chosen.append(node.name)
        after = readers.get(node.output[0], [])
        while len(after) == 1 and after[0].op_type in ONNX_CHAINED_OPS:
            chosen.append(after[0].name)
            after = readers.get(after[0].output[0], [])
    return chosen


def _read_weights_directly(graph: Any) -> None:
    """Let nodes read an initializer that the exporter passed through ``Identity`` (it shares equal
    tensors, such as two zero biases, that way) directly: the static quantizer wants weights as initializers."""
    initializers = {t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    alias = {
        n.output[0]: n.input[0]
        for n in graph.node
        if n.op_type == "Identity" and n.input[0] in initializers and n.output[0] not in outputs
    }
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in alias:
                node.input[k] = alias[name]


class _Feeds:
    """The calibration batches as onnxruntime's ``CalibrationDataReader`` reads them (``get_next``)."""

    def __init__(self, batches: Calibration) -> None:
        self._batches: Iterator[dict[str, Tensor]] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {name: value.detach().cpu().numpy() for name, value in batch.items()}


def quantize_linear_layers(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers are int8 dynamically quantized (torch.ao)."""
    with warnings.catch_warnings():  # torch's notice that its quantized tensors are deprecated (docs/deploy.md says so)
        warnings.filterwarnings("ignore", message="torch.quantize_per_tensor", category=UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=False)
