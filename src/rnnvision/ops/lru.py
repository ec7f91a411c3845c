"""The LRU's recurrence as functions of tensors (Orvieto et al. 2023; the layer is :class:`rnnvision.layers.lru.LRU`).

``x_t = lam * x_{t-1} + drive_t`` with a time-invariant complex diagonal ``lam``: the loop on complex
tensors (the specification), the chunked scan on real (re, im) pairs with its hand-written
backward (the fast path; see the layer's docstring for the layout), and the same chunks as
matrix products (the form the ONNX and TorchScript exports trace: no loop, no complex tensor).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
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
    return PairScan.apply(lam, drive, h0, n, min(chunk or default_chunk(steps), steps), None)


class PairScan(torch.autograd.Function):
    """The LRU's recurrence on real pairs: units ``[:split]`` run left to right from h0, units ``[split:]``
    right to left from zero. Backward: the same scans in the other direction, with conj(lam).

    Shapes: lam (2, S), drive (B, T, 2, S), h0 (B, 2, split) or None -> x (B, T, 2, S), computed in
    float32 (float64 for float64 drive). With g_t = dL/dx_t as the pair (dL/dRe, dL/dIm), read as the
    complex number g_re + i g_im (PyTorch's conjugate Wirtinger convention): left-to-right units have
    ``g_t = grad_t + conj(lam) g_{t+1}``, ``dL/ddrive_t = g_t``, ``dL/dh0 = conj(lam) g_1`` and
    ``dL/dlam = sum_t g_t conj(x_{t-1})``; right-to-left units the same with t+1 and t-1 swapped.
    Saved for backward: x (which the readout keeps anyway), lam and h0.

    With ``kernel`` (:func:`rnnvision.ops.lru_kernel.lru_kernel`, CPU tensors) each direction runs as
    one sequential loop over time per batch row in C++, forward and backward, instead of the
    chunked scan (``chunk`` is then unused).
    """

    @staticmethod
    def forward(
        ctx: Any, lam: Tensor, drive: Tensor, h0: Tensor | None, split: int, chunk: int, kernel: ModuleType | None
    ) -> Tensor:
        dtype = torch.promote_types(drive.dtype, torch.float32)
        lam = lam.to(dtype)
        ctx.split, ctx.chunk, ctx.kernel = split, chunk, kernel
        if kernel is not None:
            lam, drive, h0 = lam.contiguous(), drive.to(dtype), None if h0 is None else h0.to(dtype).contiguous()
            x = torch.empty(drive.shape, dtype=dtype)  # (B, T, 2, S); the kernel never writes over its input
            _kernel_forward(kernel, lam, drive, h0, split, x, None)
            ctx.save_for_backward(lam, x, h0)
            return x
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
        return x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_x: Tensor) -> tuple[Tensor, Tensor, Tensor | None, None, None, None]:
        lam, x, h0 = ctx.saved_tensors
        split, chunk, kernel = ctx.split, ctx.chunk, ctx.kernel
        g = torch.empty_like(x)  # (B, T, 2, S)
        if kernel is not None:
            grad_x = grad_x.to(x.dtype).contiguous()  # an expanded gradient (of a sum) has stride 0
            grad_lam = _kernel_backward(kernel, lam, grad_x, x, h0, split, g)
            return grad_lam, g, _grad_h0(ctx, lam, g, h0, split), None, None, None
        conj = lam.clone()
        conj[1].neg_()  # (2, S): conj(lam)
        complex_diagonal_scan(grad_x[..., :split], conj[:, :split], None, chunk=chunk, reverse=True, out=g[..., :split])
        grad_lam = torch.empty_like(lam)  # (2, S)
        grad_lam[:, :split] = _sum_times_conj(g[:, 1:, :, :split], x[:, :-1, :, :split])  # x_{t-1}
        if h0 is not None:
            grad_lam[:, :split] += _sum_times_conj(g[:, :1, :, :split], h0[:, None].to(g.dtype))
        if split < x.shape[-1]:
            complex_diagonal_scan(grad_x[..., split:], conj[:, split:], None, chunk=chunk, out=g[..., split:])
            grad_lam[:, split:] = _sum_times_conj(g[:, :-1, :, split:], x[:, 1:, :, split:])  # x_{t+1}
        return grad_lam, g, _grad_h0(ctx, lam, g, h0, split), None, None, None


class KernelScanBF16(torch.autograd.Function):
    """:class:`PairScan` by the C++ kernel for a bfloat16 drive (under autocast), without a conversion pass:
    the kernel reads the drive and the incoming gradient in bfloat16, keeps the state in float32 and
    writes the drive's gradient in bfloat16. Returns ``(x_low, x)``: the states rounded to bfloat16
    (for the readout, which autocast runs in bfloat16 anyway) and in float32 (saved for dL/dlam, and
    the last state a caller carries on). Shapes and arguments as :class:`PairScan`'s; lam and h0 float32.
    """

    @staticmethod
    def forward(
        ctx: Any, lam: Tensor, drive: Tensor, h0: Tensor | None, split: int, kernel: ModuleType
    ) -> tuple[Tensor, Tensor]:
        lam, h0 = lam.float().contiguous(), None if h0 is None else h0.float().contiguous()
        x, low = torch.empty(drive.shape), torch.empty(drive.shape, dtype=torch.bfloat16)  # (B, T, 2, S)
        _kernel_forward(kernel, lam, drive, h0, split, x, low)
        ctx.save_for_backward(lam, x, h0)
        ctx.split, ctx.kernel = split, kernel
        ctx.set_materialize_grads(False)
        return low, x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any, grad_low: Tensor | None, grad_x: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, None, None]:
        lam, x, h0 = ctx.saved_tensors
        split, kernel = ctx.split, ctx.kernel
        if grad_low is None and grad_x is None:
            return None, None, None, None, None
        if grad_x is None:  # the usual case: only the readout's gradient, in bfloat16
            assert grad_low is not None
            grad = grad_low.to(torch.bfloat16).contiguous()
        else:  # the last state was used too: add in float32
            grad = (grad_x if grad_low is None else grad_low.float() + grad_x).contiguous()
        g = torch.empty_like(grad)  # (B, T, 2, S)
        grad_lam = _kernel_backward(kernel, lam, grad, x, h0, split, g)
        return grad_lam, g, _grad_h0(ctx, lam, g, h0, split), None, None


class SkipReadout(torch.autograd.Function):
    """``y = readout + D * u`` by the C++ kernel, forward and backward each in one pass over the rows.

    Shapes: readout (..., I) and u (..., I) in D's dtype, or bfloat16 with D float32 (under autocast),
    D (I,) float32 or float64 -> y (..., I) in u's dtype, formed in D's. The same as
    ``torch.addcmul(readout, D, u).to(u.dtype)``, whose backward takes three passes (D * grad,
    grad * u, its sum over rows) and autograd more to convert between bfloat16 and float32; here
    one pass writes dL/dreadout and dL/du in their own dtypes and sums dL/dD (in float64 per thread).
    """

    @staticmethod
    def forward(ctx: Any, readout: Tensor, d: Tensor, u: Tensor, kernel: ModuleType) -> Tensor:
        rows = u.reshape(-1, u.shape[-1])  # (M, I)
        y = torch.empty_like(rows)  # in u's dtype
        kernel.skip_forward(readout.reshape(rows.shape), rows, d.contiguous(), y)
        ctx.save_for_backward(d, u)
        ctx.readout_dtype, ctx.kernel = readout.dtype, kernel
        return y.view(u.shape)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        d, u = ctx.saved_tensors
        rows = grad.to(u.dtype).reshape(-1, u.shape[-1]).contiguous()  # (M, I), in y's (u's) dtype
        grad_readout = torch.empty(rows.shape, dtype=ctx.readout_dtype)
        grad_u, grad_d = torch.empty_like(rows), torch.empty_like(d)
        ctx.kernel.skip_backward(rows, u.reshape(rows.shape), d.contiguous(), grad_readout, grad_u, grad_d)
        return grad_readout.view(u.shape), grad_d, grad_u.view(u.shape), None


def skip_readout(readout: Tensor, d: Tensor, u: Tensor, kernel: ModuleType | None) -> Tensor:
    """``readout + D * u`` in u's dtype: by :class:`SkipReadout` where the kernel takes these tensors (CPU,
    contiguous, the dtypes it names), else by addcmul."""

    def stored(t: Tensor) -> bool:  # in D's dtype, or bfloat16 beside a float32 D
        return t.dtype == d.dtype or (t.dtype == torch.bfloat16 and d.dtype == torch.float32)

    if (
        kernel is not None
        and u.is_cpu
        and d.dtype in (torch.float32, torch.float64)
        and stored(readout)
        and stored(u)
        and readout.shape == u.shape
        and readout.is_contiguous()
        and u.is_contiguous()
    ):
        return SkipReadout.apply(readout, d, u, kernel)
    return torch.addcmul(readout, d, u).to(u.dtype)


def _kernel_forward(
    kernel: ModuleType, lam: Tensor, drive: Tensor, h0: Tensor | None, split: int, x: Tensor, low: Tensor | None
) -> None:
    """x (and low, its bfloat16 copy, when given) = the recurrence over drive: units [:split] left to
    right from h0, units [split:] right to left from zero."""
    for units, start, reverse in _directions(split, x.shape[-1], h0):
        out_low = _or_empty(None if low is None else low[..., units])
        kernel.forward(drive[..., units], lam[:, units], _or_empty(start), reverse, x[..., units], out_low)


def _kernel_backward(
    kernel: ModuleType, lam: Tensor, grad: Tensor, x: Tensor, h0: Tensor | None, split: int, g: Tensor
) -> Tensor:
    """g = the adjoint recurrence over grad (as :func:`_kernel_forward` split the units); returns dL/dlam (2, S)."""
    rows = x.new_zeros(x.shape[0], 2, x.shape[-1])  # (B, 2, S): dL/dlam of each batch row
    for units, start, reverse in _directions(split, x.shape[-1], h0):
        kernel.backward(
            grad[..., units], lam[:, units], x[..., units], _or_empty(start), reverse, g[..., units], rows[..., units]
        )
    return rows.sum(0)


def _directions(split: int, states: int, h0: Tensor | None) -> list[tuple[slice, Tensor | None, bool]]:
    """(units, initial state, right to left) of each direction: [:split] from h0, then [split:] from zero."""
    parts = [(slice(None, split), h0, False), (slice(split, None), None, True)]
    return parts if split < states else parts[:1]


def _grad_h0(ctx: Any, lam: Tensor, g: Tensor, h0: Tensor | None, split: int) -> Tensor | None:
    """dL/dh0 = conj(lam) g_1 for the left-to-right units: (B, 2, split), or None when not needed."""
    if h0 is None or not ctx.needs_input_grad[2]:
        return None
    (l_re, l_im), g_re, g_im = lam[:, :split], g[:, 0, 0, :split].to(lam.dtype), g[:, 0, 1, :split].to(lam.dtype)
    return torch.stack([l_re * g_re + l_im * g_im, l_re * g_im - l_im * g_re], dim=1)  # conj(lam) * g


def _or_empty(t: Tensor | None) -> Tensor:
    """The kernel's "no initial state": an empty tensor."""
    return torch.empty(0) if t is None else t


