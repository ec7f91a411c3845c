"""First-order linear recurrences ``h_t = a_t * h_{t-1} + b_t`` computed in parallel over time.

Gated recurrences whose gates do not read the previous state — minGRU and minLSTM (Feng et al.
2024, "Were RNNs All We Needed?"), diagonal linear RNNs — reduce to this elementwise recurrence,
so a scan can evaluate every step at once instead of stepping through time. Everything here is
batch-first: ``log_a`` and ``b`` are (B, T, H), ``h0`` is (B, H), the result ``h`` is (B, T, H) with
``h[:, t]`` the state after step t. The coefficients come as ``log a`` (a > 0), which both scans
need and which the gated layers compute without rounding (``log(1 - sigmoid(k)) = -softplus(k)``).

- :func:`linear_scan_reference` — the specification: a loop over t in float32.
- :func:`linear_scan` with ``impl="chunked"`` — time is cut into chunks of C steps. Inside a
  chunk, with ``A_t = a_1 ... a_t = exp(cumsum(log a))`` counted from the chunk's start,
  ``h_t = A_t * (h_start + cumsum_{s<=t}(b_s / A_s))``: one cumulative sum and one cumulative
  product for every chunk at once, then a loop of T/C steps carries each chunk's final state into
  the next. ``1 / A_s`` grows as decay accumulates, so a chunk's total log-decay must stay inside
  the float range (``CHUNK_RANGE``), which is checked before the chunked path is used.
- ``impl="log"`` — the log-space scan of Heinsen 2023 ("Efficient parallelization of a ubiquitous
  sequential computation"), inside the same chunks: ``h_t = exp(L_t + logcumsumexp_{s<=t}(log b_s -
  L_s))`` with ``L = cumsum(log a)``. It has no range limit. ``b`` of either sign is scanned as its
  positive part minus its negative part (the recurrence is linear in ``b``). The rounding of
  ``L_t + (...)`` grows with ``|L|``; chunking keeps ``|L|`` small and the chunk's terms are
  computed in float64, so the result keeps float32 accuracy even under strong decay.
- ``impl="auto"`` — chunked where every chunk's decay fits that range, otherwise log; decided per
  call, and again for the backward pass.

The gradient is a custom autograd function: the backward of a linear recurrence is the same
recurrence run backwards in time (Martin & Cundy 2018, "Parallelizing linear recurrent neural
nets over sequence length"): ``g_t = dl/dh_t + a_{t+1} g_{t+1}``, then ``dl/db_t = g_t``,
``dl/dlog a_t = g_t a_t h_{t-1}`` and ``dl/dh_0 = a_1 g_1``. It is computed with the same scan, so
the backward saves nothing but ``log a``, ``h`` and ``h0`` and costs about as much as the forward.
Computation is in float32 whatever the input dtype (bfloat16 autocast included).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

ScanImpl = Literal["auto", "chunked", "log"]
SCAN_IMPLS = ("auto", "chunked", "log")
DEFAULT_CHUNK = 16
# The chunked scan divides by a chunk's accumulated decay A_s = exp(L_s); it stays finite, with room
# for b and the chunk's sums, while |L_s| <= CHUNK_RANGE (about 44: e^-44 = 8e-20).
CHUNK_RANGE = 0.5 * math.log(torch.finfo(torch.float32).max)


def linear_scan_reference(log_a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """The loop: ``h_t = exp(log_a_t) * h_{t-1} + b_t`` for t = 1..T, in float32 (or float64 if given).

    Args:
        log_a: (B, T, H) log of the decay coefficients.
        b: (B, T, H) inputs.
        h0: (B, H) state before the first step, or None for zeros.

    Returns:
        h: (B, T, H), ``h[:, t]`` the state after step t.
    """
    dtype = torch.promote_types(b.dtype, torch.float32)
    a = log_a.to(dtype).exp()
    h = b.new_zeros(b.shape[0], b.shape[2], dtype=dtype) if h0 is None else h0.to(dtype)
    states = []
    for a_t, b_t in zip(a.unbind(1), b.to(dtype).unbind(1)):  # each (B, H)
        h = a_t * h + b_t
        states.append(h)
    return torch.stack(states, dim=1)  # (B, T, H)


def linear_scan(
    log_a: Tensor, b: Tensor, h0: Tensor | None = None, *, impl: ScanImpl = "auto", chunk: int = DEFAULT_CHUNK
) -> Tensor:
    """``h_t = exp(log_a_t) * h_{t-1} + b_t`` by a parallel scan; same contract as :func:`linear_scan_reference`.

    Args:
        log_a: (B, T, H) log of the decay coefficients (finite).
        b: (B, T, H) inputs, any sign.
        h0: (B, H) initial state, or None for zeros.
        impl: ``"chunked"``, ``"log"`` or ``"auto"`` (see the module docstring). ``"chunked"``
            raises ``ValueError`` when a chunk's decay leaves the float32 range.
        chunk: steps per chunk.

    Returns:
        h: (B, T, H) in the dtype of ``b``.
    """
    if impl not in SCAN_IMPLS:
        raise ValueError(f"impl must be one of {SCAN_IMPLS}, got {impl!r}")
    if log_a.dim() != 3 or log_a.shape != b.shape:
        raise ValueError(f"log_a and b must both be (batch, time, hidden); got {tuple(log_a.shape)} and {tuple(b.shape)}")
    if h0 is not None and h0.shape != (b.shape[0], b.shape[2]):
        raise ValueError(f"h0 must be (batch, hidden) = {(b.shape[0], b.shape[2])}, got {tuple(h0.shape)}")
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    h0 = b.new_zeros(b.shape[0], b.shape[2]) if h0 is None else h0
    h = _LinearScan.apply(log_a.float(), b.float(), h0.float(), impl, chunk)
    return h.to(b.dtype)


class _LinearScan(torch.autograd.Function):
    """Forward: the chunked or log scan. Backward: the same scan backwards in time."""

    @staticmethod
    def forward(ctx, log_a: Tensor, b: Tensor, h0: Tensor, impl: str, chunk: int) -> Tensor:
        h = _scan(log_a, b, h0, impl=impl, chunk=chunk)
        ctx.save_for_backward(log_a, h, h0)
        ctx.impl, ctx.chunk = impl, chunk
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: Tensor):
        log_a, h, h0 = ctx.saved_tensors
        # g_t = grad_h_t + a_{t+1} g_{t+1}: the recurrence with time reversed and a shifted by one.
        log_a_next = F.pad(log_a[:, 1:], (0, 0, 0, 1))  # (B, T, H), a_{t+1}; nothing follows the last step
        g = _scan(log_a_next.flip(1), grad_h.flip(1), torch.zeros_like(h0), impl=ctx.impl, chunk=ctx.chunk).flip(1)
        a = log_a.exp()
        h_prev = torch.cat([h0[:, None], h[:, :-1]], dim=1)  # (B, T, H), h_{t-1}
        grad_log_a = g * a * h_prev
        grad_h0 = g[:, 0] * a[:, 0]
        return grad_log_a, g, grad_h0, None, None


def _scan(log_a: Tensor, b: Tensor, h0: Tensor, *, impl: str, chunk: int) -> Tensor:
    """Both parallel forms, without autograd. log_a, b (B, T, H); h0 (B, H) -> h (B, T, H)."""
    batch, steps, hidden = b.shape
    chunk = min(chunk, steps)
    chunks = -(-steps // chunk)
    pad = chunks * chunk - steps  # padded steps have a = 1, b = 0: they change nothing
    log_a = F.pad(log_a, (0, 0, 0, pad)).view(batch, chunks, chunk, hidden)  # (B, N, C, H)
    b = F.pad(b, (0, 0, 0, pad)).view(batch, chunks, chunk, hidden)  # (B, N, C, H)
    cum_log_a = log_a.cumsum(2)  # (B, N, C, H): L_t, from each chunk's start
    low, high = torch.aminmax(cum_log_a)
    fits = bool(low >= -CHUNK_RANGE) and bool(high <= CHUNK_RANGE)
    if impl == "auto":
        impl = "chunked" if fits else "log"
    elif impl == "chunked" and not fits:
        raise ValueError(
            f"impl='chunked': the decay within a chunk of {chunk} steps leaves the float32 range "
            f"(below e^-{CHUNK_RANGE:.0f}); use impl='auto' or 'log', or a smaller chunk"
        )
    decay = cum_log_a.exp()  # A_t
    if impl == "chunked":
        local = _chunk_cumsum(decay, b)  # each chunk from a zero start
    else:  # float64 inside: the rounding of L_t + (...) grows with |L|, which strong decay makes large
        local = _chunk_logcumsumexp(log_a.double().cumsum(2), b.double()).to(b.dtype)

    # Carry: the state entering chunk n is (A_end * state + local_end) of chunk n - 1.
    starts = torch.empty(batch, chunks, hidden, dtype=b.dtype, device=b.device)  # (B, N, H)
    state = h0
    decay_end, local_end = decay[:, :, -1], local[:, :, -1]  # (B, N, H)
    for n in range(chunks):
        starts[:, n] = state
        state = torch.addcmul(local_end[:, n], decay_end[:, n], state)
    h = local.addcmul_(decay, starts[:, :, None])  # (B, N, C, H)
    return h.view(batch, chunks * chunk, hidden)[:, :steps]


def _chunk_cumsum(decay: Tensor, b: Tensor) -> Tensor:
    """Each chunk from a zero state: ``A_t * cumsum(b_s / A_s)``. (B, N, C, H) -> (B, N, C, H)."""
    return torch.div(b, decay).cumsum_(2).mul_(decay)


def _chunk_logcumsumexp(cum_log_a: Tensor, b: Tensor) -> Tensor:
    """Each chunk from a zero state, in log space (Heinsen 2023). (B, N, C, H) -> (B, N, C, H)."""
    local = _positive_scan(cum_log_a, b.clamp_min(0))
    if bool((b < 0).any()):
        local -= _positive_scan(cum_log_a, b.neg().clamp_min_(0))
    return local


def _positive_scan(cum_log_a: Tensor, b: Tensor) -> Tensor:
    """``exp(L_t + logcumsumexp_{s<=t}(log b_s - L_s))`` for b >= 0 (log 0 = -inf adds nothing)."""
    return torch.logcumsumexp(b.log() - cum_log_a, dim=2).add_(cum_log_a).exp_()
