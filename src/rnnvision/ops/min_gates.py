"""The gates of minGRU and minLSTM as the coefficients of ``h_t = a_t h_{t-1} + b_t``.

Feng et al. 2024 ("Were RNNs All We Needed?"), with the candidate activation of their log-space
version (Appendix B), ``g(v) = v + 1/2`` for v >= 0 and ``σ(v)`` below, which keeps ``b`` positive:

- minGRU, x_proj = [k_z, k_h]: ``log a = log(1 - σ(k_z)) = -softplus(k_z)``, ``b = σ(k_z) g(k_h)``.
- minLSTM, x_proj = [k_f, k_i, k_h]: with ``d = softplus(-k_f) - softplus(-k_i) = log i - log f``,
  ``log a = log(f / (f + i)) = -softplus(d)``, ``b = i / (f + i) g(k_h) = σ(d) g(k_h)``.

``*_coefficients_reference`` are these formulas written with autograd ops (the specification);
``mingru_coefficients`` / ``minlstm_coefficients`` compute the same values with hand-written
derivatives and without ``torch.where``, which spares autograd's whole-tensor temporaries — on a
CPU these elementwise passes, not the matrix products, dominate a minGRU layer. Shapes: x_proj (B, T, G*H) -> (log a, b), each (B, T, H).

``mingru_step`` / ``minlstm_step`` take one step of the recurrence from the gates themselves (the
layers' ``impl="reference"`` loop and their ``step`` for streaming); the scans of
:mod:`rnnvision.ops.scan` over these coefficients are the fast paths.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def g(v: Tensor) -> Tensor:
    """The candidate activation: ``v + 1/2`` for v >= 0, ``σ(v)`` below; continuous and positive."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def mingru_coefficients_reference(x_proj: Tensor) -> tuple[Tensor, Tensor]:
    """x_proj (B, T, 2H) -> (log a, b), each (B, T, H): the formulas, differentiated by autograd."""
    k_z, k_h = x_proj.chunk(2, dim=-1)
    return -F.softplus(k_z), torch.sigmoid(k_z) * g(k_h)


def minlstm_coefficients_reference(x_proj: Tensor) -> tuple[Tensor, Tensor]:
    """x_proj (B, T, 3H) -> (log a, b), each (B, T, H): the formulas, differentiated by autograd."""
    k_f, k_i, k_h = x_proj.chunk(3, dim=-1)
    d = F.softplus(-k_f) - F.softplus(-k_i)  # log i - log f
    return -F.softplus(d), torch.sigmoid(d) * g(k_h)


def mingru_coefficients(x_proj: Tensor) -> tuple[Tensor, Tensor]:
    """Same values as :func:`mingru_coefficients_reference`, with a hand-written backward."""
    return _MinGRUCoefficients.apply(x_proj)


def minlstm_coefficients(x_proj: Tensor) -> tuple[Tensor, Tensor]:
    """Same values as :func:`minlstm_coefficients_reference`, with a hand-written backward."""
    return _MinLSTMCoefficients.apply(x_proj)


def _candidate(k_h: Tensor) -> tuple[Tensor, Tensor]:
    """(g(k_h), g'(k_h)), without ``torch.where`` (an order of magnitude slower than arithmetic on CPU).

    With s = σ(min(k, 0)): g = s + max(k, 0), and g' = s (1 - s) + 3/4 [k >= 0] (s = 1/2 there).
    """
    s = torch.sigmoid(k_h.clamp(max=0))
    positive = torch.ge(k_h, 0, out=torch.empty_like(s))  # 1.0 / 0.0
    return s + k_h.clamp(min=0), s.addcmul(s, s, value=-1).add_(positive, alpha=0.75)


class _MinGRUCoefficients(torch.autograd.Function):
    """minGRU coefficients. With z = σ(k_z):  d log a / d k_z = -z,  d b / d k_z = z (1 - z) g,
    d b / d k_h = z g'."""

    @staticmethod
    def forward(ctx: Any, x_proj: Tensor) -> tuple[Tensor, Tensor]:
        k_z, k_h = x_proj.chunk(2, dim=-1)  # each (B, T, H)
        z = torch.sigmoid(k_z)
        g_h, slope = _candidate(k_h)
        ctx.save_for_backward(z, g_h, slope)
        return F.softplus(k_z).neg_(), z * g_h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_log_a: Tensor, grad_b: Tensor) -> Tensor:
        z, g_h, slope = ctx.saved_tensors
        grad = z.new_empty(*z.shape[:-1], 2 * z.shape[-1])  # (B, T, 2H)
        grad_k_z, grad_k_h = grad.chunk(2, dim=-1)
        dz = grad_b * g_h  # dl/dz through b
        dz.addcmul_(dz, z, value=-1).sub_(grad_log_a)  # (1 - z) dl/dz - dl/dlog a
        torch.mul(dz, z, out=grad_k_z)
        torch.mul(grad_b * z, slope, out=grad_k_h)
        return grad


class _MinLSTMCoefficients(torch.autograd.Function):
    """minLSTM coefficients. With s = σ(d):  d log a / d d = -s,  d b / d d = s (1 - s) g,
    d d / d k_f = -σ(-k_f),  d d / d k_i = σ(-k_i),  d b / d k_h = s g'."""

    @staticmethod
    def forward(ctx: Any, x_proj: Tensor) -> tuple[Tensor, Tensor]:
        k_f, k_i, k_h = x_proj.chunk(3, dim=-1)  # each (B, T, H)
        d = F.softplus(-k_f) - F.softplus(-k_i)  # log i - log f
        s = torch.sigmoid(d)
        g_h, slope = _candidate(k_h)
        ctx.save_for_backward(x_proj, s, g_h, slope)
        return F.softplus(d).neg_(), s * g_h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_log_a: Tensor, grad_b: Tensor) -> Tensor:
        x_proj, s, g_h, slope = ctx.saved_tensors
        k_f, k_i, _ = x_proj.chunk(3, dim=-1)
        grad = torch.empty_like(x_proj)  # (B, T, 3H)
        grad_k_f, grad_k_i, grad_k_h = grad.chunk(3, dim=-1)
        dd = grad_b * g_h  # dl/ds through b
        dd.addcmul_(dd, s, value=-1).sub_(grad_log_a).mul_(s)  # dl/dd = s ((1 - s) dl/ds - dl/dlog a)
        torch.mul(dd, torch.sigmoid(k_f.neg()), out=grad_k_f).neg_()
        torch.mul(dd, torch.sigmoid(k_i.neg()), out=grad_k_i)
        torch.mul(grad_b * s, slope, out=grad_k_h)
        return grad


def mingru_step(x_proj: Tensor, h: Tensor) -> Tensor:
    """One minGRU step. x_proj (B, 2H) = [k_z, k_h] (the input projection), h (B, H) -> h_t (B, H)."""
    k_z, k_h = x_proj.chunk(2, dim=-1)  # each (B, H)
    z = torch.sigmoid(k_z)
    return (1 - z) * h + z * g(k_h)


def minlstm_step(x_proj: Tensor, h: Tensor) -> Tensor:
    """One minLSTM step. x_proj (B, 3H) = [k_f, k_i, k_h], h (B, H) -> h_t (B, H)."""
    k_f, k_i, k_h = x_proj.chunk(3, dim=-1)  # each (B, H)
    f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
    return f / (f + i) * h + i / (f + i) * g(k_h)