def _sum_times_conj(g: Tensor, x: Tensor) -> Tensor:
    """sum over (B, T) of g * conj(x) on real pairs: g, x (B, T, 2, H) -> (2, H).

    On the CPU one batch row at a time into two reused buffers, which stay in cache: about twice as
    fast there as whole-tensor products (each a fresh (B, T, 2, H) temporary). On a GPU the row loop
    would be 6 B small launches, so the whole tensors are multiplied at once."""
    if not g.is_cpu:
        return _sum_times_conj_whole(g, x)
    row, plane = g.new_empty(g.shape[1:]), g.new_empty(g.shape[1], g.shape[3])  # (T, 2, H), (T, H)
    real, imag = g.new_zeros(g.shape[3]), g.new_zeros(g.shape[3])  # (H,)
    for g_b, x_b in zip(g, x):  # each (T, 2, H)
        real += torch.mul(g_b, x_b, out=row).sum(dim=(0, 1))  # g_re x_re + g_im x_im
        imag += torch.mul(g_b[:, 1], x_b[:, 0], out=plane).sum(dim=0)  # g_im x_re
        imag -= torch.mul(g_b[:, 0], x_b[:, 1], out=plane).sum(dim=0)  # - g_re x_im
    return torch.stack([real, imag])


def _sum_times_conj_whole(g: Tensor, x: Tensor) -> Tensor:
    """:func:`_sum_times_conj` in whole-tensor products: a handful of launches whatever B."""
    real = (g * x).sum(dim=(0, 1, 2))  # (H,): g_re x_re + g_im x_im
    imag = (g[:, :, 1] * x[:, :, 0] - g[:, :, 0] * x[:, :, 1]).sum(dim=(0, 1))  # (H,)
    return torch.stack([real, imag])


