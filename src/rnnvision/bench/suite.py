"""The benchmark suite: one entry per family, each returning rows measured in this process.

An entry is ``fn(*, quick, device, matmul_rate) -> list[BenchRow]``; ``quick`` keeps sizes small
enough for a smoke run. ``run_suite`` measures the machine's matrix-multiply rate once and passes
it to every family so each row can report its share of it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rnnvision.bench.minrnn import bench_linear_scan, bench_mingru
from rnnvision.bench.recurrent import bench_recurrent
from rnnvision.bench.timing import BenchRow, matmul_gflops

SuiteFn = Callable[..., list[BenchRow]]


def recurrent_suite(*, quick: bool, device: torch.device, matmul_rate: float) -> list[BenchRow]:
    """LSTM/GRU fused vs reference vs torch.nn: row-by-row MNIST shape, and batch 64 / hidden 512."""
    shapes = [(128, 28, 28, 128)] if quick else [(128, 28, 28, 128), (64, 100, 256, 512)]
    rows = []
    for cell in ("lstm", "gru"):
        for batch, steps, input_size, hidden in shapes:
            rows += bench_recurrent(
                cell=cell, batch=batch, steps=steps, input_size=input_size, hidden=hidden,
                matmul_rate=matmul_rate, device=device,
            )
    return rows


def minrnn_suite(*, quick: bool, device: torch.device, matmul_rate: float) -> list[BenchRow]:
    """MinGRU scans vs the loop vs torch.nn.GRU at T = 784 (sequential MNIST) and 4096; batch 64 and 8, hidden 128."""
    shapes = [(64, 784)] if quick else [(64, 784), (8, 784), (64, 4096)]
    rows = []
    for batch, steps in shapes:
        rows += bench_mingru(batch=batch, steps=steps, hidden=128, matmul_rate=matmul_rate, device=device)
        rows += bench_linear_scan(batch=batch, steps=steps, hidden=128, device=device)
    return rows


SUITES: dict[str, SuiteFn] = {"recurrent": recurrent_suite, "minrnn": minrnn_suite}


def run_suite(
    names: list[str] | None = None, *, quick: bool = False, device: str = "cpu", matmul_rate: float | None = None
) -> tuple[list[BenchRow], float]:
    """Run the named families (all by default); returns the rows and the matmul rate used.

    The rate is measured here unless ``matmul_rate`` (GFLOP/s, measured by the caller in this
    process) is given.
    """
    torch_device = torch.device(device)
    rate = matmul_gflops(device=torch_device) if matmul_rate is None else matmul_rate
    rows: list[BenchRow] = []
    for name in names or list(SUITES):
        rows += SUITES[name](quick=quick, device=torch_device, matmul_rate=rate)
    return rows, rate
