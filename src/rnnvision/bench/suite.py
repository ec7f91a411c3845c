"""The benchmark suite: one entry per family, each returning rows measured in this process.

An entry is ``fn(*, quick, device, matmul_rate) -> list[BenchRow]``; ``quick`` keeps sizes small
enough for a smoke run. ``run_suite`` measures the machine's matrix-multiply rate once and passes
it to every family so each row can report its share of it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import torch

from rnnvision.bench.mdlstm import bench_mdlstm
from rnnvision.bench.minrnn import bench_linear_scan, bench_mingru
from rnnvision.bench.pixelrnn import bench_layers, bench_sampling
from rnnvision.bench.recognition import bench_crnn_latency
from rnnvision.bench.recurrent import bench_recurrent
from rnnvision.bench.renet import bench_renet
from rnnvision.bench.timing import BenchRow, matmul_gflops

SuiteFn = Callable[..., list[BenchRow]]


def recurrent_suite(*, quick: bool, device: torch.device, matmul_rate: float) -> list[BenchRow]:
    """LSTM/GRU fused vs reference vs torch.nn: row-by-row MNIST shape, and batch 64 / hidden 512."""
    shapes = [(128, 28, 28, 128)] if quick else [(128, 28, 28, 128), (64, 100, 256, 512)]
    rows = []
    for cell in ("lstm", "gru"):
        for batch, steps, input_size, hidden in shapes:
            rows += bench_recurrent(
                cell=cell,
                batch=batch,
                steps=steps,
                input_size=input_size,
                hidden=hidden,
                matmul_rate=matmul_rate,
                device=device,
            )
    return rows


def recognition_suite(*, quick: bool, device: torch.device, matmul_rate: float) -> list[BenchRow]:
    """CRNN word-image (32x100) latency at batch 1 and 32, greedy decoding included."""
    rows = []
    for size in ("small",) if quick else ("small", "medium", "base"):
        rows += bench_crnn_latency(size=size, device=device)
    return rows


def pixelrnn_suite(*, quick: bool, device: torch.device, matmul_rate: float) -> list[BenchRow]:
    """Row LSTM / Diagonal BiLSTM fused vs per-pixel reference at the binarized-MNIST shape; sampling 64
    images with the recurrent state carried (incremental) vs rerunning the network per pixel (naive)."""
    size, layers = (12, 2) if quick else (28, 7)
    rows = bench_layers(batch=16, height=size, width=size, hidden=16, matmul_rate=matmul_rate, device=device)
    for name in ("pixelrnn_row", "pixelrnn_diag"):
        rows += bench_sampling(model_name=name, n=64, size=size, layers=layers, hidden=16, device=device)
    return rows


def mdlstm_suite(*, quick: bool, device: torch.device, matmul_rate: float) -> list[BenchRow]:
    """MDLSTM2d wavefront vs the per-pixel reference: batch 8, hidden 32, 4 directions, 32x32 and 64x64."""
    sizes = [16] if quick else [32, 64]
    return [
        row
        for size in sizes
        for row in bench_mdlstm(
            batch=8, size=size, in_chans=3, hidden=32, directions=4, matmul_rate=matmul_rate, device=device
        )
    ]


def renet_suite(*, quick: bool, device: torch.device, matmul_rate: float) -> list[BenchRow]:
    """ReNetLayer vs two bidirectional torch.nn.LSTM calls on the same folded data (its lower bound)."""
    # (batch, channels, size, patch, hidden): the two layers of the MNIST recipe, and a larger RGB image
    shapes = [(32, 1, 28, 2, 32)] if quick else [(128, 1, 28, 2, 64), (128, 128, 14, 2, 64), (16, 3, 64, 2, 128)]
    return [
        row
        for batch, chans, size, patch, hidden in shapes
        for row in bench_renet(
            batch=batch, in_chans=chans, size=size, patch=patch, hidden=hidden, matmul_rate=matmul_rate, device=device
        )
    ]


def minrnn_suite(*, quick: bool, device: torch.device, matmul_rate: float) -> list[BenchRow]:
    """MinGRU scans vs the loop vs torch.nn.GRU at T = 784 (sequential MNIST) and 4096; batch 64 and 8, hidden 128."""
    shapes = [(64, 784)] if quick else [(64, 784), (8, 784), (64, 4096)]
    rows = []
    for batch, steps in shapes:
        rows += bench_mingru(batch=batch, steps=steps, hidden=128, matmul_rate=matmul_rate, device=device)
        rows += bench_linear_scan(batch=batch, steps=steps, hidden=128, device=device)
    return rows


SUITES: dict[str, SuiteFn] = {
    "recurrent": recurrent_suite,
    "recognition": recognition_suite,
    "mdlstm": mdlstm_suite,
    "renet": renet_suite,
    "minrnn": minrnn_suite,
    "pixelrnn": pixelrnn_suite,
}


def run_suite(
    names: list[str] | None = None,
    *,
    quick: bool = False,
    device: str = "cpu",
    matmul_rate: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[BenchRow], float]:
    """Run the named families (all by default); returns the rows and the matmul rate used.

    The rate is measured here unless ``matmul_rate`` (GFLOP/s, measured by the caller in this
    process) is given. ``progress`` gets one line as each family starts and ends (the CLI prints them).
    """
    torch_device = torch.device(device)
    families = names or list(SUITES)
    with exact_float32():
        rate = matmul_gflops(device=torch_device) if matmul_rate is None else matmul_rate
        rows: list[BenchRow] = []
        for number, name in enumerate(families, start=1):
            if progress:
                progress(f"bench: {name} ({number}/{len(families)}) ...")
            start = time.perf_counter()
            found = SUITES[name](quick=quick, device=torch_device, matmul_rate=rate)
            rows += found
            if progress:
                progress(f"bench: {name} done, {len(found)} rows in {time.perf_counter() - start:.0f} s")
    return rows, rate


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """Turn TensorFloat-32 off in cuBLAS and cuDNN while the suite runs (restored after).

    Every row is checked against its reference with float32 tolerances, and cuDNN's RNNs and
    convolutions round to TF32 by default on Ampere and later GPUs; TF32 would time another function.
    """
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
