"""LRU training step at T = 784: the real-pair chunked scan vs its reference loop vs torch.nn.LSTM.

One process, the same inputs. Every row is timed twice: wall clock and the process's CPU time
(``time.process_time``: user + system, so page faults count). On a shared machine the wall clock
includes the time other processes held the core; the CPU time does not, and is the figure to
compare. Medians over ``--repeats`` calls after one warm-up.

Layer mode (default): LRU(I, N) on (B, T, I); the scan, the matmul form, the C++ kernel (``impl="fused"``,
on the CPU where it builds) and the loop must agree (outputs and input gradients, ``allclose``) before
anything is timed; torch.nn.LSTM, and two stacked IndRNN layers (Li et al. 2018, its fused loop), get
the hidden size that gives them the LRU's parameter count. The step
is ``(out * w).sum().backward()``. More rows split the LRU's time: its two projections alone (``B u``
and ``C x``, the matrix multiplies that every implementation runs) and its recurrence alone (scan,
C++ kernel and loop on a ready drive).

    OMP_NUM_THREADS=1 python benchmarks/bench_lru.py --batch 32 --steps 784

After the table, a line per fast implementation gives issue 12's two ratios: its reference loop's
time and torch.nn.LSTM's over its own (CPU time; wall clock on a GPU).

``--bf16`` runs the three steps and the projections under bfloat16 autocast, torch.nn.LSTM included
(its oneDNN kernel has a bf16 path): on CPUs with AMX or AVX512-BF16 the matrix multiplies speed up.

``--device cuda``: the same rows on a GPU. Each call is followed by ``torch.cuda.synchronize()``
and the ratios compare wall clock (the process's CPU time there counts only the host's launches).
TF32 is off, so float32 products stay float32.

    python benchmarks/bench_lru.py --device cuda --batch 32 --steps 784 [--bf16]

``--model pixel_lru``: one training step (forward, cross-entropy, backward, AdamW step) of
``pixel_lru`` as configs/mnist_pixel_lru.yaml builds it (dim 64, state 128, depth 4) on a batch of
random 28 x 28 images, float32 and bfloat16 autocast, scan, matmul form, reference loop and C++ kernel.

    OMP_NUM_THREADS=1 python benchmarks/bench_lru.py --model pixel_lru --batch 32
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from rnnvision.impl import LRUImpl
from rnnvision.layers.indrnn import IndRNN
from rnnvision.layers.lru import LRU
from rnnvision.models import create_model
from rnnvision.ops.lru import PairScan, lru_recurrence, lru_recurrence_reference
from rnnvision.ops.lru_kernel import kernel_problem, lru_kernel

LAYER_ROWS: dict[str, str] = {  # each LRU implementation's row in the layer table
    "scan": "LRU scan",
    "matmul": "LRU matmul form",
    "reference": "LRU reference loop",
    "fused": "LRU C++ kernel (fused)",
}
LSTM_ROW = "torch.nn.LSTM"


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _lstm_matching(input_size: int, target: int) -> nn.LSTM:
    """torch.nn.LSTM(I, H) with 4H(I + H) + 8H parameters closest to ``target``."""
    linear = 4 * input_size + 8  # 4H^2 + (4I + 8)H = target
    hidden = round((-linear + math.sqrt(linear**2 + 16 * target)) / 8)
    return nn.LSTM(input_size, hidden, batch_first=True)


def _indrnn_matching(input_size: int, target: int) -> IndRNN:
    """Two stacked IndRNN layers (I -> H -> H) with H^2 + (I + 4)H parameters closest to ``target``."""
    linear = input_size + 4
    hidden = round((-linear + math.sqrt(linear**2 + 4 * target)) / 2)
    return IndRNN(input_size, hidden, num_layers=2)


def _timed(fn: Callable[[], object], repeats: int, min_seconds: float) -> tuple[float, float]:
    """(wall, CPU) median seconds of one call of ``fn`` after one warm-up call; on CUDA, until the device is done."""

    def call() -> None:
        fn()
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()

    call()
    walls: list[float] = []
    cpus: list[float] = []
    started = time.perf_counter()
    while len(walls) < repeats or time.perf_counter() - started < min_seconds:
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus)


def _step(module: nn.Module, x: torch.Tensor, weight: torch.Tensor, bf16: bool = False) -> None:
    x.grad = None
    module.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = module(x)[0]
    (out.float() * weight[..., : out.shape[-1]]).sum().backward()


def _table(header: str, times: dict[str, tuple[float, float]], base: str, device: torch.device) -> None:
    if device.type == "cuda":  # the host's CPU time says nothing of the GPU's
        print(f"| {header} | wall ms | wall time relative to {base} |")
        print("|---|---:|---:|")
        for name, (wall, _) in times.items():
            print(f"| {name} | {wall * 1e3:,.2f} | {wall / times[base][0]:.2f}x |")
        return
    print(f"| {header} | wall ms | CPU ms | CPU time relative to {base} |")
    print("|---|---:|---:|---:|")
    for name, (wall, cpu) in times.items():
        print(f"| {name} | {wall * 1e3:,.1f} | {cpu * 1e3:,.1f} | {cpu / times[base][1]:.2f}x |")


def _layer_mode(args: argparse.Namespace) -> None:
    device = args.device
    lru = LRU(args.input, args.state, r_min=0.9, r_max=0.999, max_phase=math.pi).to(device)
    lstm = _lstm_matching(args.input, _params(lru)).to(device)
    indrnn = _indrnn_matching(args.input, _params(lru)).to(device)
    x = torch.randn(args.batch, args.steps, args.input, device=device, requires_grad=True)
    widest = max(args.input, indrnn.hidden_size)  # each step's loss reads as many columns as its output has
    weight = torch.randn(args.batch, args.steps, widest, device=device)

    results = {}
    impls: tuple[LRUImpl, ...] = ("scan", "matmul", "reference") + (("fused",) if _kernel_here(device) else ())
    for impl in impls:
        lru.impl = impl
        _step(lru, x, weight)
        assert x.grad is not None
        results[impl] = (lru(x)[0].detach(), x.grad.clone())
    for fast in (impl for impl in impls if impl != "reference"):
        torch.testing.assert_close(results[fast][0], results["reference"][0], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(results[fast][1], results["reference"][1], rtol=1e-4, atol=1e-4)

    w_in = torch.randn(2 * args.state, args.input, device=device, requires_grad=True)
    w_out = torch.randn(args.input, 2 * args.state, device=device, requires_grad=True)

    def projections() -> None:  # B u, then C x on its result: the shapes of the LRU's two matrix multiplies
        x.grad = None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            out = F.linear(F.linear(x, w_in), w_out)
        (out.float() * weight[..., : args.input]).sum().backward()

    # the recurrence alone, each in its own form: the loop on complex numbers, the scan on real pairs
    lam = lru.eigenvalues().detach().requires_grad_(True)  # (N,) complex
    drive = torch.randn(args.batch, args.steps, args.state, dtype=torch.complex64, device=device, requires_grad=True)
    h0 = torch.zeros(args.batch, args.state, dtype=torch.complex64, device=device)
    drive_weight = torch.randn_like(drive)
    lam_pairs = torch.stack([lam.real, lam.imag]).detach().requires_grad_(True)  # (2, N)
    drive_pairs = torch.stack([drive.real, drive.imag], dim=2).detach().requires_grad_(True)  # (B, T, 2, N)
    pairs_weight = torch.stack([drive_weight.real, drive_weight.imag], dim=2)

    def loop() -> None:
        drive.grad = lam.grad = None
        (lru_recurrence_reference(lam, drive, h0) * drive_weight).real.sum().backward()

    def scan() -> None:
        drive_pairs.grad = lam_pairs.grad = None
        (lru_recurrence(lam_pairs, drive_pairs) * pairs_weight).sum().backward()

    def kernel() -> None:
        drive_pairs.grad = lam_pairs.grad = None
        (PairScan.apply(lam_pairs, drive_pairs, None, args.state, 1, lru_kernel()) * pairs_weight).sum().backward()

    times = {}
    for impl in impls:
        lru.impl = impl
        times[LAYER_ROWS[impl]] = _timed(lambda: _step(lru, x, weight, args.bf16), args.repeats, args.min_seconds)
    times[LSTM_ROW] = _timed(lambda: _step(lstm, x, weight, args.bf16), args.repeats, args.min_seconds)
    times["IndRNN, 2 layers (its fused loop)"] = _timed(
        lambda: _step(indrnn, x, weight, args.bf16), args.repeats, args.min_seconds
    )
    times["LRU projections alone (B u, C x)"] = _timed(projections, args.repeats, args.min_seconds)
    times["LRU recurrence alone: scan (real pairs)"] = _timed(scan, args.repeats, args.min_seconds)
    times["LRU recurrence alone: loop (complex)"] = _timed(loop, args.repeats, args.min_seconds)
    if "fused" in impls:
        times["LRU recurrence alone: C++ kernel (real pairs)"] = _timed(kernel, args.repeats, args.min_seconds)
    print(
        f"B {args.batch} T {args.steps} I {args.input} N {args.state}; "
        f"parameters: LRU {_params(lru):,}, torch.nn.LSTM(hidden {lstm.hidden_size}) {_params(lstm):,}, "
        f"IndRNN(hidden {indrnn.hidden_size}, 2 layers) {_params(indrnn):,}; "
        f"{'bf16 autocast for the steps and projections (the recurrence-alone rows stay float32)' if args.bf16 else 'float32'}"
    )
    _table("implementation (fwd+bwd)", times, LAYER_ROWS["scan"], device)
    _targets(times, device)


def _targets(times: dict[str, tuple[float, float]], device: torch.device) -> None:
    """The issue's two ratios for each fast implementation: its loop's time and torch.nn.LSTM's over its own."""
    clock = 0 if device.type == "cuda" else 1  # wall on a GPU, CPU time on the CPU (as in the table)
    loop, lstm = times[LAYER_ROWS["reference"]][clock], times[LSTM_ROW][clock]
    for name in (LAYER_ROWS["scan"], LAYER_ROWS["fused"]):
        if name in times:
            ours = times[name][clock]
            print(f"{name}: its reference loop takes {loop / ours:.2f}x its time, torch.nn.LSTM {lstm / ours:.2f}x")


