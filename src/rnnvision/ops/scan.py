"""First-order linear recurrences ``h_t = a_t * h_{t-1} + b_t`` computed without a step-by-step loop.

Gated recurrences whose gates do not read the previous state — minGRU and minLSTM (Feng et al.
2024, "Were RNNs All We Needed?"), diagonal linear RNNs — reduce to this elementwise recurrence,
so every step can be computed at once instead of one after another. Everything here is
batch-first: ``log_a`` and ``b`` are (B, T, H), ``h0`` is (B, H), the result ``h`` is (B, T, H) with
``h[:, t]`` the state after step t. The coefficients come as ``log a`` (a > 0), which the log-space
scan needs and which the gated layers compute without rounding (``log(1 - sigmoid(k)) = -softplus(k)``).

- :func:`linear_scan_reference` — the specification: a loop over the T steps, in float32.
- :func:`linear_scan` with ``impl="chunked"`` — a two-level (blocked) scan. Time is cut into N
  chunks of C steps, C about sqrt(T). (1) Every chunk is scanned from a zero state at once: a loop
  over the C positions whose every operation covers all N chunks, which also accumulates the
  cumulative product ``A_c = a_1 ... a_c`` inside each chunk. (2) A loop over the N chunks carries
  the state across chunk boundaries: ``start_{n+1} = A_end,n * start_n + local_end,n``.
  (3) ``h = local + A * start`` everywhere in one operation. That is C + N (about 2 sqrt(T))
  operations instead of T, on the same data, with no division and so no range limit: it rounds
  like the loop.
- ``impl="log"`` — the log-space scan of Heinsen 2023 ("Efficient parallelization of a ubiquitous
  sequential computation") for step (1): ``local_t = exp(L_t + logcumsumexp_{s<=t}(log b_s - L_s))``
  with ``L = cumsum(log a)``, a fixed number of whole-tensor operations whatever the chunk length,
  the form that parallel hardware runs in O(log T) depth. ``b`` of either sign is scanned as its
  positive part minus its negative part (the recurrence is linear in ``b``). The rounding of
  ``L_t + (...)`` grows with ``|L|``, so the chunk's terms are computed in float64.
- ``impl="auto"`` — chunked, the faster of the two on a CPU (see BENCHMARKS.md).

The gradient is a custom autograd function: the backward of a linear recurrence is the same
recurrence run backwards in time (Martin & Cundy 2018, "Parallelizing linear recurrent neural
nets over sequence length"): ``g_t = dl/dh_t + a_{t+1} g_{t+1}``, then ``dl/db_t = g_t``,
``dl/dlog a_t = g_t a_t h_{t-1}`` and ``dl/dh_0 = a_1 g_1``. It runs on the same scan, so the
backward saves only ``log a``, ``h`` and ``h0`` and costs about as much as the forward.
Computation is in float32 for float32 and narrower inputs (bfloat16 autocast included), float64 for float64.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnvision.impl import ScanImpl, check_impl


def default_chunk(steps: int) -> int:
    """sqrt(T) rounded: balances the C in-chunk steps against the T/C chunk-to-chunk steps."""
    return max(1, round(math.sqrt(steps)))


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
    log_a: Tensor, b: Tensor, h0: Tensor | None = None, *, impl: ScanImpl = "auto", chunk: int | None = None
) -> Tensor:
    """``h_t = exp(log_a_t) * h_{t-1} + b_t`` by a scan; same contract as :func:`linear_scan_reference`.

    Args:
        log_a: (B, T, H) log of the decay coefficients (finite).
        b: (B, T, H) inputs, any sign.
        h0: (B, H) initial state, or None for zeros.
        impl: ``"chunked"``, ``"log"`` or ``"auto"`` (see the module docstring).
        chunk: steps per chunk; default :func:`default_chunk`.

    Returns:
        h: (B, T, H) in the dtype of ``b``.
    """
    check_impl(impl, ScanImpl)
    if log_a.dim() != 3 or log_a.shape != b.shape or b.shape[1] < 1:
        raise ValueError(
            f"log_a and b must both be (batch, time >= 1, hidden); got {tuple(log_a.shape)} and {tuple(b.shape)}"
        )
    if h0 is not None and h0.shape != (b.shape[0], b.shape[2]):
        raise ValueError(f"h0 must be (batch, hidden) = {(b.shape[0], b.shape[2])}, got {tuple(h0.shape)}")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    chunk = min(chunk or default_chunk(b.shape[1]), b.shape[1])
    h0 = b.new_zeros(b.shape[0], b.shape[2]) if h0 is None else h0
    dtype = torch.promote_types(b.dtype, torch.float32)  # bfloat16 and float16 scan in float32
    h = _LinearScan.apply(log_a.to(dtype), b.to(dtype), h0.to(dtype), "log" if impl == "log" else "chunked", chunk)
    return h.to(b.dtype)


class _LinearScan(torch.autograd.Function):
    """Forward: the chunked or log scan. Backward: the same scan backwards in time."""

    @staticmethod
    def forward(ctx: Any, log_a: Tensor, b: Tensor, h0: Tensor, impl: str, chunk: int) -> Tensor:
        coef = log_a if impl == "log" else log_a.exp()  # what the scan reads: log a, or a
        h = _scan(coef, b, h0, impl=impl, chunk=chunk, reverse=False)
        ctx.save_for_backward(coef, h, h0)
        ctx.impl, ctx.chunk = impl, chunk
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_h: Tensor) -> tuple[Tensor, Tensor, Tensor, None, None]:
        coef, h, h0 = ctx.saved_tensors
        # g_t = grad_h_t + a_{t+1} g_{t+1}: the recurrence run backwards, with a shifted by one step;
        # nothing follows the last step (its coefficient multiplies the zero state entering there)
        coef_next = F.pad(coef[:, 1:], (0, 0, 0, 1))  # (B, T, H)
        g = _scan(coef_next, grad_h.contiguous(), torch.zeros_like(h0), impl=ctx.impl, chunk=ctx.chunk, reverse=True)
        a = coef.exp() if ctx.impl == "log" else coef
        grad_log_a = g * a  # times h_{t-1}:
        grad_log_a[:, 1:] *= h[:, :-1]
        grad_log_a[:, 0] *= h0
        return grad_log_a, g, g[:, 0] * a[:, 0], None, None


def complex_diagonal_scan(
    b: Tensor, lam: Tensor, h0: Tensor | None, *, chunk: int, reverse: bool = False, out: Tensor | None = None
) -> Tensor:
    """``h_t = lam * h_{t-1} + b_t`` for a complex diagonal ``lam``, the same at every step, in real pairs;
    no autograd (the linear time-invariant recurrence of the LRU).

    The chunked scan of :func:`linear_scan` specialised to a time-invariant complex coefficient and
    written on (real, imaginary) planes, so that every operation is a real ``addcmul`` on a view:
    no complex tensor, no padding, flip or permute copy. Time is cut into chunks of C steps (the
    last one shorter when C does not divide T). (1) The end of every chunk's scan from a zero state,
    by a loop over its C positions whose every operation covers all chunks and writes only a
    (B, chunks, 2, H) accumulator. (2) A loop over the chunks carries the state across their
    boundaries: ``start_{n+1} = lam^C start_n + end_n``. (3) The loop over the C positions again,
    from the true starts, writing h: ``h_c = b_c + lam h_{c-1}``. About 2 C + T/C small steps (4 real
    operations each), one read of b and one write of h; no division, so it rounds like the loop
    whatever |lam|.

    Args:
        b: (B, T, 2, H) real, any float dtype; ``b[:, t, 0]`` and ``b[:, t, 1]`` the real and
            imaginary parts of the input at step t. Views are fine (a slice of the H dim).
        lam: (2, H) real and imaginary parts of the coefficients.
        h0: (B, 2, H) the state entering before the first step (after the last one when
            ``reverse``, which runs ``h_t = lam h_{t+1} + b_t``), or None for zeros.
        chunk: C, steps per chunk.
        out: (B, T, 2, H) where to write h (``b`` itself to scan in place); None for a new tensor
            in lam's dtype.

    Returns:
        h (B, T, 2, H): ``out``, or the new tensor.
    """
    batch, steps, _, hidden = b.shape
    out = torch.empty(b.shape, dtype=lam.dtype, device=b.device) if out is None else out
    chunk = max(1, min(chunk, steps))
    full = steps // chunk * chunk
    powers = _pair_powers(lam, chunk)  # (C+1, 2, H): lam^0 .. lam^C
    blocks = [
        (
            b[:, :full].view(batch, full // chunk, chunk, 2, hidden),
            out[:, :full].view(batch, full // chunk, chunk, 2, hidden),
        )
    ]
    if full < steps:  # the shorter last chunk, (B, 1, T - N C, 2, H)
        blocks.append((b[:, full:].unsqueeze(1), out[:, full:].unsqueeze(1)))
    state = h0
    for block, out_block in reversed(blocks) if reverse else blocks:  # each (B, N, C, 2, H)
        state = _pair_blocks(block, out_block, powers, state, reverse)
    return out


def _pair_powers(lam: Tensor, chunk: int) -> Tensor:
    """lam (2, H) real pairs -> (C+1, 2, H) real pairs of lam^0 .. lam^C, multiplied in double precision."""
    wide = torch.complex(lam[0].double(), lam[1].double())  # (H,)
    powers = torch.cat([torch.ones_like(wide)[None], wide[None].expand(chunk, -1)]).cumprod(0)  # (C+1, H)
    return torch.stack([powers.real, powers.imag], dim=1).to(lam.dtype)  # (C+1, 2, H)


def _pair_fma(out: Tensor, base: Tensor, a: Tensor, z: Tensor) -> None:
    """out = base + a * z in complex arithmetic on real pairs (..., 2, H), broadcastable; out may be base, not z.

    Four ``addcmul`` on single planes (re: a_re z_re - a_im z_im; im: a_im z_re + a_re z_im): measured
    faster on our CPU than two over both planes with a broadcast plane of z."""
    for part, (first, second) in enumerate(((0, 1), (1, 0))):
        torch.addcmul(base[..., part, :], a[..., first, :], z[..., 0, :], out=out[..., part, :])
        out[..., part, :].addcmul_(a[..., second, :], z[..., 1, :], value=-1.0 if part == 0 else 1.0)


def _pair_blocks(block: Tensor, out: Tensor, powers: Tensor, state: Tensor | None, reverse: bool) -> Tensor | None:
    """Scan the chunks of ``block`` (B, N, C, 2, H) into ``out`` (same shape) from ``state`` (B, 2, H)
    or None; returns the state after the last chunk in scan order."""
    batch, chunks, length, _, hidden = block.shape
    lam = powers[1]  # (2, H)
    order = range(length - 1, -1, -1) if reverse else range(length)  # positions in scan order
    # (1) the end of every chunk's scan from a zero state, all chunks at once
    end, spare = out.new_empty(batch, chunks, 2, hidden), out.new_empty(batch, chunks, 2, hidden)  # (B, N, 2, H)
    end.copy_(block[:, :, order[0]])
    for c in order[1:]:
        _pair_fma(spare, block[:, :, c], lam, end)
        end, spare = spare, end
    # (2) the state entering each chunk, carried from chunk to chunk
    starts = out.new_zeros(batch, chunks, 2, hidden)  # (B, N, 2, H)
    for n in reversed(range(chunks)) if reverse else range(chunks):
        if state is None:
            state = end[:, n]
            continue
        starts[:, n] = state
        state = torch.empty_like(state)
        _pair_fma(state, end[:, n], powers[length], starts[:, n])
    # (3) every position from the true starts
    previous = starts
    for c in order:
        _pair_fma(out[:, :, c], block[:, :, c], lam, previous)
        previous = out[:, :, c]
    return state


def _scan(coef: Tensor, b: Tensor, h0: Tensor, *, impl: str, chunk: int, reverse: bool) -> Tensor:
    """Both scans, without autograd. coef (B, T, H) is a (chunked) or log a (log); b (B, T, H);
    h0 (B, H) -> h (B, T, H).

    ``reverse`` runs ``h_t = a_t h_{t+1} + b_t`` from the last step to the first, ``h0`` entering
    after the last step.
    """
    batch, steps, hidden = b.shape
    chunks = -(-steps // chunk)
    if impl == "log":
        local, decay = _log_chunks(coef, b, chunks, chunk, reverse)
    else:
        local, decay = _blocked_chunks(coef, b, chunks, chunk, reverse)
    # local, decay (B, N, C, H): each chunk scanned from a zero state, and its products of a
    edge = 0 if reverse else chunk - 1  # where each chunk ends, in scan order
    starts = torch.empty(batch, chunks, hidden, dtype=b.dtype, device=b.device)  # (B, N, H)
    state = h0
    for n in reversed(range(chunks)) if reverse else range(chunks):
        starts[:, n] = state
        state = torch.addcmul(local[:, n, edge], decay[:, n, edge], state)
    h = local.addcmul_(decay, starts[:, :, None])  # (B, N, C, H)
    return h.view(batch, chunks * chunk, hidden)[:, :steps]


def _padded(x: Tensor, chunks: int, chunk: int, value: float) -> Tensor:
    """A new (B, N, C, H) tensor holding x (B, T, H), the steps past T filled with ``value``."""
    batch, steps, hidden = x.shape
    out = x.new_empty(batch, chunks * chunk, hidden)
    out[:, :steps] = x
    out[:, steps:] = value
    return out.view(batch, chunks, chunk, hidden)


def _blocked_chunks(a: Tensor, b: Tensor, chunks: int, chunk: int, reverse: bool) -> tuple[Tensor, Tensor]:
    """Every chunk from a zero state by a loop over its C positions, all chunks at once.

    Padded steps have a = 1 and b = 0, so they change nothing. Returns (local, decay), each
    (B, N, C, H): ``local`` the chunk's states from a zero start, ``decay`` the running product of
    a from the chunk's start (in scan order).
    """
    local = _padded(b, chunks, chunk, 0.0)
    decay = _padded(a, chunks, chunk, 1.0)
    positions = range(chunk - 2, -1, -1) if reverse else range(1, chunk)
    for c in positions:
        prev = c + 1 if reverse else c - 1
        local[:, :, c].addcmul_(decay[:, :, c], local[:, :, prev])  # decay[c] is still a[c] here
        decay[:, :, c].mul_(decay[:, :, prev])
    return local, decay


def _log_chunks(log_a: Tensor, b: Tensor, chunks: int, chunk: int, reverse: bool) -> tuple[Tensor, Tensor]:
    """Every chunk from a zero state in log space (Heinsen 2023); same contract as :func:`_blocked_chunks`."""
    log_a, b = _padded(log_a, chunks, chunk, 0.0), _padded(b, chunks, chunk, 0.0)  # (B, N, C, H)
    if reverse:
        log_a, b = log_a.flip(2), b.flip(2)
    cum_log_a = log_a.double().cumsum(2)  # L, float64: the rounding of L_t + (...) grows with |L|
    b = b.double()
    local = _positive_scan(cum_log_a, b.clamp_min(0))
    if bool((b < 0).any()):
        local -= _positive_scan(cum_log_a, b.neg().clamp_min_(0))
    local, decay = local.to(log_a.dtype), cum_log_a.exp().to(log_a.dtype)
    return (local.flip(2), decay.flip(2)) if reverse else (local, decay)


def _positive_scan(cum_log_a: Tensor, b: Tensor) -> Tensor:
    """``exp(L_t + logcumsumexp_{s<=t}(log b_s - L_s))`` for b >= 0 (log 0 = -inf adds nothing)."""
    return torch.logcumsumexp(b.log() - cum_log_a, dim=2).add_(cum_log_a).exp_()
