"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"), and stacks of them.

Their gates read only the input, never the previous state, so every gate of every step comes
from one matrix multiply and the state update ``h_t = a_t * h_{t-1} + b_t`` is a linear
recurrence that :mod:`rnnvision.ops.scan` computes in parallel over time.

minGRU (paper §3.1)::

    z_t  = σ(W_z x_t + b_z)                      update gate
    h~_t = g(W_h x_t + b_h)                      candidate state
    h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t

minLSTM (§3.2)::

    f_t = σ(W_f x_t + b_f),  i_t = σ(W_i x_t + b_i),  h~_t = g(W_h x_t + b_h)
    f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)       (scaled to be time-independent)
    h_t  = f'_t ⊙ h_{t-1} + i'_t ⊙ h~_t

``g(v) = v + 1/2`` for v >= 0 and ``σ(v)`` for v < 0 is the paper's activation for the log-space
version (Appendix B): it keeps the candidate positive, which the log-space scan needs. Every
implementation here uses it, so all of them compute the same function.

In scan form (:mod:`rnnvision.ops.min_gates`, log a computed without rounding):

- minGRU: ``log a = log(1 - z) = -softplus(k_z)``, ``b = σ(k_z) g(k_h)``.
- minLSTM: with ``d = softplus(-k_f) - softplus(-k_i) = log i - log f``:
  ``log a = log f' = -softplus(d)``, ``b = i' g(k_h) = σ(d) g(k_h)``.

``impl="reference"`` loops over the step functions of :mod:`rnnvision.ops.min_gates` (the
specification, and ``step`` for streaming); ``"chunked"`` and ``"log"`` are the two scans of :mod:`rnnvision.ops.scan`; ``"auto"``
(default) is the chunked scan.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnvision.impl import MinImpl, check_impl
from rnnvision.ops.min_gates import mingru_coefficients, mingru_step, minlstm_coefficients, minlstm_step
from rnnvision.ops.scan import linear_scan