def _model_mode(args: argparse.Namespace) -> None:
    device = args.device
    images = torch.rand(args.batch, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (args.batch,), device=device)
    models = {
        impl: create_model(
            "pixel_lru",
            dim=64,
            state_size=128,
            depth=4,
            r_min=0.9,
            r_max=0.999,
            max_phase=3.14159,
            pool="mean",
            impl=impl,
        )
        for impl in ("scan", "matmul", "reference") + (("fused",) if _kernel_here(device) else ())
    }
    for model in models.values():
        model.to(device)
    for impl in models:
        models[impl].load_state_dict(models["scan"].state_dict())
    print(f"pixel_lru (dim 64, state 128, depth 4), {_params(models['scan']):,} parameters, batch {args.batch}, T 784")
    for bf16 in (False, True):
        times = {}
        for impl, model in models.items():
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

            def train_step(model: nn.Module = model, optimizer: torch.optim.Optimizer = optimizer) -> None:
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = F.cross_entropy(model(images).float(), labels)
                loss.backward()
                optimizer.step()

            times[f"{impl}, {'bf16 autocast' if bf16 else 'float32'}"] = _timed(
                train_step, args.repeats, args.min_seconds
            )
        _table("pixel_lru training step", times, f"scan, {'bf16 autocast' if bf16 else 'float32'}", device)