def lru_recurrence_matmul(
    nu: Tensor, theta: Tensor, drive: Tensor, h0: Tensor | None = None, *, split: int, chunk: int
) -> Tensor:
    """The recurrence of :func:`lru_recurrence_reference` as matrix products on real pairs, for tracing.

    ``lam = exp(-nu + i theta)`` is time-invariant, so a chunk of C steps from a zero state is one
    (C, C) lower-triangular matrix of its powers per unit, ``x_c = sum_{j <= c} lam^(c-j) d_j``,
    and the states entering the K chunks are a (K, K) one in ``lam^C`` applied to the chunks'
    ends; each complex matrix acts on (re, im) rows as the real block ``[[A_re, A_im], [-A_im, A_re]]``.
    Two batched ``matmul``s and elementwise products, no loop: what ``torch.onnx.export`` and
    ``torch.jit.trace`` turn into a graph whose size does not grow with T. The powers are taken
    in float64 as ``exp(-m nu) (cos m theta, sin m theta)``, not by repeated products.

    Args:
        nu, theta: (S,) -log|lam| and the angle of lam, per unit.
        drive: (B, T, 2, S) real and imaginary planes of the drive.
        h0: (B, 2, split) the state before the first step, or None for zeros.
        split: units ``[:split]`` run left to right, units ``[split:]`` right to left from zero.
        chunk: C, steps per chunk.

    Returns:
        x: (B, T, 2, S) in the drive's dtype.
    """
    if split == drive.shape[-1]:
        return _matmul_scan(nu, theta, drive, h0, chunk)
    forward = _matmul_scan(nu[:split], theta[:split], drive[..., :split], h0, chunk)
    backward = _matmul_scan(nu[split:], theta[split:], drive[..., split:].flip(1), None, chunk).flip(1)
    return torch.cat([forward, backward], dim=-1)


