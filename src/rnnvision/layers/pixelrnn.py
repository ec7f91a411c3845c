"""PixelRNN layers: masked convolutions, the Row LSTM and the Diagonal BiLSTM.

van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks" (ICML):

- masked convolutions (section 3.4): a pixel sees only the pixels above it and to its left; with
  colour images the channels are ordered R -> G -> B and every feature map is split into as many
  groups, group g seeing the input groups before g (mask A, first layer) or up to g (mask B);
- the Row LSTM (section 3.1): a k x 1 masked input-to-state convolution over every row at once,
  then H sequential steps whose state-to-state part is a 1D convolution of width k along the
  previous row;
- the Diagonal BiLSTM (section 3.2): the map is skewed so each diagonal is a column; a 1 x 1
  input-to-state and a 2 x 1 column state-to-state convolution run over the H + W - 1 columns;
  the right-to-left direction is the same on the mirrored map, and its output is shifted down
  one row before it is added, so no pixel sees a later one;
- residual connections (section 3.3): the h-feature LSTM output goes back to 2h features through
  a 1 x 1 (mask B) convolution and is added to the layer's input.

Both recurrent layers have ``impl="fused"`` (whole rows / diagonals per step, the fast path) and
``impl="reference"`` (a plain loop over pixels). The per-pixel step functions of the reference
(:meth:`RowLSTM.pixel_step`, :meth:`DiagonalBiLSTM.pixel_step`) are also what incremental
sampling runs, one pixel at a time (:class:`RowLSTMStepping`, :class:`DiagonalBiLSTMStepping`),
in :mod:`rnnvision.models.autoregressive` and in the exported sampling graphs. The cell update
itself is :func:`rnnvision.ops.cells.lstm_step` (gate blocks [input, forget, cell, output]),
fed with the taps of the state-to-state convolution as its "hidden state" input.
"""

from __future__ import annotations

from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.impl import RecurrentImpl, check_impl
from rnnvision.ops.cells import lstm_step
from rnnvision.ops.skew import diagonal_order

MaskType = Literal["A", "B"]


def channel_groups(channels: int, colors: int) -> Tensor:
    """Colour group of each of ``channels`` feature channels: contiguous blocks, (channels,) int64."""
    if channels < colors:
        raise ValueError(f"{channels} channels cannot be split into {colors} colour groups")
    return torch.arange(channels) * colors // channels