def _kernel_here(device: torch.device) -> bool:
    """Whether the LRU's C++ kernel (``impl="fused"``, CPU only) runs here; says why not when it cannot."""
    if device.type != "cpu":
        return False
    if lru_kernel() is None:
        print(f"no C++ kernel row: {kernel_problem()}")
    return lru_kernel() is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["pixel_lru"], default=None, help="time a whole model's training step")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=784)
    parser.add_argument("--input", type=int, default=128, help="I, the LRU's input and output width")
    parser.add_argument("--state", type=int, default=128, help="N, complex states")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument(
        "--bf16", action="store_true", help="layer mode: the steps and projections under bfloat16 autocast (LSTM too)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="at least this many timed calls (the medians are reported)"
    )
    args = parser.parse_args()
    if min(args.batch, args.steps, args.input, args.state, args.repeats) < 1:
        parser.error("--batch, --steps, --input, --state and --repeats must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    args.device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    gpu = f"; GPU {torch.cuda.get_device_name(args.device)}" if args.device.type == "cuda" else ""
    print(
        f"machine: {platform.processor() or platform.machine()}; torch {torch.__version__}; "
        f"threads {torch.get_num_threads()}{gpu}"
    )
    if args.model:
        _model_mode(args)
    else:
        _layer_mode(args)


if __name__ == "__main__":
    main()