def _matmul_scan(nu: Tensor, theta: Tensor, drive: Tensor, h0: Tensor | None, chunk: int) -> Tensor:
    """Left to right: nu, theta (N,), drive (B, T, 2, N), h0 (B, 2, N) or None -> x (B, T, 2, N)."""
    steps, n = drive.shape[1], drive.shape[3]
    chunk = max(1, min(chunk, steps))
    chunks = -(-steps // chunk)  # K
    nu, theta = nu.double(), theta.double()
    c, k = torch.arange(chunk, device=nu.device), torch.arange(chunks, device=nu.device)  # (C,), (K,)
    # the powers lam^(c-j) for row j, column c (zero above the diagonal), and lam^(C (k-1-m)) for the carry
    within = _power_blocks(nu, theta, c[None, :] - c[:, None], 1, drive.dtype)  # (N, 2C, 2C)
    across = _power_blocks(nu, theta, k[None, :] - k[:, None] - 1, chunk, drive.dtype)  # (N, 2K, 2K)
    d = F.pad(drive, (0, 0, 0, 0, 0, chunks * chunk - steps))  # (B, K C, 2, N): zeros after the last step
    d = d.reshape(-1, chunks, chunk, 2, n).permute(4, 0, 1, 3, 2).reshape(n, -1, 2 * chunk)  # (N, B K, [re | im])
    local = torch.matmul(d, within).reshape(n, -1, chunks, 2, chunk)  # (N, B, K, 2, C): chunks from zero
    ends = local[..., chunk - 1].transpose(2, 3).reshape(n, -1, 2 * chunks)  # (N, B, [re K | im K])
    starts = torch.matmul(ends, across).reshape(n, -1, 2, chunks)  # (N, B, 2, K): the state entering chunk k
    s_re, s_im = starts[:, :, 0, :, None], starts[:, :, 1, :, None]  # (N, B, K, 1)
    if h0 is not None:  # + lam^(k C) h0
        p_re, p_im = _powers(nu, theta, k * chunk, drive.dtype)  # (N, K)
        h_re, h_im = h0[:, 0].t()[:, :, None, None], h0[:, 1].t()[:, :, None, None]  # (N, B, 1, 1)
        p_re, p_im = p_re[:, None, :, None], p_im[:, None, :, None]  # (N, 1, K, 1)
        s_re, s_im = s_re + p_re * h_re - p_im * h_im, s_im + p_re * h_im + p_im * h_re
    q_re, q_im = (q[:, None, None, :] for q in _powers(nu, theta, c + 1, drive.dtype))
    x_re = local[:, :, :, 0] + q_re * s_re - q_im * s_im  # (N, B, K, C): + lam^(c+1) s_k
    x_im = local[:, :, :, 1] + q_re * s_im + q_im * s_re
    x = torch.stack([x_re, x_im], dim=3).permute(1, 2, 4, 3, 0)  # (B, K, C, 2, N)
    return x.reshape(-1, chunks * chunk, 2, n)[:, :steps]


def _powers(nu: Tensor, theta: Tensor, exponents: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """lam^m for nu, theta (N,) float64 and integer exponents (...) >= 0 -> (re, im), each (N, ...)."""
    m = exponents.to(nu.dtype)
    shape = (-1,) + (1,) * m.dim()
    modulus, angle = torch.exp(-nu.view(shape) * m), theta.view(shape) * m
    return (modulus * torch.cos(angle)).to(dtype), (modulus * torch.sin(angle)).to(dtype)


def _power_blocks(nu: Tensor, theta: Tensor, offsets: Tensor, scale: int, dtype: torch.dtype) -> Tensor:
    """The real (N, 2L, 2L) block ``[[A_re, A_im], [-A_im, A_re]]`` of A[j, c] = lam^(scale offsets[j, c]),
    zero where the offset is negative; offsets (L, L) in [-L, L).

    The L powers are computed once and gathered into the matrix: an exported graph evaluates its
    exp, cos and sin on N L values per call, not N L^2."""
    below = (offsets >= 0).to(dtype)
    p_re, p_im = _powers(nu, theta, torch.arange(offsets.shape[0], device=nu.device) * scale, dtype)  # (N, L)
    index = offsets.clamp_min(0)  # (L, L)
    a_re, a_im = p_re[:, index] * below, p_im[:, index] * below  # (N, L, L)
    return torch.cat([torch.cat([a_re, a_im], dim=2), torch.cat([-a_im, a_re], dim=2)], dim=1)
