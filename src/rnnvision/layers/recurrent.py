"""Sequence layers ``RNN``, ``LSTM`` and ``GRU`` with a fused and a reference implementation.

Both implementations share one set of parameters, named and laid out exactly as in
``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (``weight_ih_l{k}[_reverse]``, ``weight_hh_l{k}[_reverse]``,
``bias_ih_l{k}[_reverse]``, ``bias_hh_l{k}[_reverse]``), so one ``state_dict`` serves both and
loads into ``torch.nn`` too.

- ``impl="fused"``: torch's cuDNN (GPU) / native or oneDNN (CPU) kernels, the fast path.
- ``impl="reference"``: a plain Python loop over the cell step functions,
  :func:`rnnvision.ops.cells.recurrence_reference` for every layer and direction; the
  specification, and the only path that can return the gate activations.
- ``impl="auto"`` (default): fused unless the call needs the reference (``return_gates=True``).
  Naming ``"fused"`` for a call it cannot serve raises a ``ValueError``.

A right-padded batch with ``lengths`` runs the fused kernels on a packed sequence, which also
gives each sequence's exact final state. On a CPU torch runs packed sequences step by step in
composite operations; a call that does not need the final state (``final_state=False``) instead
runs the padded batch through the plain kernels (oneDNN's for the LSTM), one layer and direction
at a time, each reverse direction on every sequence reversed within its own length, and zeroes
the padded steps: the same outputs, in less time (measured in BENCHMARKS.md, "Training a padded
batch").

Gate biases (``gate_init``): ``"default"`` keeps torch's initialisation untouched (every weight
and bias U(-1/sqrt(H), 1/sqrt(H))); ``"chrono"`` is the chrono initialisation of Tallec &
Ollivier 2018 ("Can recurrent neural networks warp time?", ICLR, section 4): for the LSTM the
forget-gate bias ``b_f ~ log(U(1, T_max - 1))`` and the input-gate bias ``b_i = -b_f``, so each
unit starts with a forgetting time ``1 / (1 - sigmoid(b_f)) = 1 + u`` spread uniformly over
[2, T_max] steps. For the GRU (torch's form ``h' = (1 - z) n + z h``) the update gate ``z`` is the
keep gate, the forget gate's analogue, and its input gate is tied to it (``1 - z``), so only
``b_z ~ log(U(1, T_max - 1))`` is set. torch stores each gate's bias as ``bias_ih + bias_hh``: the
drawn value goes into ``bias_ih`` and the ``bias_hh`` entries of those gates are zeroed. The Elman
RNN has no gate, so it refuses ``"chrono"``.

All layers are batch-first: inputs are (B, T, I), outputs (B, T, D*H) with D = 2 when
bidirectional. States are (L*D, B, H) ordered layer by layer, forward direction first, as in
torch. ``lengths`` (B,) marks the valid prefix of each sequence in a right-padded batch: padded
steps produce zero outputs (and zero gates) and do not change the state, and the reverse
direction of each sequence starts at its own last valid step.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnvision.impl import RecurrentImpl, check_impl
from rnnvision.ops.cells import GRU_GATES, LSTM_GATES, GateDict, gru_step, lstm_step, recurrence_reference, rnn_step
from rnnvision.ops.onnx_recurrence import OnnxPaddedLayer, onnx_weights

GateInit = Literal["default", "chrono"]
GATE_INITS = ("default", "chrono")
State = Tensor | tuple[Tensor, Tensor]


def _suffix(layer: int, direction: int) -> str:
    """The parameter-name suffix torch gives a layer and direction: ``_l1``, ``_l1_reverse``."""
    return f"_l{layer}" + ("_reverse" if direction else "")


class _RecurrentLayer:
    """Shared forward logic; mixed in before the ``torch.nn`` RNN class that owns the parameters."""

    gate_names: tuple[str, ...] = ()
    has_cell_state = False
    onnx_op = ""  # the ONNX operator of this cell: "RNN", "LSTM" or "GRU"
    chrono_gates: tuple[int, int | None] | None = None  # (keep block, its opposite block or None)
    # set by the torch.nn class this is mixed into (nn.RNNBase, nn.Module)
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    dropout: float
    bidirectional: bool
    proj_size: int
    training: bool

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
        impl: RecurrentImpl = "auto",
        gate_init: GateInit = "default",
        chrono_max: int | None = None,
        **torch_options: Any,
    ) -> None:
        check_impl(impl, RecurrentImpl)
        if gate_init not in GATE_INITS:
            raise ValueError(f"gate_init must be one of {GATE_INITS}, got {gate_init!r}")
        if gate_init == "chrono" and not self.chrono_gates:
            raise ValueError(f"{type(self).__name__} has no gates: gate_init='chrono' needs LSTM or GRU")
        if gate_init == "chrono" and not bias:
            raise ValueError("gate_init='chrono' sets gate biases; it needs bias=True")
        if gate_init == "chrono" and (chrono_max is None or chrono_max <= 2):
            raise ValueError(
                f"gate_init='chrono' needs chrono_max (T_max, the longest time scale) > 2, got {chrono_max}"
            )
        super().__init__(  # type: ignore[call-arg]  # the torch.nn class: owns the parameters and the fused kernels
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=True,
            dropout=dropout,
            bidirectional=bidirectional,
            **torch_options,
        )
        self.impl = impl
        self.gate_init, self.chrono_max = gate_init, chrono_max
        self._init_gate_biases()

    def reset_parameters(self) -> None:
        """torch's initialisation, then the gate biases of ``gate_init``."""
        super().reset_parameters()  # type: ignore[misc]
        self._init_gate_biases()

    def _init_gate_biases(self) -> None:
        """Chrono (Tallec & Ollivier 2018): b_keep ~ log(U(1, T_max - 1)), b_input = -b_keep (LSTM)."""
        chrono_max = getattr(self, "chrono_max", None)  # also while torch's __init__ runs: not set yet
        if getattr(self, "gate_init", "default") != "chrono" or self.chrono_gates is None or chrono_max is None:
            return
        hidden = self.hidden_size
        keep, opposite = self.chrono_gates  # gate block indices: [forget, input] (LSTM), [update, None] (GRU)
        with torch.no_grad():
            for layer in range(self.num_layers):
                for direction in range(self._directions):
                    suffix = _suffix(layer, direction)
                    b_ih, b_hh = getattr(self, "bias_ih" + suffix), getattr(self, "bias_hh" + suffix)
                    keep_bias = torch.empty(hidden).uniform_(1.0, float(chrono_max - 1)).log_()  # (H,)
                    blocks = [(keep, keep_bias)] + ([(opposite, -keep_bias)] if opposite is not None else [])
                    for block, value in blocks:
                        rows = slice(block * hidden, (block + 1) * hidden)
                        b_ih[rows] = value.to(b_ih)
                        b_hh[rows] = 0.0

    def _step(
        self, x_proj: Tensor, state: tuple[Tensor, ...], w_hh: Tensor, b_hh: Tensor | None
    ) -> tuple[tuple[Tensor, ...], GateDict]:
        """One step of the cell: returns (new_state, gates)."""
        raise NotImplementedError

    def forward(
        self,
        x: Tensor,
        state: State | None = None,
        *,
        lengths: Tensor | None = None,
        return_gates: bool = False,
        final_state: bool = True,
    ) -> tuple[Tensor, State | None] | tuple[Tensor, State, GateDict]:
        """Run the layer over a batch of sequences.

        Args:
            x: (B, T, I) inputs.
            state: initial state, (L*D, B, H) — for LSTM a pair (h0, c0) — or None for zeros.
            lengths: optional (B,) integer lengths, 1 <= length <= T, for right-padded batches.
            return_gates: also return every gate activation at every step (reference path).
            final_state: False returns None for the final state, which lets a padded batch on a
                CPU skip packing (see the module docstring).

        Returns:
            ``(output, final_state)`` — output (B, T, D*H) — and, with ``return_gates``, a dict
            mapping each gate name to a tensor (L, D, B, T, H).
        """
        self._check_input(x, state, lengths)
        impl = self._resolve_impl(return_gates=return_gates)
        if (
            impl == "fused"
            and lengths is not None
            and not final_state
            and x.device.type == "cpu"
            and not self.proj_size
        ):
            return self._padded_forward(x, state, lengths), None
        if impl == "fused":
            return self._fused_forward(x, state, lengths)
        output, final, gates = self._reference_forward(x, state, lengths, return_gates)
        return (output, final, gates) if return_gates else (output, final)

    def first_layer_gates(self, x: Tensor, output: Tensor | None = None) -> GateDict:
        """The first layer's forward-direction gate activations at every step, without a loop over time.

        A step's gates depend only on its input and the hidden state before it, so given the first
        layer's hidden states h_1 .. h_T, one call of the step function over all B * T pairs
        (x_t, h_{t-1}) gives every gate: what ``forward(x, return_gates=True)`` gives at [0, 0]
        (tested to float32 rounding), in a few batched operations instead of the reference's loop.

        Args:
            x: (B, T, I) the layer's input.
            output: the layer's output for ``x`` (B, T, D*H), when a single-layer layer has already
                run: its forward half is the hidden states. Otherwise the fused kernel runs the
                first layer's forward direction for them.

        Returns:
            gate name -> (B, T, H).
        """
        if not self.gate_names or self.proj_size:
            raise ValueError(
                f"{type(self).__name__} has no gates to return" + (" with proj_size" if self.proj_size else "")
            )
        batch, steps, _ = x.shape
        weights = self._torch_weights(0, 0)
        w_ih, w_hh, *biases = weights
        b_ih, b_hh = biases or (None, None)
        if output is not None and self.num_layers == 1:
            hidden = output[..., : self.hidden_size]  # (B, T, H): forward direction first
        else:
            hidden = self._single_layer(x, None, weights)  # (B, T, H)
        previous = torch.cat([hidden.new_zeros(batch, 1, self.hidden_size), hidden[:, :-1]], dim=1)  # (B, T, H) h_{t-1}
        state = previous.reshape(batch * steps, self.hidden_size)  # (B*T, H)
        states = (
            (state, torch.zeros_like(state)) if self.has_cell_state else (state,)
        )  # c_{t-1} does not enter the gates
        x_proj = F.linear(x, w_ih, b_ih).reshape(batch * steps, -1)  # (B*T, G*H)
        _, gates = self._step(x_proj, states, w_hh, b_hh)
        return {name: g.reshape(batch, steps, self.hidden_size) for name, g in gates.items()}  # (B, T, H) each

    # -- checks ---------------------------------------------------------------------------------
    def _resolve_impl(self, *, return_gates: bool) -> str:
        if return_gates and not self.gate_names:
            raise ValueError(f"{type(self).__name__} has no gates to return; use LSTM or GRU")
        if return_gates and self.impl == "fused":
            raise ValueError(
                "impl='fused' cannot return gate activations (the fused kernels do not expose them); "
                "use impl='reference' or impl='auto'"
            )
        return "reference" if self.impl == "reference" or return_gates else "fused"

    def _check_input(self, x: Tensor, state: State | None, lengths: Tensor | None) -> None:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects input (batch, time, {self.input_size}), got {tuple(x.shape)}"
            )
        batch, steps = x.shape[0], x.shape[1]
        if state is not None:
            expected = (self.num_layers * self._directions, batch, self.hidden_size)
            parts = state if isinstance(state, tuple) else (state,)
            if len(parts) != (2 if self.has_cell_state else 1) or any(tuple(p.shape) != expected for p in parts):
                kind = "a pair (h0, c0), each" if self.has_cell_state else "h0"
                raise ValueError(f"initial state must be {kind} of shape {expected}")
        if lengths is not None:
            if lengths.shape != (batch,):
                raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
            if int(lengths.min()) < 1 or int(lengths.max()) > steps:
                raise ValueError(f"lengths must lie in [1, {steps}], got {lengths.tolist()}")

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    # -- fused ----------------------------------------------------------------------------------
    def _fused_forward(self, x: Tensor, state: State | None, lengths: Tensor | None) -> tuple[Tensor, State]:
        if lengths is None:
            return super().forward(x, state)  # type: ignore[misc]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, final_state = super().forward(packed, state)  # type: ignore[misc]
        output, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
        return output, final_state

    def _padded_forward(self, x: Tensor, state: State | None, lengths: Tensor) -> Tensor:
        """The fused kernels on the padded batch, one layer and direction at a time. x (B, T, I) -> (B, T, D*H).

        Under ``torch.onnx.export`` each layer is recorded as one ONNX recurrent node that takes the
        lengths itself (:mod:`rnnvision.ops.onnx_recurrence`)."""
        steps = x.shape[1]
        lengths = lengths.to(x.device)
        positions = torch.arange(steps, device=x.device)[None, :]  # (1, T)
        valid = positions < lengths[:, None]  # (B, T)
        # within each sequence step t <-> length-1-t; padded steps stay where they are (self-inverse)
        flip = torch.where(valid, lengths[:, None] - 1 - positions, positions)  # (B, T)
        layer_input = x
        for layer in range(self.num_layers):
            run = partial(self._padded_layer, layer_input, state, layer, flip, valid)
            layer_input = (
                self._onnx_layer(layer_input, state, layer, lengths, run) if torch.onnx.is_in_onnx_export() else run()
            )
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input

    def _padded_layer(self, x: Tensor, state: State | None, layer: int, flip: Tensor, valid: Tensor) -> Tensor:
        """One layer of :meth:`_padded_forward`: x (B, T, I), flip and valid (B, T) -> (B, T, D*H)."""
        outputs = []
        for direction in range(self._directions):
            k = layer * self._directions + direction
            weights = self._torch_weights(layer, direction)
            seq = x
            if direction:
                seq = seq.gather(1, flip[..., None].expand_as(seq))
            h0 = (
                None
                if state is None
                else tuple(s[k : k + 1] for s in (state if isinstance(state, tuple) else (state,)))
            )
            out = self._single_layer(seq, h0, weights)  # (B, T, H)
            if direction:
                out = out.gather(1, flip[..., None].expand_as(out))
            outputs.append(out)
        return torch.cat(outputs, dim=-1) * valid[..., None]  # (B, T, D*H), zero on the padding

    def _onnx_layer(
        self, x: Tensor, state: State | None, layer: int, lengths: Tensor, run: Callable[[], Tensor]
    ) -> Tensor:
        """One layer as one ONNX node (both directions); ``run()`` gives its values."""
        op, directions = self.onnx_op, self._directions
        suffixes = [_suffix(layer, d) for d in range(directions)]

        def stacked(name: str) -> Tensor:  # (D, G*H, ...) in ONNX's gate order
            return torch.stack([onnx_weights(getattr(self, name + suffix), op) for suffix in suffixes])

        bias = torch.cat([stacked("bias_ih"), stacked("bias_hh")], dim=1) if self.bias else None  # (D, 2*G*H)
        first = layer * directions
        parts = () if state is None else (state if isinstance(state, tuple) else (state,))
        initial_h, initial_c = ([s[first : first + directions] for s in parts] + [None, None])[:2]
        attributes = {
            "hidden_size_i": self.hidden_size,
            "direction_s": "bidirectional" if directions == 2 else "forward",
            **self._onnx_attributes(),
        }
        return OnnxPaddedLayer.apply(
            x, lengths, stacked("weight_ih"), stacked("weight_hh"), bias, initial_h, initial_c, run, op, attributes
        )

    def _onnx_attributes(self) -> dict[str, Any]:
        """The ONNX node's attributes beyond the hidden size and direction."""
        return {}

    def _torch_weights(self, layer: int, direction: int) -> list[Tensor]:
        """One layer and direction's weight_ih, weight_hh (and bias_ih, bias_hh), in the order torch's kernels take."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if self.bias else ("weight_ih", "weight_hh")
        return [getattr(self, name + _suffix(layer, direction)) for name in names]

    def _single_layer(self, x: Tensor, h0: tuple[Tensor, ...] | None, weights: list[Tensor]) -> Tensor:
        """One direction of one layer through torch's kernel. x (B, T, I), h0 (1, B, H) each or None -> (B, T, H)."""
        if h0 is None:
            zeros = x.new_zeros(1, x.shape[0], self.hidden_size)
            h0 = (zeros, zeros) if self.has_cell_state else (zeros,)
        return self._kernel(x, h0, weights)

    def _kernel(self, x: Tensor, h0: tuple[Tensor, ...], weights: list[Tensor]) -> Tensor:
        """torch's single-layer, one-direction, batch-first kernel of this cell -> outputs (B, T, H)."""
        raise NotImplementedError

    # -- reference ------------------------------------------------------------------------------
    def _reference_forward(
        self, x: Tensor, state: State | None, lengths: Tensor | None, return_gates: bool
    ) -> tuple[Tensor, State, GateDict]:
        batch, steps, _ = x.shape
        n_states = 2 if self.has_cell_state else 1
        if state is None:
            zeros = x.new_zeros(self.num_layers * self._directions, batch, self.hidden_size)
            initial = (zeros,) * n_states
        else:
            initial = state if isinstance(state, tuple) else (state,)
        # (B, T) True where the step is inside the sequence
        mask = (
            None if lengths is None else torch.arange(steps, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        )

        finals: list[tuple[Tensor, ...]] = []
        gates: dict[str, list[Tensor]] = {name: [] for name in self.gate_names}
        layer_input = x  # (B, T, I) for layer 0, then (B, T, D*H)
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self._directions):
                k = layer * self._directions + direction
                suffix = _suffix(layer, direction)
                w_ih, b_ih = getattr(self, "weight_ih" + suffix), getattr(self, "bias_ih" + suffix, None)
                w_hh, b_hh = getattr(self, "weight_hh" + suffix), getattr(self, "bias_hh" + suffix, None)
                out, final, dir_gates = recurrence_reference(
                    partial(self._step, w_hh=w_hh, b_hh=b_hh),
                    F.linear(layer_input, w_ih, b_ih),  # (B, T, G*H): the input term of every step at once
                    tuple(s[k] for s in initial),
                    reverse=bool(direction),
                    mask=mask,
                    keep_gates=return_gates,
                )
                outputs.append(out)
                finals.append(final)
                for name, value in dir_gates.items():
                    gates[name].append(value)
            layer_input = torch.cat(outputs, dim=-1)  # (B, T, D*H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)

        h_n, *c_n = (torch.stack([f[i] for f in finals]) for i in range(n_states))  # each (L*D, B, H)
        shape = (self.num_layers, self._directions, batch, steps, self.hidden_size)
        gate_tensors = {name: torch.stack(values).reshape(shape) for name, values in gates.items() if values}
        return layer_input, ((h_n, c_n[0]) if self.has_cell_state else h_n), gate_tensors


