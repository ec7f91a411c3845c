"""Multi-directional 2D LSTM: the per-pixel reference loop (the spec) and the wavefront kernel.

A 2D LSTM (Graves, Fernández & Schmidhuber 2007, "Multi-dimensional recurrent neural networks";
the scene-labelling form of Byeon, Breuel, Raue & Liwicki 2015, "Scene labeling with LSTM
recurrent neural networks") scans an image from one corner. For the scan from the top-left
corner, pixel (i, j) sees its input x_ij and the states of its horizontal predecessor
(i, j-1) and its vertical predecessor (i-1, j) — zero outside the image — with one forget gate
per predecessor::

    a = W x_ij + b + U_h h_{i,j-1} + U_v h_{i-1,j}            five blocks of H: [i, f_h, f_v, o, g]
    i, f_h, f_v, o = σ(a_i), σ(a_fh), σ(a_fv), σ(a_o)         input, two forget, output gates
    g = tanh(a_g)                                            candidate
    c_ij = f_h ⊙ c_{i,j-1} + f_v ⊙ c_{i-1,j} + i ⊙ g
    h_ij = o ⊙ tanh(c_ij)

Each further direction scans from another corner with its own weights: the predecessors of
(i, j) are then (i, j ∓ 1) and (i ∓ 1, j), pointing back towards that corner.

Parameters, for D directions, C input channels and H hidden units:

- ``weight_ih`` (D, 5H, C) — W, gate blocks [i, f_h, f_v, o, g] along dim 1;
- ``weight_hh`` (D, 5H, 2H) — [U_h | U_v]: columns [:H] act on the horizontal predecessor's h,
  columns [H:] on the vertical one's;
- ``bias`` (D, 5H).

Two implementations with the same inputs and outputs, (B, C, Hi, Wi) -> (D, B, H, Hi, Wi):

- :func:`mdlstm2d_reference` loops over the pixels one at a time in each direction's scan
  order; it is the specification.
- :func:`mdlstm2d_wavefront` uses that all pixels of one anti-diagonal (r + s = k in the scan's
  own frame) depend only on the previous anti-diagonal, so it computes a whole diagonal per
  step: Hi + Wi - 1 sequential steps instead of Hi * Wi. All directions are folded into one
  batched matrix product per step (each direction is the image mirrored so that its corner is
  the top-left one), and pixels move between image order and diagonal order through
  precomputed index tensors, so no Python work is done per pixel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from rnnvision.ops.tracing import tracer_paused

# The four scan directions, named by their starting corner: (mirror rows, mirror columns).
CORNERS: dict[str, tuple[bool, bool]] = {
    "top-left": (False, False),
    "bottom-right": (True, True),
    "top-right": (False, True),
    "bottom-left": (True, False),
}


def mdlstm_step(
    x: Tensor, h_h: Tensor, c_h: Tensor, h_v: Tensor, c_v: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor
) -> tuple[Tensor, Tensor]:
    """One pixel of one direction: the equations of the module docstring.

    Shapes: x (B, C); h_h, c_h, h_v, c_v (B, H); weight_ih (5H, C); weight_hh (5H, 2H); bias (5H,).
    Returns (h, c), each (B, H).
    """
    hidden = h_h.shape[1]
    a = F.linear(x, weight_ih, bias) + F.linear(h_h, weight_hh[:, :hidden]) + F.linear(h_v, weight_hh[:, hidden:])
    i, f_h, f_v, o, g = a.chunk(5, dim=1)  # each (B, H)
    i, f_h, f_v, o, g = torch.sigmoid(i), torch.sigmoid(f_h), torch.sigmoid(f_v), torch.sigmoid(o), torch.tanh(g)
    c = f_h * c_h + f_v * c_v + i * g
    return o * torch.tanh(c), c


def mdlstm2d_reference(
    x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor, *, corners: tuple[str, ...]
) -> Tensor:
    """The plain per-pixel loop, in float32 or wider: the specification of :func:`mdlstm2d_wavefront`.

    Args:
        x: (B, C, Hi, Wi) input.
        weight_ih, weight_hh, bias: (D, 5H, C), (D, 5H, 2H), (D, 5H); see the module docstring.
        corners: D names from :data:`CORNERS`, one per direction.

    Returns:
        (D, B, H, Hi, Wi): the hidden state of every pixel in every direction.
    """
    dtype = torch.promote_types(x.dtype, torch.float32)  # half types are upcast; float64 stays float64
    x, weight_ih, weight_hh, bias = (t.to(dtype) for t in (x, weight_ih, weight_hh, bias))
    batch, _, height, width = x.shape
    zero = x.new_zeros(batch, weight_hh.shape[-1] // 2)
    per_direction = []
    for d, corner in enumerate(corners):
        flip_rows, flip_cols = CORNERS[corner]
        step_v, step_h = (
            (-1 if flip_rows else 1),
            (-1 if flip_cols else 1),
        )  # predecessors: (i - step_v, j), (i, j - step_h)
        rows = range(height - 1, -1, -1) if flip_rows else range(height)
        cols = range(width - 1, -1, -1) if flip_cols else range(width)
        h: dict[tuple[int, int], Tensor] = {}
        c: dict[tuple[int, int], Tensor] = {}
        for i in rows:
            for j in cols:
                before_h, before_v = (i, j - step_h), (i - step_v, j)  # outside the image: never in h, so zero
                h[i, j], c[i, j] = mdlstm_step(
                    x[:, :, i, j],
                    h.get(before_h, zero),
                    c.get(before_h, zero),
                    h.get(before_v, zero),
                    c.get(before_v, zero),
                    weight_ih[d],
                    weight_hh[d],
                    bias[d],
                )
        image = [torch.stack([h[i, j] for j in range(width)], dim=-1) for i in range(height)]  # each (B, H, Wi)
        per_direction.append(torch.stack(image, dim=-2))  # (B, H, Hi, Wi)
    return torch.stack(per_direction)  # (D, B, H, Hi, Wi)


@dataclass(frozen=True)
class WavefrontPlan:
    """Index tensors and diagonal bounds of one image size and set of directions.

    ``gather`` (D*Hi*Wi,): for the t-th pixel of direction d in scan order (diagonal by diagonal,
    rows ascending within a diagonal, in that direction's mirrored frame), the raster index of
    that pixel in the original image, at position d*Hi*Wi + t. ``scatter`` (D*Hi*Wi,) is its
    inverse: at d*Hi*Wi + p, the flat scan position of raster pixel p of direction d.
    ``steps`` holds, per diagonal k in order, (n, left, up): the diagonal has n pixels (rows
    lo..lo+n-1, the next n scan positions); ``left`` and ``up`` are where its
    horizontal and vertical predecessors start in the previous diagonal padded by one zero row
    on each side.
    """

    gather: Tensor
    scatter: Tensor
    steps: tuple[tuple[int, int, int], ...]


@functools.lru_cache(maxsize=64)
def wavefront_plan(height: int, width: int, corners: tuple[str, ...], device: torch.device) -> WavefrontPlan:
    """Build (and cache) the :class:`WavefrontPlan` for (height, width) and ``corners``."""
    grid_r, grid_s = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    r, s = grid_r.reshape(-1), grid_s.reshape(-1)  # scan-frame coordinates of raster positions
    order = np.lexsort((r, r + s))  # scan order: by diagonal r + s, then by row
    pixels = height * width
    gather, scatter = [], []
    for d, corner in enumerate(corners):
        flip_rows, flip_cols = CORNERS[corner]
        i = height - 1 - r if flip_rows else r
        j = width - 1 - s if flip_cols else s
        raster = (i * width + j)[order]  # (Hi*Wi,) raster index of the t-th scanned pixel
        inverse = np.empty(pixels, dtype=np.int64)
        inverse[raster] = np.arange(pixels)
        gather.append(raster)
        scatter.append(inverse + d * pixels)
    steps, lo_prev = [], 0
    for k in range(height + width - 1):
        lo, hi = max(0, k - width + 1), min(k, height - 1)
        # the previous diagonal, padded, starts at row lo_prev - 1; (i, j-1) lies in its row i, (i-1, j) in row i-1
        steps.append((hi - lo + 1, lo - lo_prev + 1, lo - lo_prev))
        lo_prev = lo
    as_tensor = functools.partial(torch.as_tensor, dtype=torch.long, device=device)
    return WavefrontPlan(as_tensor(np.concatenate(gather)), as_tensor(np.concatenate(scatter)), tuple(steps))


def mdlstm2d_wavefront(
    x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor, *, corners: tuple[str, ...]
) -> Tensor:
    """All directions, one anti-diagonal per step; same arguments and result as :func:`mdlstm2d_reference`.

    Per step, one batched product over the directions computes every gate of the diagonal from
    the concatenation [x, h_h, h_v] (K = C + 2H): folding the input term into the recurrent
    product measured faster on CPU than projecting all pixels first, which writes and rereads a
    (D, P*B, 5H) tensor. The candidate uses tanh(z) = 2σ(2z) - 1 with the factor 2 folded into
    its weight rows, so one sigmoid covers all five gate blocks (torch's CPU tanh costs several
    sigmoids), and likewise tanh(c) = 2σ(2c) - 1.
    """
    batch, chans, height, width = x.shape
    dirs, hidden = len(corners), weight_hh.shape[-1] // 2
    plan = wavefront_plan(int(height), int(width), tuple(corners), x.device)  # int(): sizes are tensors when traced
    scale = torch.ones(5 * hidden, dtype=weight_ih.dtype, device=weight_ih.device)
    scale[4 * hidden :] = 2.0  # doubles the candidate's pre-activation
    weight = (torch.cat([weight_ih, weight_hh], dim=2) * scale[:, None]).transpose(1, 2)  # (D, C+2H, 5H)
    bias = (bias * scale).unsqueeze(1)  # (D, 1, 5H)

    pixels = x.permute(2, 3, 0, 1).reshape(height * width, batch, chans)  # (P, B, C), raster order
    scanned = pixels.index_select(0, plan.gather).view(dirs, height * width, batch, chans)  # (D, P, B, C), scan order
    # one view per diagonal: split, unlike slicing, gives the backward pass one concatenation, not one
    # zero-filled (D, P, B, C) gradient per step
    x_steps = scanned.split([n for n, _, _ in plan.steps], dim=1)  # each (D, n, B, C)
    h_pad = x.new_zeros(dirs, 2, batch, hidden)  # diagonal -1: no pixels, one zero row each side
    c_pad = h_pad
    outputs = []
    for (n, left, up), x_k in zip(plan.steps, x_steps):
        inputs = torch.cat([x_k, h_pad[:, left : left + n], h_pad[:, up : up + n]], dim=-1)  # (D, n, B, C+2H)
        a = torch.baddbmm(bias, inputs.view(dirs, n * batch, -1), weight)  # (D, n*B, 5H)
        i, f_h, f_v, o, s_g = torch.sigmoid(a).view(dirs, n, batch, 5 * hidden).chunk(5, dim=-1)  # each (D, n, B, H)
        # c = f_h c_h + f_v c_v + i g, with g = 2 s_g - 1
        c = (
            torch.addcmul(torch.addcmul(f_h * c_pad[:, left : left + n], f_v, c_pad[:, up : up + n]), i, s_g, value=2)
            - i
        )
        h = o * (2 * torch.sigmoid(2 * c) - 1)  # (D, n, B, H)
        outputs.append(h)
        h_pad, c_pad = F.pad(h, (0, 0, 0, 0, 1, 1)), F.pad(c, (0, 0, 0, 0, 1, 1))  # (D, n+2, B, H)
    scanned_out = torch.cat(outputs, dim=1).view(dirs * height * width, batch, hidden)  # (D*P, B, H), scan order
    out = scanned_out.index_select(0, plan.scatter).view(dirs, height, width, batch, hidden)  # raster order
    return out.permute(0, 3, 4, 1, 2)  # (D, B, H, Hi, Wi)


def mdlstm2d_skewed(
    x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor, *, corners: tuple[str, ...]
) -> Tensor:
    """The same function as :func:`mdlstm2d_wavefront` as one loop whose length follows the input: for export.

    The wavefront lays out its steps in Python for one (Hi, Wi), so a traced graph is fixed to that
    size. Here each direction's image is skewed — row i shifted right by i, so anti-diagonal k
    becomes column k of a (Hi, Hi + Wi - 1) map, with zero-state padding outside the image — and
    the scripted :func:`_skewed_scan` walks the columns: traced (TorchScript), its loop follows
    Hi + Wi - 1. Each step computes a whole column (padding included), about twice the wavefront's
    work. Shapes as :func:`mdlstm2d_reference`.

    Under ``torch.onnx.export`` it records one placeholder node (:data:`ONNX_SCAN_OP`) instead,
    which :func:`rnnvision.export.mdlstm_graph.expand_mdlstm_nodes` writes out as a lean ONNX
    ``Scan`` that computes only the diagonal's rows at each step.
    """
    if torch.onnx.is_in_onnx_export():
        return _OnnxScanPlaceholder.apply(x, weight_ih, weight_hh, bias, ",".join(corners))
    batch, chans, height, width = x.shape
    steps = height + width - 1
    images = torch.stack([_mirror(x, corner) for corner in corners])  # (D, B, C, Hi, Wi), each corner at the top left
    rows = torch.arange(height, device=x.device)[:, None]  # (Hi, 1)
    cols = torch.arange(steps, device=x.device)[None, :] - rows  # (Hi, K): image column j = k - i of skewed (i, k)
    inside = (cols >= 0) & (cols < width)  # (Hi, K)
    padded = F.pad(images, (0, 1))  # (D, B, C, Hi, Wi + 1): column Wi is zero
    index = torch.where(inside, cols, torch.full_like(cols, width))  # outside the image -> the zero column
    skewed = padded.gather(4, index.expand(*images.shape[:3], -1, -1))  # (D, B, C, Hi, K)
    z = torch.einsum("dbcik,dgc->kdbig", skewed, weight_ih) + bias[None, :, None, None, :]  # (K, D, B, Hi, 5H)
    hidden = weight_hh.shape[-1] // 2
    u_h = weight_hh[:, :, :hidden].transpose(1, 2)[:, None]  # (D, 1, H, 5H)
    u_v = weight_hh[:, :, hidden:].transpose(1, 2)[:, None]
    valid = inside.t().to(x.dtype)[:, None, None, :, None]  # (K, 1, 1, Hi, 1)
    states = _skewed_scan(z, u_h, u_v, valid)  # (K, D, B, Hi, H)
    unskew = torch.arange(width, device=x.device)[None, :] + rows  # (Hi, Wi): skewed column of (i, j) is i + j
    out = states.permute(1, 2, 4, 3, 0).gather(
        4, unskew.expand(*states.shape[1:3], hidden, -1, -1)
    )  # (D, B, H, Hi, Wi)
    return torch.stack([_mirror(o, corner) for o, corner in zip(out, corners)])


ONNX_DOMAIN, ONNX_SCAN_OP = "rnnvision", "MDLSTM2dScan"


class _OnnxScanPlaceholder(torch.autograd.Function):
    """:func:`mdlstm2d_skewed` as one ONNX node of :data:`ONNX_DOMAIN` (inputs x and the three weights,
    attribute ``corners``), expanded into standard operators after the export."""

    @staticmethod
    def forward(ctx, x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor, corners: str) -> Tensor:  # type: ignore[no-untyped-def]
        # the values only, with the tracer paused: what is exported is the symbolic's one node (the
        # wavefront's own operations, recorded inside this function's node, break the exporter's passes)
        with tracer_paused():
            return mdlstm2d_wavefront(x, weight_ih, weight_hh, bias, corners=tuple(corners.split(",")))

    @staticmethod
    def symbolic(g, x, weight_ih, weight_hh, bias, corners: str):  # type: ignore[no-untyped-def]  # torch.onnx's graph context
        out = g.op(f"{ONNX_DOMAIN}::{ONNX_SCAN_OP}", x, weight_ih, weight_hh, bias, corners_s=corners)
        dirs, gates = weight_ih.type().sizes()[:2]
        out.setType(x.type().with_sizes([dirs, None, gates // 5, None, None]))
        return out


def _mirror(x: Tensor, corner: str) -> Tensor:
    """(B, C, Hi, Wi) mirrored so that ``corner`` moves to the top left (its own inverse)."""
    flip_rows, flip_cols = CORNERS[corner]
    dims = [d for d, flip in ((2, flip_rows), (3, flip_cols)) if flip]
    return x.flip(dims) if dims else x


@torch.jit.script
def _skewed_scan(z: Tensor, u_h: Tensor, u_v: Tensor, valid: Tensor) -> Tensor:
    """The recurrence over skewed columns. z (K, D, B, Hi, 5H) input terms; u_h, u_v (D, 1, H, 5H);
    valid (K, 1, 1, Hi, 1) 1 inside the image -> hidden states (K, D, B, Hi, H).

    Pixel (i, k) of the skewed map reads its horizontal predecessor at (i, k - 1) and its vertical
    one at (i - 1, k - 1): the previous column, and the previous column shifted down one row.
    """
    steps, dirs, batch, rows, gates = z.shape
    h = torch.zeros(dirs, batch, rows, gates // 5, dtype=z.dtype, device=z.device)
    c = torch.zeros_like(h)
    outputs: list[Tensor] = []
    for k in range(steps):
        h_v = torch.cat([torch.zeros_like(h[:, :, :1]), h[:, :, :-1]], dim=2)  # (D, B, Hi, H)
        c_v = torch.cat([torch.zeros_like(c[:, :, :1]), c[:, :, :-1]], dim=2)
        a = z[k] + torch.matmul(h, u_h) + torch.matmul(h_v, u_v)  # (D, B, Hi, 5H)
        parts = a.chunk(5, dim=-1)  # i, f_h, f_v, o, g
        c = torch.sigmoid(parts[1]) * c + torch.sigmoid(parts[2]) * c_v + torch.sigmoid(parts[0]) * torch.tanh(parts[4])
        c = c * valid[k]  # the padding outside the image keeps a zero state
        h = torch.sigmoid(parts[3]) * torch.tanh(c) * valid[k]
        outputs.append(h)
    return torch.stack(outputs)
