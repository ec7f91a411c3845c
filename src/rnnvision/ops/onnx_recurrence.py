"""A padded recurrent layer in an ONNX export: one ``LSTM``, ``GRU`` or ``RNN`` node per layer.

Traced as it runs, the padded path of :mod:`rnnvision.layers.recurrent` gives every direction of
every layer a node of its own, and every reverse direction two ``GatherElements`` that turn each
sequence round within its length (with the ``Expand``, ``Concat`` and mask ``Mul`` around them).
ONNX's recurrent operators do this themselves when given ``sequence_lens``: each sequence's reverse
direction starts at its own last step, and the steps past a sequence's length give zero outputs,
which is the layer's contract for ``lengths``. So under ``torch.onnx.export`` the padded path
records :class:`OnnxPaddedLayer` instead: both directions and the lengths in one node, its values
computed by the layer's own kernels. ``crnn``'s two bidirectional layers went from 61 nodes to 9
(BENCHMARKS.md, "crnn int8: the QDQ form and one node per recurrent layer").

ONNX lays out the weights by gate in its own order (LSTM ``i, o, f, c``; GRU ``z, r, h``) where
torch has ``i, f, g, o`` and ``r, z, n``; GRU needs ``linear_before_reset=1`` for torch's form, in
which the reset gate scales ``W_hn h + b_hn``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from rnnvision.ops.tracing import tracer_paused

# torch's gate blocks in the order ONNX lists them, per operator
ONNX_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}


def onnx_weights(weight: Tensor, op: str) -> Tensor:
    """(G*H, ...) weight or bias in torch's gate order -> the same rows in ONNX's."""
    blocks = weight.chunk(len(ONNX_GATE_ORDER[op]))
    return torch.cat([blocks[k] for k in ONNX_GATE_ORDER[op]])


class OnnxPaddedLayer(torch.autograd.Function):
    """One layer, both directions, as one ONNX recurrent node.

    ``apply(x, lengths, weight, recurrence, bias, initial_h, initial_c, run, op, attributes)``: x (B, T, I),
    lengths (B,); weight (D, G*H, I), recurrence (D, G*H, H) and bias (D, 2*G*H) in ONNX's layout
    (:func:`onnx_weights`), bias, initial_h and initial_c (D, B, H) optional (None); ``run()``
    computes the layer's output (B, T, D*H) in torch; ``op`` and ``attributes`` name the node.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        lengths: Tensor,
        weight: Tensor,
        recurrence: Tensor,
        bias: Tensor | None,
        initial_h: Tensor | None,
        initial_c: Tensor | None,
        run: Callable[[], Tensor],
        op: str,
        attributes: dict[str, Any],
    ) -> Tensor:
        with tracer_paused():  # the values only: what is exported is the symbolic's node
            return run()

    @staticmethod
    def symbolic(g, x, lengths, weight, recurrence, bias, initial_h, initial_c, run, op, attributes):  # type: ignore[no-untyped-def]  # torch.onnx's graph context
        def missing() -> Any:  # an optional input left out
            value = g.op("prim::Constant")
            value.setType(torch._C.OptionalType.ofTensor())
            return value

        inputs = [
            g.op("Transpose", x, perm_i=[1, 0, 2]),  # (T, B, I): ONNX's recurrences are time-major
            weight,
            recurrence,
            missing() if bias is None else bias,
            g.op("Cast", lengths, to_i=torch.onnx.TensorProtoDataType.INT32),
            missing() if initial_h is None else initial_h,
        ]
        if op == "LSTM":
            inputs.append(missing() if initial_c is None else initial_c)
        y = g.op(op, *inputs, outputs=3 if op == "LSTM" else 2, **attributes)[0]  # (T, D, B, H)
        y = g.op("Transpose", y, perm_i=[2, 0, 1, 3])  # (B, T, D, H)
        return g.op("Reshape", y, g.op("Constant", value_t=torch.tensor([0, 0, -1])))  # (B, T, D*H)
