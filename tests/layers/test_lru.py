"""LRU: the scan, the traced matrix form and the C++ kernel equal the loop (outputs and every gradient,
float64); stepping equals one call; |lambda| < 1."""

from __future__ import annotations

import math

import pytest
import torch

from rnnvision.layers.lru import LRU
from rnnvision.ops import lru_kernel as kernel_module
from rnnvision.ops.lru import (
    _sum_times_conj,
    _sum_times_conj_whole,
    lru_recurrence,
    lru_recurrence_matmul,
    lru_recurrence_reference,
    skip_readout,
)
from rnnvision.ops.lru_kernel import kernel_problem, lru_kernel


def _layer(bidirectional: bool, regime: str = "ring", **kwargs) -> LRU:
    """``ring``: |lambda| in [0.5, 0.99]; ``r_min=0``: the whole disc; ``extremes``: |lambda| = 0 exactly,
    2e-9, 0.066, 0.5, 0.87 and 1 - 2^-20 (the largest the nu guard allows)."""
    torch.manual_seed(0)
    r_min, r_max = (0.5, 0.99) if regime == "ring" else (0.0, 1.0)
    layer = LRU(5, 7, bidirectional=bidirectional, r_min=r_min, r_max=r_max, max_phase=math.pi, **kwargs).double()
    if regime == "extremes":
        with torch.no_grad():  # |lambda| = exp(-exp(nu_log))
            values = torch.tensor([10.0, 3.0, -0.37, -15.0, -30.0, 1.0, -2.0], dtype=torch.float64)
            layer.nu_log.copy_(values.repeat(layer.nu_log.numel() // 7))
    return layer


@pytest.mark.parametrize("regime", ["ring", "r_min=0", "extremes"])
@pytest.mark.parametrize("bidirectional,with_state", [(False, False), (False, True), (True, False)])
@pytest.mark.parametrize("steps,chunk", [(13, None), (13, 4), (1, None), (30, 30), (31, 8)])
@pytest.mark.parametrize("fast", ["scan", "matmul", "fused"])
def test_fast_paths_equal_reference_on_outputs_and_every_gradient(
    bidirectional, with_state, steps, chunk, regime, fast
):
    if fast == "fused" and lru_kernel() is None:
        pytest.skip(f"the LRU's C++ kernel cannot be built here: {kernel_problem()}")
    layer = _layer(bidirectional, regime, chunk=chunk)
    if regime == "extremes":
        modulus = layer.eigenvalues().abs()
        assert modulus.min() == 0 and 1 - modulus.max() < 1e-6  # the regimes the scan must survive
    u = torch.randn(3, steps, 5, dtype=torch.float64)
    state = torch.randn(3, 7, dtype=torch.complex128) if with_state else None
    weights = torch.randn(3, steps, 5, dtype=torch.float64)
    results = {}
    for impl in ("reference", fast):
        layer.impl = impl
        layer.zero_grad()
        ui = u.clone().requires_grad_(True)
        si = None if state is None else state.clone().requires_grad_(True)
        y, last = layer(ui, si)
        loss = (y * weights).sum() + (0.0 if last is None else (last.real * 2 + last.imag * 3).sum())
        loss.backward()
        grads = {name: p.grad.clone() for name, p in layer.named_parameters()}
        results[impl] = (y.detach(), ui.grad, None if si is None else si.grad, grads)
    (y_r, gu_r, gs_r, gp_r), (y_s, gu_s, gs_s, gp_s) = results["reference"], results[fast]
    assert y_s.shape == (3, steps, 5)
    torch.testing.assert_close(y_s, y_r, atol=1e-11, rtol=1e-11)
    torch.testing.assert_close(gu_s, gu_r, atol=1e-11, rtol=1e-11)
    if with_state:
        torch.testing.assert_close(gs_s, gs_r, atol=1e-11, rtol=1e-11)
    assert set(gp_s) == {"nu_log", "theta_log", "gamma_log", "B", "C", "D"}
    for name in gp_r:
        if steps > 1 or name not in ("nu_log", "theta_log"):  # lambda meets a nonzero state after step 1
            assert gp_r[name].abs().max() > 0, name  # every parameter receives a gradient
        torch.testing.assert_close(gp_s[name], gp_r[name], atol=1e-10, rtol=1e-10, msg=name)


def test_recurrence_on_pairs_matches_the_loop_and_gradcheck():
    torch.manual_seed(1)
    lam = torch.polar(torch.rand(4, dtype=torch.float64) * 0.99, torch.rand(4, dtype=torch.float64) * 6)
    drive = torch.randn(2, 11, 4, dtype=torch.complex128)
    h0 = torch.randn(2, 4, dtype=torch.complex128)
    lam_p, h0_p = torch.stack([lam.real, lam.imag]), torch.stack([h0.real, h0.imag], dim=1)
    drive_p = torch.stack([drive.real, drive.imag], dim=2)  # (B, T, 2, N)
    assert torch.autograd.gradcheck(
        lambda a, b, c: lru_recurrence(a, b, c, chunk=3),
        (lam_p.requires_grad_(), drive_p.requires_grad_(), h0_p.requires_grad_()),
    )
    expected = lru_recurrence_reference(lam, drive, h0)
    torch.testing.assert_close(
        lru_recurrence(lam_p, drive_p, h0_p, chunk=3), torch.stack([expected.real, expected.imag], dim=2)
    )


def test_gradient_sum_of_the_gpu_form_equals_the_cpu_row_loop():
    """The backward's sum over (B, T) of g conj(x): whole-tensor (taken on a GPU) equals the row loop."""
    torch.manual_seed(0)
    g, x = torch.randn(2, 5, 9, 2, 7, dtype=torch.float64).unbind(0)  # (B, T, 2, H) each
    expected = (torch.complex(g[:, :, 0], g[:, :, 1]) * torch.complex(x[:, :, 0], x[:, :, 1]).conj()).sum((0, 1))
    for got in (_sum_times_conj(g, x), _sum_times_conj_whole(g, x)):
        torch.testing.assert_close(got, torch.stack([expected.real, expected.imag]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("split", [7, 4])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("steps,chunk", [(13, 4), (1, 1), (30, 30), (31, 8), (29, 100)])
def test_matrix_form_equals_the_loop_on_outputs_and_every_gradient(split, with_state, steps, chunk):
    torch.manual_seed(steps)
    # |lambda| from exactly 0 (nu = 1e4) to 1 - 2^-20 (the layer's guard), phases over the whole circle
    nu = torch.tensor([1e4, 20.0, 2.7, 0.69, 0.1, 1e-3, 2.0**-20], dtype=torch.float64).requires_grad_(True)
    theta = (torch.rand(7, dtype=torch.float64) * 6.3).requires_grad_(True)
    drive = torch.randn(2, steps, 7, dtype=torch.complex128).requires_grad_(True)
    h0 = torch.randn(2, split, dtype=torch.complex128).requires_grad_(True) if with_state else None
    weights = torch.randn(2, steps, 2, 7, dtype=torch.float64)

    lam = torch.polar(torch.exp(-nu), theta)  # the specification: the loop on complex numbers
    start = h0 if h0 is not None else torch.zeros(2, split, dtype=torch.complex128)
    parts = [lru_recurrence_reference(lam[:split], drive[..., :split], start)]
    if split < 7:  # units [split:] read right to left from zero
        zero = torch.zeros(2, 7 - split, dtype=torch.complex128)
        parts.append(lru_recurrence_reference(lam[split:], drive[..., split:].flip(1), zero).flip(1))
    expected = torch.cat(parts, dim=-1)
    expected = torch.stack([expected.real, expected.imag], dim=2)  # (B, T, 2, S)
    inputs = [nu, theta, drive] + ([h0] if h0 is not None else [])
    expected_grads = torch.autograd.grad((expected * weights).sum(), inputs)

    pairs = torch.view_as_real(drive).permute(0, 1, 3, 2)  # (B, T, 2, S)
    h0_pairs = None if h0 is None else torch.view_as_real(h0).transpose(1, 2)  # (B, 2, split)
    got = lru_recurrence_matmul(nu, theta, pairs, h0_pairs, split=split, chunk=chunk)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)
    for name, ours, theirs in zip(
        ["nu", "theta", "drive", "h0"], torch.autograd.grad((got * weights).sum(), inputs), expected_grads
    ):
        torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=1e-10, msg=name)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_traced_layer_runs_the_matrix_form_and_equals_the_loop(bidirectional):
    layer = _layer(bidirectional, "extremes", chunk=4)
    layer.requires_grad_(False)  # a traced function holds the parameters as constants
    with torch.no_grad():  # as the exports trace
        traced = torch.jit.trace(lambda u: layer(u)[0], (torch.randn(2, 13, 5, dtype=torch.float64),))
    assert "aten::matmul" in str(traced.graph) and "complex" not in str(traced.graph)
    u = torch.randn(3, 13, 5, dtype=torch.float64)  # another batch size than the trace's
    layer.impl = "reference"
    with torch.no_grad():
        torch.testing.assert_close(traced(u), layer(u)[0], atol=1e-11, rtol=1e-11)


@pytest.mark.parametrize("regime", ["ring", "extremes"])
@pytest.mark.parametrize("impl", ["reference", "scan"])
def test_step_mode_equals_the_full_call_with_carried_state(impl, regime):
    layer = _layer(False, regime, impl=impl, chunk=4)
    u = torch.randn(2, 9, 5, dtype=torch.float64)
    full, last = layer(u)
    state, outputs = None, []
    for t in range(9):
        y_t, state = layer.step(u[:, t], state)
        outputs.append(y_t)
    torch.testing.assert_close(torch.stack(outputs, 1), full, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(state, last, atol=1e-12, rtol=1e-12)
    first, mid = layer(u[:, :4])  # a sequence arriving in two pieces
    second, _ = layer(u[:, 4:], mid)
    torch.testing.assert_close(torch.cat([first, second], 1), full, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_eigenvalues_stay_inside_the_unit_circle_for_any_parameters(dtype):
    layer = LRU(3, 64).to(dtype)
    generator = torch.Generator().manual_seed(0)
    extremes = torch.tensor([-1e4, -200.0, -60.0, -20.0, -17.0, -10.0, 0.0, 5.0, 80.0, 1e4], dtype=dtype)
    with torch.no_grad():
        for trial in range(20):
            values = torch.randn(64, generator=generator, dtype=dtype) * 10 ** (trial % 5)
            values[: len(extremes)] = extremes
            layer.nu_log.copy_(values)
            layer.theta_log.copy_(torch.randn(64, generator=generator, dtype=dtype) * 50)
            modulus = layer.eigenvalues().abs()
            assert bool((modulus < 1).all()) and bool(torch.isfinite(modulus).all())


def test_ring_initialisation_and_normalisation():
    torch.manual_seed(0)
    layer = LRU(4, 4000, r_min=0.4, r_max=0.9, max_phase=math.pi / 10)
    lam = layer.eigenvalues().detach()
    modulus, phase = lam.abs(), lam.angle()
    assert modulus.min() >= 0.4 - 1e-6 and modulus.max() <= 0.9 + 1e-6
    assert phase.min() >= 0 and phase.max() <= math.pi / 10 + 1e-6
    # |lambda|^2 uniform on [r_min^2, r_max^2]: its quartiles
    quartiles = torch.quantile(modulus.double() ** 2, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    expected = 0.16 + (0.81 - 0.16) * torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    assert (quartiles - expected).abs().max() < 0.03
    torch.testing.assert_close(layer.gamma_log.exp().detach(), (1 - modulus**2).sqrt(), atol=1e-5, rtol=1e-5)


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="r_min"):
        LRU(3, 4, r_min=0.9, r_max=0.5)
    with pytest.raises(ValueError, match="impl"):
        LRU(3, 4, impl="fast")
    with pytest.raises(ValueError, match="stream"):
        LRU(3, 4, bidirectional=True).step(torch.randn(2, 3))
    with pytest.raises(ValueError, match="input"):
        LRU(3, 4)(torch.randn(2, 5, 4))


def test_bfloat16_autocast_runs_the_recurrence_in_float32():
    torch.manual_seed(0)
    layer = LRU(6, 8, bidirectional=True)
    u = torch.randn(2, 50, 6)
    outputs = {}
    for impl in ("scan", "reference"):
        layer.impl = impl
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y, _ = layer(u)
        outputs[impl] = y.float()
    outputs["scan"].sum().backward()
    assert torch.isfinite(outputs["scan"]).all() and all(torch.isfinite(p.grad).all() for p in layer.parameters())
    scale = outputs["reference"].abs().max()
    assert (outputs["scan"] - outputs["reference"]).abs().max() < 0.02 * scale  # bfloat16 projections, float32 scans


def test_the_kernel_builds_wherever_a_compiler_is_present():
    """The kernel's tests skip where it cannot be built; a compiler that fails on our source is a bug, not a skip."""
    import shutil

    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler on PATH: the scan stands in for the kernel")
    assert lru_kernel() is not None, kernel_problem()


def test_auto_takes_the_kernel_on_the_cpu_and_the_scan_without_it(monkeypatch):
    layer = _layer(bidirectional=True)
    u = torch.randn(2, 9, 5, dtype=torch.float64)
    layer.impl = "scan"
    expected = layer(u)[0]
    layer.impl = "auto"
    torch.testing.assert_close(layer(u)[0], expected, atol=1e-12, rtol=1e-12)
    monkeypatch.setattr(kernel_module, "_build", lambda: (None, "no C++ compiler (c++ or g++) on PATH"))
    torch.testing.assert_close(layer(u)[0], expected, atol=1e-12, rtol=1e-12)  # auto: the scan
    layer.impl = "fused"
    with pytest.raises(ValueError, match="could not be built: no C\\+\\+ compiler"):
        layer(u)


def test_fused_refuses_a_tensor_off_the_cpu():
    layer = _layer(bidirectional=False).to("meta")
    layer.impl = "fused"
    with pytest.raises(ValueError, match="runs on the CPU only; this input is on meta"):
        layer(torch.randn(2, 9, 5, dtype=torch.float64, device="meta"))


@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16])  # bfloat16: a block after a product
@pytest.mark.parametrize("bidirectional,with_state", [(False, True), (True, False)])
def test_the_kernels_bfloat16_path_equals_the_scan_under_autocast(bidirectional, with_state, input_dtype, monkeypatch):
    """Under autocast the kernel reads and writes bfloat16 itself (no conversion passes): the same
    outputs and gradients as the scan, which converts, up to float32 summation order."""
    if lru_kernel() is None:
        pytest.skip(f"the LRU's C++ kernel cannot be built here: {kernel_problem()}")
    import rnnvision.layers.lru as layer_module
    import rnnvision.ops.lru as ops_module

    calls = []
    monkeypatch.setattr(
        layer_module.KernelScanBF16,
        "apply",
        lambda *a, real=layer_module.KernelScanBF16.apply: calls.append("scan") or real(*a),
    )
    monkeypatch.setattr(
        ops_module.SkipReadout, "apply", lambda *a, real=ops_module.SkipReadout.apply: calls.append("skip") or real(*a)
    )
    torch.manual_seed(0)
    layer = LRU(6, 8, bidirectional=bidirectional, r_min=0.5, r_max=0.99)
    u, weights = torch.randn(3, 40, 6), torch.randn(3, 40, 6)
    state = torch.randn(3, 8, dtype=torch.complex64) if with_state else None
    results = {}
    for impl in ("scan", "fused"):
        layer.impl = impl
        layer.zero_grad()
        ui = u.to(input_dtype).requires_grad_(True)
        si = None if state is None else state.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y, last = layer(ui, si)
        loss = (y.float() * weights).sum() + (0.0 if last is None else (last.real * 2 + last.imag * 3).sum())
        loss.backward()
        grads = [y.float(), ui.grad] + ([si.grad] if si is not None else []) + [p.grad for p in layer.parameters()]
        results[impl] = grads
    assert set(calls) == {"scan", "skip"}, f"the kernel's bfloat16 paths were not all taken: {calls}"
    for ours, theirs in zip(results["fused"], results["scan"]):
        assert (ours - theirs).abs().max() <= 1e-2 * theirs.abs().max(), (ours - theirs).abs().max()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "readout_dtype,u_dtype",
    [
        (torch.float64, torch.float64),
        (torch.float32, torch.float32),
        (torch.bfloat16, torch.float32),  # autocast's readout, a float32 input
        (torch.bfloat16, torch.bfloat16),  # both from autocast's products (pixel_lru's blocks)
        (torch.float32, torch.bfloat16),
    ],
)
def test_the_kernels_skip_term_equals_addcmul_on_output_and_every_gradient(readout_dtype, u_dtype, threads):
    """y = readout + D * u by the kernel (one pass each way) against ``torch.addcmul(...).to(u.dtype)``:
    float64 up to rounding; float32 to float32 rounding; a bfloat16 result to one bfloat16 rounding.
    Enough rows (3 x 700) that two threads split them and dL/dD adds up partial sums."""
    if lru_kernel() is None:
        pytest.skip(f"the LRU's C++ kernel cannot be built here: {kernel_problem()}")
    d_dtype = torch.float64 if u_dtype == torch.float64 else torch.float32
    torch.manual_seed(0)
    readout = torch.randn(3, 700, 9).to(readout_dtype).requires_grad_(True)
    u = torch.randn(3, 700, 9).to(u_dtype).requires_grad_(True)
    d = torch.randn(9, dtype=d_dtype, requires_grad=True)
    weights = torch.randn(3, 700, 9, dtype=d_dtype)
    results = []
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for kernel in (lru_kernel(), None):
            for t in (readout, u, d):
                t.grad = None
            y = skip_readout(readout, d, u, kernel)
            (y.to(d_dtype) * weights).sum().backward()
            results.append([y.detach(), readout.grad, u.grad, d.grad])
    finally:
        torch.set_num_threads(previous)
    assert [t.dtype for t in results[0]] == [u_dtype, readout_dtype, u_dtype, d_dtype]
    tolerances = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2.0**-7}
    for ours, theirs in zip(*results):
        scale = theirs.double().abs().max()
        assert ((ours.double() - theirs.double()).abs() <= tolerances[ours.dtype] * scale).all()