class RNN(_RecurrentLayer, nn.RNN):  # type: ignore[misc]  # forward takes lengths= and return_gates=
    """Multi-layer Elman RNN, ``h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)`` (or relu).

    Options as :class:`LSTM`, plus ``nonlinearity`` (``"tanh"`` or ``"relu"``).
    """

    onnx_op = "RNN"

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, *, nonlinearity: str = "tanh", **kwargs: Any
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, nonlinearity=nonlinearity, **kwargs)

    def _onnx_attributes(self) -> dict[str, Any]:
        return {"activations_s": [self.nonlinearity.capitalize()] * self._directions}

    def _step(
        self, x_proj: Tensor, state: tuple[Tensor, ...], w_hh: Tensor, b_hh: Tensor | None
    ) -> tuple[tuple[Tensor, ...], GateDict]:
        return (rnn_step(x_proj, state[0], w_hh, b_hh, nonlinearity=self.nonlinearity),), {}

    def _kernel(self, x: Tensor, h0: tuple[Tensor, ...], weights: list[Tensor]) -> Tensor:
        kernel = torch.rnn_tanh if self.nonlinearity == "tanh" else torch.rnn_relu
        return kernel(x, h0[0], weights, self.bias, 1, 0.0, self.training, False, True)[0]


class LSTM(_RecurrentLayer, nn.LSTM):  # type: ignore[misc]  # forward takes lengths= and return_gates=
    """Multi-layer LSTM with input, forget and output gates.

    Args:
        input_size, hidden_size, num_layers: as ``torch.nn.LSTM`` (always batch-first).
        bidirectional: add a right-to-left direction; outputs concatenate both.
        dropout: dropout on the outputs of every layer but the last (training only).
        bias: learn ``bias_ih`` and ``bias_hh``.
        impl: ``"auto"``, ``"fused"`` or ``"reference"`` (see the module docstring).
        gate_init: ``"default"`` (torch's) or ``"chrono"`` (see the module docstring).
        chrono_max: T_max of the chrono initialisation, the longest time scale (e.g. the sequence length).
    """

    gate_names = LSTM_GATES
    has_cell_state = True
    onnx_op = "LSTM"
    chrono_gates = (1, 0)  # blocks [i, f, g, o]: forget = 1, input = 0

    def _step(
        self, x_proj: Tensor, state: tuple[Tensor, ...], w_hh: Tensor, b_hh: Tensor | None
    ) -> tuple[tuple[Tensor, ...], GateDict]:
        h, c, gates = lstm_step(x_proj, state[0], state[1], w_hh, b_hh)
        return (h, c), gates

    def _kernel(self, x: Tensor, h0: tuple[Tensor, ...], weights: list[Tensor]) -> Tensor:
        # torch.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
        return torch.lstm(x, h0, weights, self.bias, 1, 0.0, self.training, False, True)[0]


