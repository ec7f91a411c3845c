"""int8 dynamic quantization of the recurrent and linear weights of an exported model.

Dynamic quantization stores weights as int8 and quantizes activations on the fly per call, so it
needs no calibration data. ONNX: onnxruntime's ``quantize_dynamic`` on the ``MatMul`` (linear
layers on sequences) and ``LSTM`` nodes; onnxruntime has no int8 ``GRU``/``RNN`` kernel and
leaves those, the convolutions and the ``Gemm`` of 2-D linear heads in float32. TorchScript:
``torch.ao`` dynamic quantization of the ``nn.Linear`` layers before tracing (the recurrent
layers here call torch's float kernels directly, which ``torch.ao`` cannot swap).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from rnnvision.files import atomic_path

ONNX_QUANTIZED_OPS = ("MatMul", "LSTM")


def quantize_onnx(source: Path, out: Path, *, metadata: dict[str, str]) -> Path:
    """Write an int8 dynamically quantized copy of the ONNX file ``source`` to ``out``, with ``metadata``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from rnnvision.export.onnx import set_metadata

    with atomic_path(out) as tmp:
        quantize_dynamic(str(source), str(tmp), op_types_to_quantize=list(ONNX_QUANTIZED_OPS), weight_type=QuantType.QInt8)
        graph = onnx.load(str(tmp))
        set_metadata(graph, metadata)
        onnx.save(graph, str(tmp))
    return out


def quantize_linear_layers(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers are int8 dynamically quantized (torch.ao)."""
    return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=False)