def test_the_skip_term_falls_back_to_addcmul_for_tensors_the_kernel_does_not_take():
    if lru_kernel() is None:
        pytest.skip(f"the LRU's C++ kernel cannot be built here: {kernel_problem()}")
    readout, d = torch.randn(2, 5, 4, requires_grad=True), torch.randn(4, requires_grad=True)
    u = torch.randn(2, 4, 5).transpose(1, 2)  # not contiguous
    taken = skip_readout(readout, d, u.contiguous(), lru_kernel())  # a case the kernel takes, for contrast
    assert "SkipReadout" in type(taken.grad_fn).__name__
    cases = ((readout, u), (readout.half(), u.contiguous()), (readout.double(), u.contiguous()), (readout, u.half()))
    for r, uu in cases:
        y = skip_readout(r, d, uu, lru_kernel())
        assert y.grad_fn is not None and "SkipReadout" not in type(y.grad_fn).__name__  # d requires grad
        torch.testing.assert_close(y, torch.addcmul(r.float(), d, uu).to(uu.dtype))


def test_the_kernel_refuses_tensors_of_the_wrong_shape_instead_of_writing_past_them():
    if lru_kernel() is None:
        pytest.skip(f"the LRU's C++ kernel cannot be built here: {kernel_problem()}")
    kernel, empty = lru_kernel(), torch.empty(0)
    drive, lam = torch.randn(2, 5, 2, 3), torch.rand(2, 3)
    with pytest.raises(RuntimeError, match="out must have the shape"):
        kernel.forward(drive, lam, empty, False, torch.empty(2, 4, 2, 3), empty)
    with pytest.raises(RuntimeError, match="h0 must be"):
        kernel.forward(drive, lam, torch.zeros(1, 2, 3), False, torch.empty_like(drive), empty)
    with pytest.raises(RuntimeError, match="grad_lam must be"):
        kernel.backward(drive, lam, drive, empty, False, torch.empty_like(drive), empty)
    u, d = torch.randn(6, 4), torch.randn(4)
    with pytest.raises(RuntimeError, match="grad_u must have the shape"):
        kernel.skip_backward(u, u, d, torch.empty_like(u), torch.empty(5, 4), torch.empty_like(d))