class GRU(_RecurrentLayer, nn.GRU):  # type: ignore[misc]  # forward takes lengths= and return_gates=
    """Multi-layer GRU with reset and update gates; options as :class:`LSTM`."""

    gate_names = GRU_GATES
    chrono_gates = (1, None)  # blocks [r, z, n]: update = 1; its input side is 1 - z
    onnx_op = "GRU"

    def _onnx_attributes(self) -> dict[str, Any]:
        return {"linear_before_reset_i": 1}  # torch's form: r * (W_hn h + b_hn)

    def _step(
        self, x_proj: Tensor, state: tuple[Tensor, ...], w_hh: Tensor, b_hh: Tensor | None
    ) -> tuple[tuple[Tensor, ...], GateDict]:
        h, gates = gru_step(x_proj, state[0], w_hh, b_hh)
        return (h,), gates

    def _kernel(self, x: Tensor, h0: tuple[Tensor, ...], weights: list[Tensor]) -> Tensor:
        return torch.gru(x, h0[0], weights, self.bias, 1, 0.0, self.training, False, True)[0]


RECURRENT_LAYERS: dict[str, type[RNN | LSTM | GRU]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def make_recurrent(cell: str, input_size: int, hidden_size: int, **kwargs: Any) -> RNN | LSTM | GRU:
    """Build a sequence layer by cell name (``"rnn"``, ``"lstm"`` or ``"gru"``)."""
    if cell not in RECURRENT_LAYERS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(RECURRENT_LAYERS)}")
    return RECURRENT_LAYERS[cell](input_size, hidden_size, **kwargs)