class _MinRNN(nn.Module):
    """A minGRU/minLSTM layer: one projection of the input to every gate, then the recurrence."""

    gate_blocks = 0

    def __init__(
        self, input_size: int, hidden_size: int, *, bias: bool = True, impl: MinImpl = "auto", chunk: int | None = None
    ) -> None:
        super().__init__()
        check_impl(impl, MinImpl)
        self.input_size, self.hidden_size, self.impl, self.chunk = input_size, hidden_size, impl, chunk
        self.proj = nn.Linear(input_size, self.gate_blocks * hidden_size, bias=bias)

    @staticmethod
    def _step(x_proj: Tensor, h: Tensor) -> Tensor:
        raise NotImplementedError

    @staticmethod
    def _coefficients(x_proj: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run over a batch of sequences.

        Args:
            x: (B, T, I) inputs.
            h0: (B, H) initial state, or None for zeros.

        Returns:
            ``(output, h_T)``: every state (B, T, H) and the last one (B, H), to pass as ``h0`` of
            the next call when a long sequence arrives in pieces.
        """
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects input (batch, time, {self.input_size}), got {tuple(x.shape)}"
            )
        if h0 is not None and h0.shape != (x.shape[0], self.hidden_size):
            raise ValueError(f"h0 must be (batch, hidden) = {(x.shape[0], self.hidden_size)}, got {tuple(h0.shape)}")
        x_proj = self.proj(x)  # (B, T, G*H): every gate of every step at once
        # tracing (ONNX / TorchScript export) records the reference loop: the scans update views in place
        if self.impl == "reference" or torch.jit.is_tracing():
            h = x.new_zeros(x.shape[0], self.hidden_size) if h0 is None else h0
            states = []
            for x_t in x_proj.unbind(1):  # each (B, G*H)
                h = self._step(x_t, h)
                states.append(h)
            output = torch.stack(states, dim=1)  # (B, T, H)
        else:
            log_a, b = self._coefficients(x_proj)
            output = linear_scan(log_a, b, h0, impl=self.impl, chunk=self.chunk)
        return output, output[:, -1]

    def step(self, x_t: Tensor, h: Tensor | None = None) -> Tensor:
        """One step for streaming: x_t (B, I), h (B, H) or None for zeros -> h_t (B, H)."""
        h = x_t.new_zeros(x_t.shape[0], self.hidden_size) if h is None else h
        return self._step(self.proj(x_t), h)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, impl={self.impl!r}"


class MinGRU(_MinRNN):
    """minGRU layer (Feng et al. 2024): ``h_t = (1 - z_t) h_{t-1} + z_t g(W_h x_t)``; see the module docstring."""

    gate_blocks = 2
    _step = staticmethod(mingru_step)
    _coefficients = staticmethod(mingru_coefficients)


class MinLSTM(_MinRNN):
    """minLSTM layer (Feng et al. 2024): ``h_t = f'_t h_{t-1} + i'_t g(W_h x_t)``; see the module docstring."""

    gate_blocks = 3
    _step = staticmethod(minlstm_step)
    _coefficients = staticmethod(minlstm_coefficients)


MIN_CELLS: dict[str, type[_MinRNN]] = {"mingru": MinGRU, "minlstm": MinLSTM}


def mlp(dim: int, ratio: float) -> nn.Sequential | None:
    """``Linear(dim, ratio*dim) -> GELU -> Linear(ratio*dim, dim)``, or None when ``ratio * dim < 1``."""
    hidden = int(dim * ratio)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)) if hidden else None


class MinRNNBlock(nn.Module):
    """Pre-norm residual block: ``x + rnn(norm(x))``, then ``x + mlp(norm(x))`` (mlp optional).

    The layout of the minGRU language models of Feng et al. (and of Transformer blocks); every
    part but the recurrence works per time step, so the block streams with :meth:`step`.
    """

    def __init__(
        self,
        dim: int,
        *,
        cell: str = "mingru",
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        impl: MinImpl = "auto",
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        if cell not in MIN_CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(MIN_CELLS)}")
        self.norm1 = nn.LayerNorm(dim)
        self.rnn = MIN_CELLS[cell](dim, dim, impl=impl, chunk=chunk)
        self.mlp = mlp(dim, mlp_ratio)
        self.norm2 = nn.LayerNorm(dim) if self.mlp is not None else None
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (B, T, D), h0 (B, D) or None -> (output (B, T, D), the recurrence's last state (B, D))."""
        states, last = self.rnn(self.norm1(x), h0)
        x = x + self.drop(states)
        if self.mlp is not None and self.norm2 is not None:
            x = x + self.drop(self.mlp(self.norm2(x)))
        return x, last

    def step(self, x_t: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x_t (B, D), h (B, D) or None -> (output (B, D), new state (B, D))."""
        h = self.rnn.step(self.norm1(x_t), h)
        x_t = x_t + self.drop(h)
        if self.mlp is not None and self.norm2 is not None:
            x_t = x_t + self.drop(self.mlp(self.norm2(x_t)))
        return x_t, h


class MinRNNStack(nn.Module):
    """Input projection, ``depth`` :class:`MinRNNBlock` s and a final LayerNorm.

    Args:
        input_size: features per step of the input.
        dim: width of every block (the recurrent state size).
        depth: number of blocks.
        cell: ``"mingru"`` or ``"minlstm"``.
        mlp_ratio: width of each block's MLP as a multiple of ``dim`` (0: no MLP).
    """

    def __init__(
        self,
        input_size: int,
        dim: int,
        depth: int,
        *,
        cell: str = "mingru",
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        impl: MinImpl = "auto",
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(input_size, dim)
        self.blocks = nn.ModuleList(
            MinRNNBlock(dim, cell=cell, mlp_ratio=mlp_ratio, dropout=dropout, impl=impl, chunk=chunk)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def set_impl(self, impl: MinImpl) -> None:
        """Switch every block's recurrence to ``impl`` (weights are shared by all implementations)."""
        check_impl(impl, MinImpl)
        for block in self.blocks:
            block.rnn.impl = impl  # type: ignore[union-attr]  # a ModuleList holds Modules to mypy

    def forward(self, x: Tensor, states: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        """x (B, T, I), states (one (B, D) per block) or None -> (output (B, T, D), last states)."""
        x = self.embed(x)  # (B, T, D)
        last = []
        for k, block in enumerate(self.blocks):
            x, h = block(x, None if states is None else states[k])
            last.append(h)
        return self.norm(x), last

    def step(self, x_t: Tensor, states: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        """One step for streaming: x_t (B, I), states or None -> (output (B, D), new states)."""
        x_t = self.embed(x_t)  # (B, D)
        new = []
        for k, block in enumerate(self.blocks):
            x_t, h = block.step(x_t, None if states is None else states[k])  # type: ignore[operator]  # MinRNNBlock.step
            new.append(h)
        return self.norm(x_t), new