def causal_mask(out_groups: Tensor, in_groups: Tensor, kernel_size: tuple[int, int], mask_type: MaskType) -> Tensor:
    """The PixelCNN/PixelRNN mask, (O, I, kh, kw): rows above the centre, the centre row left of it,
    and at the centre only earlier colour groups (mask A) or earlier-or-same groups (mask B)."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    kh, kw = kernel_size
    cy, cx = kh // 2, kw // 2
    mask = torch.zeros(len(out_groups), len(in_groups), kh, kw)
    mask[:, :, :cy, :] = 1
    mask[:, :, cy, :cx] = 1
    allowed = (
        in_groups[None, :] < out_groups[:, None] if mask_type == "A" else in_groups[None, :] <= out_groups[:, None]
    )
    mask[:, :, cy, cx] = allowed.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A 'same' convolution whose weights are multiplied by :func:`causal_mask`.

    Args:
        mask_type: ``"A"`` (first layer: a pixel's own value is hidden) or ``"B"``.
        colors: number of image channels ordered R -> G -> B (1 for grey or binary images).
        in_groups_from_colors: the input is the image itself (channel i is colour i).
        out_blocks: the output is ``out_blocks`` stacked maps grouped alike (LSTM gates: 4).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        mask_type: MaskType,
        colors: int = 1,
        out_blocks: int = 1,
        bias: bool = True,
    ) -> None:
        size = (
            (kernel_size, kernel_size) if isinstance(kernel_size, int) else (int(kernel_size[0]), int(kernel_size[1]))
        )
        if size[0] % 2 == 0 or size[1] % 2 == 0:
            raise ValueError(f"masked convolutions need odd kernel sizes, got {size}")
        super().__init__(in_channels, out_channels, size, padding=(size[0] // 2, size[1] // 2), bias=bias)
        if out_channels % out_blocks:
            raise ValueError(f"{out_channels} output channels do not split into {out_blocks} blocks")
        out_groups = channel_groups(out_channels // out_blocks, colors).repeat(out_blocks)
        self.register_buffer("mask", causal_mask(out_groups, channel_groups(in_channels, colors), size, mask_type))
        self.mask_type = mask_type

    mask: Tensor

    def masked_weight(self) -> Tensor:
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        """(B, I, H, W) -> (B, O, H, W)."""
        return F.conv2d(x, self.masked_weight(), self.bias, padding=self.padding)

    def at(self, window: Tensor) -> Tensor:
        """The output at one position from the input window centred on it: (B, I, kh, kw) -> (B, O)."""
        return F.conv2d(window, self.masked_weight(), self.bias).flatten(1)  # (B, O, 1, 1) -> (B, O)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask={self.mask_type}"


def _windows(x: Tensor, k: int) -> Tensor:
    """(B, W + k - 1, h) -> (B, W, h, k): every k consecutive rows of dim 1, as ``x.unfold(1, k, 1)``.

    When traced (ONNX / TorchScript export) the k shifted slices are stacked instead: the ONNX
    exporter has no ``unfold`` for a size it cannot read at trace time; the values are the same.
    """
    if not torch.jit.is_tracing():
        return x.unfold(1, k, 1)
    width = x.shape[1] - k + 1
    return torch.stack([x[:, j : j + width] for j in range(k)], dim=-1)


class RowLSTM(nn.Module):
    """Row LSTM layer with its residual connection: (B, 2h, H, W) -> (B, 2h, H, W).

    Row r's gates are ``K_is * x_r + K_ss * h_{r-1}`` (section 3.1, eq. 3): ``K_is`` a masked 1 x k
    convolution along row r of the input (computed for all rows at once), ``K_ss`` an unmasked
    width-k convolution along the previous row's hidden state. The cell state runs down each
    column: ``c_r = f * c_{r-1} + i * g``. A pixel therefore sees a triangle of rows above it.
    """

    def __init__(
        self, channels: int, hidden: int, *, kernel: int = 3, colors: int = 1, impl: RecurrentImpl = "auto"
    ) -> None:
        super().__init__()
        if kernel < 3 or kernel % 2 == 0:
            raise ValueError(f"the Row LSTM kernel must be odd and at least 3, got {kernel}")
        self.channels, self.hidden, self.kernel, self.impl = channels, hidden, kernel, check_impl(impl, RecurrentImpl)
        self.input_to_state = MaskedConv2d(
            channels, 4 * hidden, (1, kernel), mask_type="B", colors=colors, out_blocks=4
        )
        self.state_to_state = nn.Conv1d(hidden, 4 * hidden, kernel, padding=kernel // 2, bias=False)
        self.output = MaskedConv2d(hidden, channels, 1, mask_type="B", colors=colors)

    def forward(self, x: Tensor) -> Tensor:
        impl = "fused" if self.impl == "auto" else self.impl
        hidden = self._fused(x) if impl == "fused" else self._reference(x)  # (B, h, H, W)
        return x + self.output(hidden)

    def _ss_weight(self) -> Tensor:
        return self.state_to_state.weight.flatten(1)  # (4h, h * k), index i * k + j

    def _fused(self, x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        pad = self.kernel // 2
        gates_is = (
            self.input_to_state(x).permute(2, 0, 3, 1).reshape(height, batch * width, 4 * self.hidden)
        )  # (H, B*W, 4h)
        gates_is = gates_is.unbind(0)  # one backward for all rows (indexing per row would copy the whole map per row)
        h = x.new_zeros(batch, width, self.hidden)  # (B, W, h)
        c = x.new_zeros(batch * width, self.hidden)
        rows = []
        for r in range(height):
            taps = _windows(F.pad(h, (0, 0, pad, pad)), self.kernel)  # (B, W, h, k)
            h_flat, c, _ = lstm_step(gates_is[r], taps.reshape(batch * width, -1), c, self._ss_weight(), None)
            h = h_flat.view(batch, width, self.hidden)
            rows.append(h)
        return torch.stack(rows, dim=1).permute(0, 3, 1, 2)  # (B, H, W, h) -> (B, h, H, W)

    def pixel_step(self, x_taps: Tensor, h_taps: Tensor, c_up: Tensor) -> tuple[Tensor, Tensor]:
        """One pixel: input taps (B, 2h, k) of its row, hidden taps (B, h, k) of the row above and the
        cell state (B, h) above it -> (h, c) each (B, h). Taps are centred on the pixel."""
        gates_is = self.input_to_state.at(x_taps[:, :, None, :])  # (B, 2h, 1, k) -> (B, 4h)
        h, c, _ = lstm_step(gates_is, h_taps.flatten(1), c_up, self._ss_weight(), None)
        return h, c

    def _reference(self, x: Tensor) -> Tensor:
        """Plain loop over pixels in raster order (the specification); zero taps outside the image."""
        batch, _, height, width = x.shape
        pad = self.kernel // 2
        zero_x, zero_h = x.new_zeros(batch, self.channels), x.new_zeros(batch, self.hidden)
        h_above, c_above = [zero_h] * width, [zero_h] * width  # row -1
        rows = []
        for r in range(height):
            h_row, c_row = [], []
            for col in range(width):
                near = [col + j - pad for j in range(self.kernel)]  # the k columns centred on col
                x_taps = torch.stack([x[:, :, r, q] if 0 <= q < width else zero_x for q in near], dim=-1)  # (B, 2h, k)
                h_taps = torch.stack([h_above[q] if 0 <= q < width else zero_h for q in near], dim=-1)  # (B, h, k)
                h, c = self.pixel_step(x_taps, h_taps, c_above[col])
                h_row.append(h)
                c_row.append(c)
            rows.append(torch.stack(h_row, dim=-1))  # (B, h, W)
            h_above, c_above = h_row, c_row
        return torch.stack(rows, dim=-2)  # (B, h, H, W)


class DiagonalBiLSTM(nn.Module):
    """Diagonal BiLSTM layer with its residual connection: (B, 2h, H, W) -> (B, 2h, H, W).

    Each direction: 1 x 1 masked input-to-state convolution, then over the skewed map a 2 x 1
    state-to-state convolution on the previous column (section 3.2). Unskewed, pixel (r, c) of
    the left-to-right direction reads the hidden states above, (r - 1, c), and to its left,
    (r, c - 1), and carries the cell state of (r, c - 1). The right-to-left direction is the same
    on the mirrored map (it reads (r - 1, c) and (r, c + 1)); its output is shifted down one row,
    so pixel (r, c) receives it from row r - 1 only, and added to the left-to-right output.
    """

    def __init__(self, channels: int, hidden: int, *, colors: int = 1, impl: RecurrentImpl = "auto") -> None:
        super().__init__()
        self.channels, self.hidden, self.impl = channels, hidden, check_impl(impl, RecurrentImpl)
        self.input_to_state = nn.ModuleList(
            MaskedConv2d(channels, 4 * hidden, 1, mask_type="B", colors=colors, out_blocks=4) for _ in range(2)
        )
        # column convolution of height 2 per direction, taps [row above, same row]: (4h, h, 2)
        self.state_to_state = nn.ModuleList(nn.Conv1d(hidden, 4 * hidden, 2, bias=False) for _ in range(2))
        self.output = MaskedConv2d(hidden, channels, 1, mask_type="B", colors=colors)

    def forward(self, x: Tensor) -> Tensor:
        impl = "fused" if self.impl == "auto" else self.impl
        left, right = self._fused(x) if impl == "fused" else self._reference(x)  # each (B, h, H, W)
        right_down = F.pad(right, (0, 0, 1, 0))[:, :, :-1]  # row r gets the right-to-left output of row r - 1
        return x + self.output(left + right_down)

    def _ss_weight(self, direction: int) -> Tensor:
        weight: Tensor = self.state_to_state[direction].weight  # type: ignore[assignment]  # a Conv2d's
        return weight.flatten(1)  # (4h, 2h), index i * 2 + tap

    def _pair(self, left: Tensor, right: Tensor) -> Tensor:
        """Two directions' gate weights (4h, n) -> one (8h, 2n) matrix: inputs [left's, right's],
        output rows in the paired gate order [i_L, i_R, f_L, f_R, g_L, g_R, o_L, o_R] (each h)."""
        h = self.hidden
        left, right = left.view(4, h, -1), right.view(4, h, -1)  # (gate, unit, input)
        rows_left = torch.cat((left, torch.zeros_like(left)), dim=-1)  # (4, h, 2n)
        rows_right = torch.cat((torch.zeros_like(right), right), dim=-1)
        return torch.stack((rows_left, rows_right), dim=1).reshape(8 * h, -1)

    def _fused(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Both directions at once over the skewed map, one diagonal (skewed column) per step.

        The map is read in :func:`~rnnvision.ops.skew.diagonal_order` — the skewed map's columns
        without their off-image zeros (those never feed an on-image pixel: the ones below a column's
        pixels have zero state, the ones above lie right of the image). One :func:`lstm_step` on a
        paired state [h_L, h_R] (2h) advances both directions; the right-to-left one runs on the
        mirrored map. Rows lead the layout (pixels, B, channels), so a diagonal is a contiguous slice.
        """
        batch, channels, height, width = x.shape
        h = self.hidden
        order, sizes = diagonal_order(height, width)
        order = order.to(x.device)
        mirrored = order // width * width + (width - 1 - order % width)  # same walk on the mirrored map
        pixels = x.permute(2, 3, 0, 1).reshape(height * width, batch, channels)  # (H*W, B, 2h), raster order
        inputs = torch.cat((pixels.index_select(0, order), pixels.index_select(0, mirrored)), dim=-1)  # (H*W, B, 4h)
        input_convs: list[MaskedConv2d] = list(self.input_to_state)  # type: ignore[arg-type]
        state_convs: list[nn.Conv2d] = list(self.state_to_state)  # type: ignore[arg-type]
        w_is = self._pair(*(conv.masked_weight().flatten(1) for conv in input_convs))  # (8h, 4h)
        b_is = torch.stack([cast(Tensor, conv.bias).view(4, h) for conv in input_convs], dim=1).flatten()  # (8h,)
        gates = F.linear(inputs, w_is, b_is).split(sizes)  # T x (rows, B, 8h)
        taps = [torch.stack([ss.weight[:, :, tap] for ss in state_convs]) for tap in (0, 1)]  # 2 x (2, 4h, h)
        w_ss = torch.cat(
            [self._pair(*directions) for directions in taps], dim=1
        )  # (8h, 4h): [up_L, up_R, side_L, side_R]
        h_prev = c_prev = x.new_zeros(0, batch, 2 * h)  # (rows, B, 2h): the previous diagonal's rows lo'..hi'
        lo_prev = 0
        outputs = []
        for t, rows in enumerate(sizes):
            lo = max(0, t - width + 1)
            h_pad = F.pad(h_prev, (0, 0, 0, 0, 1, 1))  # rows lo' - 1 .. hi' + 1 of the previous diagonal, zero ends
            c_pad = F.pad(c_prev, (0, 0, 0, 0, 1, 1))
            up = lo - lo_prev  # index in the padded rows of row lo - 1, above row lo
            state_taps = torch.cat((h_pad[up : up + rows], h_pad[up + 1 : up + 1 + rows]), dim=-1)  # (rows, B, 4h)
            h_new, c_new, _ = lstm_step(
                gates[t].reshape(rows * batch, 8 * h),
                state_taps.reshape(rows * batch, 4 * h),
                c_pad[up + 1 : up + 1 + rows].reshape(rows * batch, 2 * h),
                w_ss,
                None,
            )
            h_prev, c_prev, lo_prev = h_new.view(rows, batch, 2 * h), c_new.view(rows, batch, 2 * h), lo
            outputs.append(h_prev)
        raster = torch.empty_like(order)
        raster[order] = torch.arange(len(order), device=x.device)  # position of each pixel in diagonal order
        both = (
            torch.cat(outputs).index_select(0, raster).view(height, width, batch, 2 * h).permute(2, 3, 0, 1)
        )  # (B, 2h, H, W)
        return both[:, :h], both[:, h:].flip(-1)

    def pixel_step(
        self, direction: int, x: Tensor, h_up: Tensor, h_side: Tensor, c_side: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One pixel of one direction: its input (B, 2h), the hidden state above (B, h), the hidden and
        cell state of the previous pixel along the row (left for direction 0, right for 1) -> (h, c)."""
        gates_is = self.input_to_state[direction].at(x[:, :, None, None])  # type: ignore[operator]  # (B, 2h, 1, 1) -> (B, 4h)
        taps = torch.stack((h_up, h_side), dim=-1).flatten(1)  # (B, h * 2)
        h, c, _ = lstm_step(gates_is, taps, c_side, self._ss_weight(direction), None)
        return h, c

    def _reference(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Plain loops over pixels (the specification): left-to-right, then right-to-left along each
        row, rows top to bottom; states outside the image are zero."""
        batch, _, height, width = x.shape
        zero = x.new_zeros(batch, self.hidden)
        outputs = []
        for direction, order in ((0, range(width)), (1, range(width - 1, -1, -1))):
            step = -1 if direction == 0 else 1  # where the previous pixel along the row is
            h_above = [zero] * width
            rows = []
            for r in range(height):
                h_row, c_row = [zero] * width, [zero] * width
                for col in order:
                    prev = col + step
                    inside = 0 <= prev < width
                    h_row[col], c_row[col] = self.pixel_step(
                        direction,
                        x[:, :, r, col],
                        h_above[col],
                        h_row[prev] if inside else zero,
                        c_row[prev] if inside else zero,
                    )
                rows.append(torch.stack(h_row, dim=-1))  # (B, h, W)
                h_above = h_row
            outputs.append(torch.stack(rows, dim=-2))  # (B, h, H, W)
        return outputs[0], outputs[1]


State = tuple[Tensor, ...]


def _take(buffer: Tensor, index: Tensor) -> Tensor:
    """Column ``index`` (a 0-d int64 tensor) of ``buffer`` (B, n, W) -> (B, n)."""
    return buffer.index_select(2, index.reshape(1)).squeeze(2)


def _put(buffer: Tensor, index: Tensor, value: Tensor) -> Tensor:
    """``buffer`` (B, n, W) with column ``index`` replaced by ``value`` (B, n), out of place.

    A one-hot blend rather than an indexed write, so that an ONNX trace keeps ``index`` an input.
    """
    hit = (torch.arange(buffer.shape[-1], device=buffer.device) == index).to(buffer.dtype)  # (W,)
    return buffer * (1 - hit) + value[:, :, None] * hit


class RowLSTMStepping:
    """Incremental Row LSTM for sampling: one pixel at a time in raster order, state in tensors.

    The state holds this row's inputs and states as they are computed and the row above's hidden
    and cell states, so each pixel costs one :meth:`RowLSTM.pixel_step` instead of a pass over the
    whole image. Out-of-place updates and a tensor column index make :meth:`step` and
    :meth:`end_row` traceable, so that they also export as ONNX graphs
    (:mod:`rnnvision.export.sampling`). State, per sample: ``x_row`` (2h, W + 2 pad), ``h_row``
    (h, W + 2 pad), ``c_row`` (h, W), ``h_above`` (h, W + 2 pad), ``c_above`` (h, W).
    """

    def __init__(self, layer: RowLSTM) -> None:
        self.layer, self.pad = layer, layer.kernel // 2

    def start(self, batch: int, width: int, like: Tensor) -> State:
        """The state before the first row: zeros."""
        layer, pad = self.layer, self.pad
        padded = [like.new_zeros(batch, n, width + 2 * pad) for n in (layer.channels, layer.hidden)]
        return (
            padded[0],
            padded[1],
            like.new_zeros(batch, layer.hidden, width),
            like.new_zeros(batch, layer.hidden, width + 2 * pad),
            like.new_zeros(batch, layer.hidden, width),
        )

    def step(self, x: Tensor, col: Tensor, state: State) -> tuple[Tensor, State]:
        """Input (B, 2h) of pixel ``col`` (0-d int64) of the current row -> (output there (B, 2h), state).

        Call it again for the same pixel after one of its colour channels changed: it rewrites the column.
        """
        x_row, h_row, c_row, h_above, c_above = state
        taps = col + torch.arange(self.layer.kernel, device=x.device)  # padded columns col - pad .. col + pad
        x_row = _put(x_row, col + self.pad, x)  # the taps right of col are masked out by the input-to-state mask
        h, c = self.layer.pixel_step(x_row.index_select(2, taps), h_above.index_select(2, taps), _take(c_above, col))
        out = x + self.layer.output.at(h[:, :, None, None])
        return out, (x_row, _put(h_row, col + self.pad, h), _put(c_row, col, c), h_above, c_above)

    def end_row(self, state: State) -> State:
        """The state for the next row: this row's states move up, the row buffers restart at zero."""
        x_row, h_row, c_row, _, _ = state
        return torch.zeros_like(x_row), torch.zeros_like(h_row), torch.zeros_like(c_row), h_row, c_row


class DiagonalBiLSTMStepping:
    """Incremental Diagonal BiLSTM for sampling: one pixel at a time in raster order, state in tensors.

    The left-to-right direction advances one pixel per :meth:`step` from the states to the left and
    above; the right-to-left direction of a row can only run once the row is complete, in
    :meth:`end_row`, and reaches the next row through the one-row shift. Traceable like
    :class:`RowLSTMStepping`. State, per sample: ``x_row`` (2h, W), ``h_row``, ``c_row`` (h, W) of
    the left-to-right direction, ``h_left_above``, ``h_right_above`` (h, W) of the row above.
    """

    def __init__(self, layer: DiagonalBiLSTM) -> None:
        self.layer = layer

    def start(self, batch: int, width: int, like: Tensor) -> State:
        """The state before the first row: zeros."""
        layer = self.layer
        return (
            like.new_zeros(batch, layer.channels, width),
            *(like.new_zeros(batch, layer.hidden, width) for _ in range(4)),
        )

    def step(self, x: Tensor, col: Tensor, state: State) -> tuple[Tensor, State]:
        """Input (B, 2h) of pixel ``col`` (0-d int64) of the current row -> (output there (B, 2h), state)."""
        x_row, h_row, c_row, h_left_above, h_right_above = state
        left = (col - 1).clamp(min=0)
        inside = (col > 0).to(x.dtype)  # the pixel left of column 0 has zero state
        h, c = self.layer.pixel_step(
            0, x, _take(h_left_above, col), _take(h_row, left) * inside, _take(c_row, left) * inside
        )
        out = x + self.layer.output.at((h + _take(h_right_above, col))[:, :, None, None])
        return out, (_put(x_row, col, x), _put(h_row, col, h), _put(c_row, col, c), h_left_above, h_right_above)

    def end_row(self, state: State) -> State:
        """The state for the next row: the right-to-left direction runs along the finished row."""
        x_row, h_row, c_row, _, h_right_above = state
        h_side = c_side = x_row.new_zeros(x_row.shape[0], self.layer.hidden)
        h_right = []
        for col in range(x_row.shape[-1] - 1, -1, -1):  # right to left along the finished row
            h_side, c_side = self.layer.pixel_step(1, x_row[:, :, col], h_right_above[:, :, col], h_side, c_side)
            h_right.append(h_side)
        h_right_row = torch.stack(h_right[::-1], dim=-1)  # (B, h, W)
        return torch.zeros_like(x_row), torch.zeros_like(h_row), torch.zeros_like(c_row), h_row, h_right_row


class MaskedResidualBlock(nn.Module):
    """PixelCNN residual block (section 3.3, figure 5): 2h -> ReLU, 1 x 1 -> h -> ReLU, k x k mask B
    -> h -> ReLU, 1 x 1 -> 2h, added to the input. (B, 2h, H, W) -> (B, 2h, H, W)."""

    def __init__(self, channels: int, hidden: int, *, kernel: int = 3, colors: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(channels, hidden, 1, mask_type="B", colors=colors),
            nn.ReLU(),
            MaskedConv2d(hidden, hidden, kernel, mask_type="B", colors=colors),
            nn.ReLU(),
            MaskedConv2d(hidden, channels, 1, mask_type="B", colors=colors),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)
