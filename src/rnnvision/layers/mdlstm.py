"""``MDLSTM2d``: a multi-directional 2D LSTM layer over images (Graves et al. 2007; Byeon et al. 2015).

Every pixel's LSTM state depends on its input and on the states of its horizontal and vertical
predecessors, with one forget gate per predecessor; 1 to 4 scan directions, one per corner,
each with its own weights; their hidden states are summed or concatenated. The equations and
both implementations live in :mod:`rnnvision.ops.mdlstm`.

- ``impl="wavefront"``: one anti-diagonal per step, all directions batched (the fast path).
- ``impl="reference"``: the plain per-pixel loop (the specification).
- ``impl="auto"`` (default): the wavefront, which serves every input.

While traced for export (ONNX, TorchScript) the layer runs ``mdlstm2d_skewed``, the same function
as one scripted loop whose length follows the image size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnvision.impl import MDLSTMImpl, check_impl
from rnnvision.ops.mdlstm import CORNERS, mdlstm2d_reference, mdlstm2d_skewed, mdlstm2d_wavefront

MERGES = ("sum", "concat")


class MDLSTM2d(nn.Module):
    """2D LSTM scanning an image from ``directions`` corners: (B, C, H, W) -> (B, out_chans, H, W).

    Args:
        in_chans: C, channels of the input.
        hidden_size: H, units per direction.
        directions: how many corners to scan from, in the order top-left, bottom-right,
            top-right, bottom-left (two directions scan from opposite corners).
        merge: ``"sum"`` (out_chans = H) or ``"concat"`` (out_chans = directions * H, corner
            order as above).
        impl: ``"auto"``, ``"wavefront"`` or ``"reference"``.

    Parameters (see :mod:`rnnvision.ops.mdlstm`): ``weight_ih`` (D, 5H, C), ``weight_hh``
    (D, 5H, 2H), ``bias`` (D, 5H), gate blocks [input, forget_h, forget_v, output, cell].
    """

    def __init__(
        self, in_chans: int, hidden_size: int, *, directions: int = 4, merge: str = "sum", impl: MDLSTMImpl = "auto"
    ) -> None:
        super().__init__()
        if not 1 <= directions <= len(CORNERS):
            raise ValueError(f"directions must be 1 to {len(CORNERS)}, got {directions}")
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
        check_impl(impl, MDLSTMImpl)
        self.in_chans, self.hidden_size, self.merge, self.impl = in_chans, hidden_size, merge, impl
        self.corners = tuple(CORNERS)[:directions]
        self.weight_ih = nn.Parameter(torch.empty(directions, 5 * hidden_size, in_chans))
        self.weight_hh = nn.Parameter(torch.empty(directions, 5 * hidden_size, 2 * hidden_size))
        self.bias = nn.Parameter(torch.empty(directions, 5 * hidden_size))
        self.out_chans = hidden_size * (directions if merge == "concat" else 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)), as torch.nn's LSTM."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward_directions(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (D, B, hidden, H, W): every direction's hidden states, unmerged."""
        if x.dim() != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"MDLSTM2d expects input (batch, {self.in_chans}, height, width), got {tuple(x.shape)}")
        kernel = mdlstm2d_reference if self.impl == "reference" else mdlstm2d_wavefront
        if torch.jit.is_tracing():  # export: the skewed scan's loop follows the image size, the wavefront's does not
            kernel = mdlstm2d_skewed
        return kernel(x, self.weight_ih, self.weight_hh, self.bias, corners=self.corners)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, out_chans, H, W)."""
        states = self.forward_directions(x)  # (D, B, hidden, H, W)
        if self.merge == "sum":
            return states.sum(dim=0)
        d, b, hidden, height, width = states.shape
        return states.transpose(0, 1).reshape(b, d * hidden, height, width)  # (B, D*hidden, H, W)

    def extra_repr(self) -> str:
        return f"{self.in_chans}, {self.hidden_size}, directions={len(self.corners)}, merge={self.merge!r}, impl={self.impl!r}"
