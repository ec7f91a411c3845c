"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long Sequences").

A linear recurrence with a complex diagonal state matrix, read out by real projections
(paper section 3, Algorithm 1)::

    lambda = exp(-exp(nu) + i exp(theta))            (N,) complex, |lambda| = exp(-exp(nu)) < 1
    gamma  = exp(gamma_log), initialised sqrt(1 - |lambda|^2)      the normalisation of section 3.3
    x_t    = lambda * x_{t-1} + gamma * (B u_t)      x (N,) complex, B = B_re + i B_im (N, I)
    y_t    = Re(C x_t) + D * u_t                     C = C_re + i C_im (O, N), D (I,) real, O = I

Initialisation (section 3.2): lambda uniform on the ring r_min <= |lambda| <= r_max with phase in
[0, max_phase]: ``nu = log(-log(r) )`` with ``r^2 ~ U(r_min^2, r_max^2)``, ``theta = log(max_phase * U(0, 1))``;
B_re, B_im ~ N(0, 1 / (2 I)); C_re, C_im ~ N(0, 1 / N); D ~ N(0, 1).

``impl="reference"`` is the loop above (the specification, and :meth:`LRU.step` for streaming);
``"scan"`` runs the same recurrence on the chunked scan of :mod:`rnnvision.ops.scan` for a
time-invariant coefficient (:func:`~rnnvision.ops.scan.time_invariant_scan`: each chunk one
Toeplitz matrix multiply, then a loop over the chunks) in complex arithmetic (``exp(-exp(nu))`` is computed, not rounded through a log); ``"auto"`` is the scan.
Because lambda does not depend on the input, the scan's backward is the same scan run backwards
with conj(lambda) (PyTorch's convention for complex gradients: conjugate Wirtinger derivatives).
Bidirectional: a second set of (nu, theta, gamma, B) reads the sequence right to left; C reads
both states. The recurrence runs in float32 (complex64) under bfloat16 autocast, or complex128
for float64 inputs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.impl import LRUImpl, check_impl
from rnnvision.ops.scan import default_chunk, time_invariant_scan


class LRU(nn.Module):
    """Linear Recurrent Unit: (B, T, I) real -> (B, T, I) real through a complex diagonal state of size N.

    Args:
        input_size: I, also the output size (the paper's D skip is elementwise).
        state_size: N, complex state units per direction.
        r_min, r_max: the ring |lambda| is initialised on (0 <= r_min < r_max <= 1).
        max_phase: the largest initial phase of lambda, in radians (0 < max_phase <= 2 pi).
        bidirectional: add a right-to-left recurrence with its own lambda, gamma and B.
        impl: ``"auto"``, ``"reference"`` or ``"scan"`` (see the module docstring).
        chunk: steps per chunk of the scan; default about sqrt(T).
    """

    def __init__(
        self,
        input_size: int,
        state_size: int,
        *,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
        bidirectional: bool = False,
        impl: LRUImpl = "auto",
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        check_impl(impl, LRUImpl)
        if not 0.0 <= r_min < r_max <= 1.0:
            raise ValueError(f"need 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
        if not 0.0 < max_phase <= 2 * math.pi:
            raise ValueError(f"max_phase must lie in (0, 2 pi], got {max_phase}")
        if input_size < 1 or state_size < 1:
            raise ValueError(f"input_size and state_size must be positive, got {input_size}, {state_size}")
        self.input_size, self.state_size, self.bidirectional = input_size, state_size, bidirectional
        self.impl, self.chunk = impl, chunk
        self.r_min, self.r_max, self.max_phase = r_min, r_max, max_phase
        states = state_size * (2 if bidirectional else 1)  # S: forward units, then reverse units
        self.nu_log = nn.Parameter(torch.empty(states))  # (S,)
        self.theta_log = nn.Parameter(torch.empty(states))  # (S,)
        self.gamma_log = nn.Parameter(torch.empty(states))  # (S,)
        self.B = nn.Parameter(torch.empty(2 * states, input_size))  # (2S, I): [B_re; B_im]
        self.C = nn.Parameter(torch.empty(input_size, 2 * states))  # (O, 2S): [C_re, C_im]
        self.D = nn.Parameter(torch.empty(input_size))  # (I,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The ring initialisation of section 3.2 and the normal projections of Algorithm 1."""
        with torch.no_grad():
            u1, u2 = torch.rand_like(self.nu_log), torch.rand_like(self.theta_log)
            r_sq = u1 * (self.r_max**2 - self.r_min**2) + self.r_min**2  # |lambda|^2 uniform on the ring's area
            # nu = -log(|lambda|) = -log(r^2) / 2; r = 1 (r_max = 1, u1 = 1) would give nu = 0: keep it positive
            nu = (-0.5 * r_sq.clamp_max(1.0 - 1e-7).log()).clamp_min(torch.finfo(self.nu_log.dtype).tiny)
            self.nu_log.copy_(nu.log())
            self.theta_log.copy_((self.max_phase * u2).clamp_min(1e-8).log())
            self.gamma_log.copy_(0.5 * torch.log1p(-torch.exp(-2 * nu)))  # log sqrt(1 - |lambda|^2)
            nn.init.normal_(self.B, std=1.0 / math.sqrt(2 * self.input_size))
            nn.init.normal_(self.C, std=1.0 / math.sqrt(self.state_size))
            nn.init.normal_(self.D)

    # -- the parameters as the paper writes them -------------------------------------------------
    def eigenvalues(self) -> Tensor:
        """lambda (S,) complex, |lambda| = exp(-exp(nu_log)) < 1 for any parameter values.

        Two guards keep that true in floating point: exp(nu_log) >= 2^-20 (a memory of a million
        steps; below it exp(-nu) would round to 1 in float32) and theta_log <= 16 (larger phases
        overflow to inf, and have no meaning left at float32 precision).
        """
        dtype = torch.promote_types(self.nu_log.dtype, torch.float32)
        nu = self.nu_log.to(dtype).exp().clamp_min(2.0**-20)
        theta = self.theta_log.to(dtype).clamp_max(16.0).exp()
        return torch.polar(torch.exp(-nu), theta)  # |lambda| = exp(-nu), angle theta

    def _input_term(self, u: Tensor) -> Tensor:
        """gamma * (B u): u (..., I) real -> (..., S) complex, computed in float32 (or float64)."""
        dtype = torch.promote_types(self.B.dtype, torch.float32)
        proj = F.linear(u, self.B).to(dtype)  # (..., 2S): [Re B u, Im B u]
        re, im = proj.chunk(2, dim=-1)
        return torch.complex(re, im) * self.gamma_log.to(dtype).exp()

    def _readout(self, x: Tensor, u: Tensor) -> Tensor:
        """Re(C x) + D * u: x (..., S) complex, u (..., I) -> (..., I) in u's dtype."""
        pair = torch.cat([x.real, -x.imag], dim=-1)  # Re(C x) = C_re x_re - C_im x_im
        return (F.linear(pair.to(self.C.dtype), self.C) + self.D * u).to(u.dtype)

    # -- forward --------------------------------------------------------------------------------
    def forward(self, u: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Run over a batch of sequences.

        Args:
            u: (B, T, I) real inputs.
            state: (B, N) complex state before the first step (unidirectional only), or None for zeros.

        Returns:
            ``(y, x_T)``: outputs (B, T, I) and the last complex state (B, N), to carry into the next
            call when a long sequence arrives in pieces (None when bidirectional).
        """
        if u.dim() != 3 or u.shape[-1] != self.input_size:
            raise ValueError(f"LRU expects input (batch, time, {self.input_size}), got {tuple(u.shape)}")
        if state is not None and self.bidirectional:
            raise ValueError("a bidirectional LRU reads the whole sequence; it takes no initial state")
        if state is not None and state.shape != (u.shape[0], self.state_size):
            raise ValueError(f"state must be (batch, state_size) = {(u.shape[0], self.state_size)}, got {tuple(state.shape)}")
        lam = self.eigenvalues()  # (S,)
        drive = self._input_term(u)  # (B, T, S)
        n = self.state_size
        parts = [self._recur(lam[:n], drive[..., :n], state)]
        if self.bidirectional:  # the reverse units read the sequence right to left
            parts.append(self._recur(lam[n:], drive[..., n:].flip(1), None).flip(1))
        x = torch.cat(parts, dim=-1)  # (B, T, S)
        return self._readout(x, u), (None if self.bidirectional else x[:, -1])

    def _recur(self, lam: Tensor, drive: Tensor, state: Tensor | None) -> Tensor:
        """x_t = lam * x_{t-1} + drive_t: lam (N,), drive (B, T, N), state (B, N) or None -> (B, T, N)."""
        h0 = drive.new_zeros(drive.shape[0], drive.shape[2]) if state is None else state.to(drive.dtype)
        if self.impl == "reference":
            return lru_recurrence_reference(lam, drive, h0)
        return lru_recurrence(lam, drive, h0, chunk=self.chunk)

    def step(self, u_t: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step for streaming: u_t (B, I), state (B, N) complex or None -> (y_t (B, I), state (B, N))."""
        if self.bidirectional:
            raise ValueError("a bidirectional LRU cannot stream: its reverse direction needs the whole sequence")
        drive = self._input_term(u_t)  # (B, N)
        state = drive.new_zeros(drive.shape) if state is None else state.to(drive.dtype)
        state = self.eigenvalues().to(drive.dtype) * state + drive
        return self._readout(state, u_t), state

    def extra_repr(self) -> str:
        return (f"{self.input_size}, state_size={self.state_size}, r=[{self.r_min}, {self.r_max}], "
                f"max_phase={self.max_phase:.3g}, bidirectional={self.bidirectional}, impl={self.impl!r}")


def lru_recurrence_reference(lam: Tensor, drive: Tensor, h0: Tensor) -> Tensor:
    """The loop: ``x_t = lam * x_{t-1} + drive_t``. lam (N,), drive (B, T, N), h0 (B, N), all complex -> (B, T, N)."""
    lam = lam.to(drive.dtype)
    x, states = h0, []
    for d_t in drive.unbind(1):  # each (B, N)
        x = lam * x + d_t
        states.append(x)
    return torch.stack(states, dim=1)  # (B, T, N)


def lru_recurrence(lam: Tensor, drive: Tensor, h0: Tensor, *, chunk: int | None = None) -> Tensor:
    """The same recurrence by the chunked scan; same contract as :func:`lru_recurrence_reference`."""
    chunk = min(chunk or default_chunk(drive.shape[1]), drive.shape[1])
    return _ComplexScan.apply(lam.to(drive.dtype), drive, h0, chunk)


class _ComplexScan(torch.autograd.Function):
    """Forward: the time-invariant chunked scan. Backward: the same scan backwards, with conj(lam).

    With g_t = dL/dx_t* (conjugate Wirtinger gradients, PyTorch's convention):
    ``g_t = grad_t + conj(lam) g_{t+1}``, ``dL/ddrive_t = g_t``, ``dL/dh0 = conj(lam) g_1`` and
    ``dL/dlam = sum_t g_t conj(x_{t-1})``.
    """

    @staticmethod
    def forward(ctx: Any, lam: Tensor, drive: Tensor, h0: Tensor, chunk: int) -> Tensor:
        x = time_invariant_scan(lam, drive, h0, chunk=chunk)  # (B, T, N)
        ctx.save_for_backward(lam, x, h0)
        ctx.chunk = chunk
        return x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_x: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        lam, x, h0 = ctx.saved_tensors
        conj = lam.conj().resolve_conj()
        g = time_invariant_scan(conj, grad_x.contiguous(), torch.zeros_like(h0), chunk=ctx.chunk, reverse=True)
        previous = torch.cat([h0[:, None], x[:, :-1]], dim=1)  # x_{t-1}, (B, T, N)
        grad_lam = (g * previous.conj()).sum(dim=(0, 1))  # (N,)
        return grad_lam, g, conj * g[:, 0], None
