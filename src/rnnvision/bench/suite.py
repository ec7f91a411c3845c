"""The benchmark suite: one entry per family, each returning rows measured in this process.

An entry is ``fn(*, quick, device, matmul_rate) -> list[BenchRow]``; ``quick`` keeps sizes small
enough for a smoke run. ``run_suite`` measures the machine's matrix-multiply rate once and passes
it to every family so each row can report its share of it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rnnvision.bench.pixelrnn import bench_layers, bench_sampling
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


def pixelrnn_suite(*, quick: bool, device: torch.device, matmul_rate: float) -> list[BenchRow]:
    """Row LSTM / Diagonal BiLSTM fused vs per-pixel reference at the binarized-MNIST shape; sampling 64
    images with the recurrent state carried (incremental) vs rerunning the network per pixel (naive)."""
    size, layers = (12, 2) if quick else (28, 7)
    rows = bench_layers(batch=16, height=size, width=size, hidden=16, matmul_rate=matmul_rate, device=device)
    for name in ("pixelrnn_row", "pixelrnn_diag"):
        rows += bench_sampling(model_name=name, n=64, size=size, layers=layers, hidden=16, device=device)
    return rows


SUITES: dict[str, SuiteFn] = {"recurrent": recurrent_suite, "pixelrnn": pixelrnn_suite}


def run_suite(names: list[str] | None = None, *, quick: bool = False, device: str = "cpu") -> tuple[list[BenchRow], float]:
    """Run the named families (all by default); returns the rows and the matmul rate used."""
    torch_device = torch.device(device)
    rate = matmul_gflops(device=torch_device)
    rows: list[BenchRow] = []
    for name in names or list(SUITES):
        rows += SUITES[name](quick=quick, device=torch_device, matmul_rate=rate)
    return rows, rate
