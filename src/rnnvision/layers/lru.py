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

``impl="reference"`` is the loop above, on complex tensors (the specification, and :meth:`LRU.step`
for streaming). ``"scan"`` computes the same layer in real pairs: gamma is folded
into the rows of B, so ``gamma * B u`` comes out of one matrix multiply as (B, T, 2, S) real and
imaginary planes; the recurrence runs on those planes by the chunked scan of
:func:`~rnnvision.ops.scan.complex_diagonal_scan` (every operation a real ``addcmul`` on a view,
about 2 C + T/C of them); the readout ``Re(C x) = [C_re, -C_im] [x_re; x_im]`` reads the planes
without a copy. Complex elementwise arithmetic and complex copies are 10-20x slower than real ones
on our CPU, which is why the fast path avoids them (BENCHMARKS.md, "LRU training step").
While traced (``torch.onnx.export``, ``torch.jit.trace``), and with ``impl="matmul"``, the recurrence
is :func:`~rnnvision.ops.lru.lru_recurrence_matmul` instead: the same chunks as two matrix products,
which export as standard operators; a handful of kernel launches where the scan issues about
4 (2 C + T/C), so a candidate for GPUs, where the scan is launch-bound (on our CPU its training
step is about 4x slower than the scan's: BENCHMARKS.md, "LRU on a GPU"). Because lambda does not depend on the input, the scan's
backward is the same scan run backwards with conj(lambda) (PyTorch's convention for complex
gradients: conjugate Wirtinger derivatives).
``"fused"`` runs the same planes through a C++ loop over time per batch row, forward and backward
(:mod:`rnnvision.ops.lru_kernel`, built on first use; CPU tensors only); under bfloat16 autocast it
reads and writes bfloat16 itself (:class:`~rnnvision.ops.lru.KernelScanBF16`) and hands the readout
a bfloat16 copy of the states; the readout's ``D * u`` term also runs in the kernel, one pass each way
(:class:`~rnnvision.ops.lru.SkipReadout`). Its training step is 1.2-3.3x faster than the scan's on our
CPU (BENCHMARKS.md, "The LRU's CPU kernel"). ``"auto"`` is ``"fused"`` on the CPU where the kernel
builds, else ``"scan"``.
Bidirectional: a second set of (nu, theta, gamma, B) reads the sequence right to left; C reads
both states. The recurrence runs in float32 under bfloat16 autocast, or float64 for float64 inputs.
"""

from __future__ import annotations

import math
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.impl import LRUImpl, check_impl
from rnnvision.ops.lru import KernelScanBF16, PairScan, lru_recurrence_matmul, lru_recurrence_reference, skip_readout
from rnnvision.ops.lru_kernel import kernel_problem, lru_kernel
from rnnvision.ops.scan import default_chunk


class LRU(nn.Module):
    """Linear Recurrent Unit: (B, T, I) real -> (B, T, I) real through a complex diagonal state of size N.

    Args:
        input_size: I, also the output size (the paper's D skip is elementwise).
        state_size: N, complex state units per direction.
        r_min, r_max: the ring |lambda| is initialised on (0 <= r_min < r_max <= 1).
        max_phase: the largest initial phase of lambda, in radians (0 < max_phase <= 2 pi).
        bidirectional: add a right-to-left recurrence with its own lambda, gamma and B.
        impl: ``"auto"``, ``"reference"``, ``"scan"``, ``"matmul"`` or ``"fused"`` (see the module docstring).
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
        nu, theta = self.polar_parts()
        return torch.polar(torch.exp(-nu), theta)  # |lambda| = exp(-nu), angle theta

    def polar_parts(self) -> tuple[Tensor, Tensor]:
        """``(nu, theta)``, each (S,) real: lambda = exp(-nu + i theta), with the guards of :meth:`eigenvalues`."""
        dtype = torch.promote_types(self.nu_log.dtype, torch.float32)
        nu = self.nu_log.to(dtype).exp().clamp_min(2.0**-20)
        theta = self.theta_log.to(dtype).clamp_max(16.0).exp()
        return nu, theta

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
            call when a long sequence arrives in pieces (None when bidirectional, and while traced).
        """
        if u.dim() != 3 or u.shape[-1] != self.input_size:
            raise ValueError(f"LRU expects input (batch, time, {self.input_size}), got {tuple(u.shape)}")
        if state is not None and self.bidirectional:
            raise ValueError("a bidirectional LRU reads the whole sequence; it takes no initial state")
        if state is not None and state.shape != (u.shape[0], self.state_size):
            raise ValueError(
                f"state must be (batch, state_size) = {(u.shape[0], self.state_size)}, got {tuple(state.shape)}"
            )
        if self.impl == "reference":
            return self._forward_reference(u, state)
        return self._forward_pairs(u, state)

    def _forward_reference(self, u: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The specification: complex drive, the loop, complex readout."""
        lam = self.eigenvalues()  # (S,)
        drive = self._input_term(u)  # (B, T, S)
        n = self.state_size
        h0 = drive.new_zeros(drive.shape[0], n) if state is None else state.to(drive.dtype)
        parts = [lru_recurrence_reference(lam[:n], drive[..., :n], h0)]
        if self.bidirectional:  # the reverse units read the sequence right to left
            parts.append(lru_recurrence_reference(lam[n:], drive[..., n:].flip(1), torch.zeros_like(h0)).flip(1))
        x = torch.cat(parts, dim=-1)  # (B, T, S)
        return self._readout(x, u), (None if self.bidirectional else x[:, -1])

    def _forward_pairs(self, u: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The fast path: the same layer on (real, imaginary) planes, no complex tensor of size (B, T, S)."""
        batch, steps, _ = u.shape
        states, n = self.nu_log.shape[0], self.state_size
        dtype = torch.promote_types(self.B.dtype, torch.float32)
        gamma = self.gamma_log.to(dtype).exp().repeat(2)  # (2S,): the rows [B_re; B_im] both scaled
        drive = F.linear(u, self.B * gamma[:, None]).view(batch, steps, 2, states)  # (B, T, 2, S): Re, Im of gamma B u
        h0 = None if state is None else torch.stack([state.real, state.imag], dim=1).to(dtype)  # (B, 2, N)
        chunk = min(self.chunk or default_chunk(steps), steps)
        tracing = torch.jit.is_tracing()  # an export: the matrix form, which traces into a graph without a loop
        low, kernel = None, None
        if tracing or self.impl == "matmul":
            x = lru_recurrence_matmul(*self.polar_parts(), drive.to(dtype), h0, split=n, chunk=chunk)
        else:
            lam = torch.view_as_real(self.eigenvalues()).t()  # (2, S)
            kernel = self._kernel(drive)
            if kernel is not None and drive.dtype == torch.bfloat16 and dtype == torch.float32:
                low, x = KernelScanBF16.apply(lam, drive, h0, n, kernel)  # (B, T, 2, S) bfloat16, float32
            else:
                x = PairScan.apply(lam, drive, h0, n, chunk, kernel)  # (B, T, 2, S) float32 (float64)
        # under autocast the readout runs in bfloat16: the kernel's rounded copy saves a conversion pass
        autocast = torch.is_autocast_enabled("cpu")
        read = low if low is not None and (autocast or self.C.dtype == low.dtype) else x.to(self.C.dtype)
        sign = torch.ones(2, states, dtype=self.C.dtype, device=self.C.device)
        sign[1] = -1.0
        readout = F.linear(read.reshape(batch, steps, 2 * states), self.C * sign.view(-1))  # Re(C x)
        y = skip_readout(readout, self.D, u, kernel)  # + D * u
        last = None if self.bidirectional or tracing else torch.complex(x[:, -1, 0, :n], x[:, -1, 1, :n])  # (B, N)
        return y, last

    def _kernel(self, drive: Tensor) -> ModuleType | None:
        """The C++ kernel for ``"fused"`` (and ``"auto"`` on the CPU where it builds), else None: the scan."""
        if self.impl not in ("fused", "auto") or (self.impl == "auto" and not drive.is_cpu):
            return None
        if not drive.is_cpu:
            raise ValueError(f"impl='fused' runs on the CPU only; this input is on {drive.device} (use 'scan')")
        kernel = lru_kernel()
        if kernel is None and self.impl == "fused":
            raise ValueError(f"impl='fused' needs the LRU's C++ kernel, which could not be built: {kernel_problem()}")
        return kernel

    def step(self, u_t: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step for streaming: u_t (B, I), state (B, N) complex or None -> (y_t (B, I), state (B, N))."""
        if self.bidirectional:
            raise ValueError("a bidirectional LRU cannot stream: its reverse direction needs the whole sequence")
        drive = self._input_term(u_t)  # (B, N)
        state = drive.new_zeros(drive.shape) if state is None else state.to(drive.dtype)
        state = self.eigenvalues().to(drive.dtype) * state + drive
        return self._readout(state, u_t), state

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, state_size={self.state_size}, r=[{self.r_min}, {self.r_max}], "
            f"max_phase={self.max_phase:.3g}, bidirectional={self.bidirectional}, impl={self.impl!r}"
        )
