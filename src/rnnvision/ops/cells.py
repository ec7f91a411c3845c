"""The Elman, LSTM and GRU step functions, written as the textbook equations, and the reference
loop over time that the sequence layers run for ``impl="reference"``.

The cells of :mod:`rnnvision.layers.cells` take one step with these functions; the sequence
layers of :mod:`rnnvision.layers.recurrent` drive :func:`recurrence_reference` over every layer
and direction (their fast path is torch's fused kernel), and the PixelRNN layers call
:func:`lstm_step` with convolution taps as the hidden state. Weight layouts follow
``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` (gate blocks stacked along dim 0).

Every step function takes the input term ``x_proj = W_ih x_t + b_ih`` already computed, because
it does not depend on the state and the layers compute it for all time steps in one matrix
multiply; the state-to-state term and the nonlinearities are applied here, per step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

GateDict = dict[str, Tensor]

LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("reset", "update", "candidate")


def rnn_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None, *, nonlinearity: str = "tanh") -> Tensor:
    """Elman step: ``h_t = tanh(W_hh h_{t-1} + b_hh + x_proj)`` (or relu).

    Shapes: x_proj (B, H), h (B, H), w_hh (H, H) -> h_t (B, H).
    """
    pre = x_proj + F.linear(h, w_hh, b_hh)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_step(
    x_proj: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor | None
) -> tuple[Tensor, Tensor, GateDict]:
    """LSTM step (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    i = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate
    f = σ(W_if x + b_if + W_hf h + b_hf)      forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate cell
    o = σ(W_io x + b_io + W_ho h + b_ho)      output gate
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(c')

    Shapes: x_proj (B, 4H) with blocks [i, f, g, o], h and c (B, H), w_hh (4H, H).
    Returns (h', c', gates) where gates maps input/forget/cell/output to (B, H).
    """
    pre = x_proj + F.linear(h, w_hh, b_hh)  # (B, 4H)
    i, f, g, o = pre.chunk(4, dim=1)  # each (B, H)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g
    h_next = o * torch.tanh(c_next)
    return h_next, c_next, {"input": i, "forget": f, "cell": g, "output": o}


def gru_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> tuple[Tensor, GateDict]:
    """GRU step (Cho et al. 2014), in the cuDNN/torch form where the reset gate scales W_hn h.

    r = σ(W_ir x + b_ir + W_hr h + b_hr)            reset gate
    z = σ(W_iz x + b_iz + W_hz h + b_hz)            update gate
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))   candidate
    h' = (1 - z) ⊙ n + z ⊙ h

    Shapes: x_proj (B, 3H) with blocks [r, z, n], h (B, H), w_hh (3H, H).
    Returns (h', gates) where gates maps reset/update/candidate to (B, H).
    """
    x_r, x_z, x_n = x_proj.chunk(3, dim=1)  # each (B, H)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    h_next = (1 - z) * n + z * h
    return h_next, {"reset": r, "update": z, "candidate": n}


Step = Callable[[Tensor, tuple[Tensor, ...]], tuple[tuple[Tensor, ...], GateDict]]


def recurrence_reference(
    step: Step,
    x_proj: Tensor,
    state: tuple[Tensor, ...],
    *,
    reverse: bool = False,
    mask: Tensor | None = None,
    keep_gates: bool = False,
) -> tuple[Tensor, tuple[Tensor, ...], GateDict]:
    """One direction of one recurrent layer, one step at a time (the specification).

    Args:
        step: ``(x_proj_t (B, G*H), state) -> (new state, gates)``, a step function above with its
            state-to-state weights bound; the output of a step is its new state's first tensor.
        x_proj: (B, T, G*H) the input term ``W_ih x_t + b_ih`` of every step.
        state: the initial state, tensors of (B, H) (h, or (h, c)).
        reverse: run from the last step to the first.
        mask: (B, T) True inside each sequence; padded steps give zero outputs (and gates) and keep
            the state.
        keep_gates: also return every gate at every step.

    Returns:
        outputs (B, T, H), the final state, and gate name -> (B, T, H) (empty unless ``keep_gates``).
    """
    steps = x_proj.shape[1]
    outputs: list[Tensor] = [x_proj.new_empty(0)] * steps
    gate_steps: dict[str, list[Tensor]] = {}
    for t in reversed(range(steps)) if reverse else range(steps):
        new_state, step_gates = step(x_proj[:, t], state)
        if mask is None:
            state, out = new_state, new_state[0]
        else:
            valid = mask[:, t, None]  # (B, 1)
            state = tuple(torch.where(valid, new, old) for new, old in zip(new_state, state))
            out = new_state[0] * valid
            step_gates = {name: g * valid for name, g in step_gates.items()}
        outputs[t] = out
        if keep_gates:
            for name, g in step_gates.items():
                gate_steps.setdefault(name, [x_proj.new_empty(0)] * steps)[t] = g
    gates = {name: torch.stack(values, dim=1) for name, values in gate_steps.items()}
    return torch.stack(outputs, dim=1), state, gates
