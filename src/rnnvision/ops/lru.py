"""The LRU's recurrence as functions of tensors (Orvieto et al. 2023; the layer is :class:`rnnvision.layers.lru.LRU`).

``x_t = lam * x_{t-1} + drive_t`` with a time-invariant complex diagonal ``lam``: the loop on complex
tensors (the specification) and the chunked scan on real (re, im) pairs with its hand-written
backward (the fast path; see the layer's docstring for the layout).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rnnvision.ops.scan import complex_diagonal_scan, default_chunk


def lru_recurrence_reference(lam: Tensor, drive: Tensor, h0: Tensor) -> Tensor:
    """The loop: ``x_t = lam * x_{t-1} + drive_t``. lam (N,), drive (B, T, N), h0 (B, N), all complex -> (B, T, N)."""
    lam = lam.to(drive.dtype)
    x, states = h0, []
    for d_t in drive.unbind(1):  # each (B, N)
        x = lam * x + d_t
        states.append(x)
    return torch.stack(states, dim=1)  # (B, T, N)


def lru_recurrence(lam: Tensor, drive: Tensor, h0: Tensor | None = None, *, chunk: int | None = None) -> Tensor:
    """The recurrence of :func:`lru_recurrence_reference` by the chunked scan, on real pairs (the fast path's form).

    Args:
        lam: (2, N) real and imaginary parts of lambda.
        drive: (B, T, 2, N) real and imaginary parts of the drive, planes ``[:, :, 0]`` and ``[:, :, 1]``.
        h0: (B, 2, N) the state before the first step, or None for zeros.
        chunk: steps per chunk; default about sqrt(T).

    Returns:
        x: (B, T, 2, N) in float32 (float64 for float64 drive), differentiable in all three inputs.
    """
    steps, n = drive.shape[1], drive.shape[3]
    return PairScan.apply(lam, drive, h0, n, min(chunk or default_chunk(steps), steps))


class PairScan(torch.autograd.Function):
    """The LRU's recurrence on real pairs: units ``[:split]`` run left to right from h0, units ``[split:]``
    right to left from zero. Backward: the same scans in the other direction, with conj(lam).

    Shapes: lam (2, S), drive (B, T, 2, S), h0 (B, 2, split) or None -> x (B, T, 2, S), computed in
    float32 (float64 for float64 drive). With g_t = dL/dx_t as the pair (dL/dRe, dL/dIm), read as the
    complex number g_re + i g_im (PyTorch's conjugate Wirtinger convention): left-to-right units have
    ``g_t = grad_t + conj(lam) g_{t+1}``, ``dL/ddrive_t = g_t``, ``dL/dh0 = conj(lam) g_1`` and
    ``dL/dlam = sum_t g_t conj(x_{t-1})``; right-to-left units the same with t+1 and t-1 swapped.
    Saved for backward: x (which the readout keeps anyway), lam and h0.
    """

    @staticmethod
    def forward(ctx: Any, lam: Tensor, drive: Tensor, h0: Tensor | None, split: int, chunk: int) -> Tensor:
        dtype = torch.promote_types(drive.dtype, torch.float32)
        lam = lam.to(dtype)
        if drive.dtype == dtype:
            x = torch.empty(drive.shape, dtype=dtype, device=drive.device)  # (B, T, 2, S)
        else:  # bfloat16 under autocast: one conversion, then the scan in place (mixed-dtype addcmul is slower)
            drive = x = drive.to(dtype)
        h0 = None if h0 is None else h0.to(dtype)
        complex_diagonal_scan(drive[..., :split], lam[:, :split], h0, chunk=chunk, out=x[..., :split])
        if split < x.shape[-1]:
            complex_diagonal_scan(
                drive[..., split:], lam[:, split:], None, chunk=chunk, reverse=True, out=x[..., split:]
            )
        ctx.save_for_backward(lam, x, h0)
        ctx.split, ctx.chunk = split, chunk
        return x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_x: Tensor) -> tuple[Tensor, Tensor, Tensor | None, None, None]:
        lam, x, h0 = ctx.saved_tensors
        split, chunk = ctx.split, ctx.chunk
        conj = lam.clone()
        conj[1].neg_()  # (2, S): conj(lam)
        g = torch.empty_like(x)  # (B, T, 2, S)
        complex_diagonal_scan(grad_x[..., :split], conj[:, :split], None, chunk=chunk, reverse=True, out=g[..., :split])
        grad_lam = torch.empty_like(lam)  # (2, S)
        grad_lam[:, :split] = _sum_times_conj(g[:, 1:, :, :split], x[:, :-1, :, :split])  # x_{t-1}
        if h0 is not None:
            grad_lam[:, :split] += _sum_times_conj(g[:, :1, :, :split], h0[:, None].to(g.dtype))
        if split < x.shape[-1]:
            complex_diagonal_scan(grad_x[..., split:], conj[:, split:], None, chunk=chunk, out=g[..., split:])
            grad_lam[:, split:] = _sum_times_conj(g[:, :-1, :, split:], x[:, 1:, :, split:])  # x_{t+1}
        grad_h0 = None
        if h0 is not None and ctx.needs_input_grad[2]:
            (c_re, c_im), g_re, g_im = conj[:, :split], g[:, 0, 0, :split], g[:, 0, 1, :split]
            grad_h0 = torch.stack([c_re * g_re - c_im * g_im, c_im * g_re + c_re * g_im], dim=1)  # (B, 2, split)
        return grad_lam, g, grad_h0, None, None


def _sum_times_conj(g: Tensor, x: Tensor) -> Tensor:
    """sum over (B, T) of g * conj(x) on real pairs: g, x (B, T, 2, H) -> (2, H).

    One batch row at a time into two reused buffers, which stay in cache: about twice as fast on
    our CPU as whole-tensor products (each a fresh (B, T, 2, H) temporary)."""
    row, plane = g.new_empty(g.shape[1:]), g.new_empty(g.shape[1], g.shape[3])  # (T, 2, H), (T, H)
    real, imag = g.new_zeros(g.shape[3]), g.new_zeros(g.shape[3])  # (H,)
    for g_b, x_b in zip(g, x):  # each (T, 2, H)
        real += torch.mul(g_b, x_b, out=row).sum(dim=(0, 1))  # g_re x_re + g_im x_im
        imag += torch.mul(g_b[:, 1], x_b[:, 0], out=plane).sum(dim=0)  # g_im x_re
        imag -= torch.mul(g_b[:, 0], x_b[:, 1], out=plane).sum(dim=0)  # - g_re x_im
    return torch.stack([real, imag])
