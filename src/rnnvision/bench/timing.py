"""What every benchmark shares: timing (one helper, :func:`time_call`), memory kept for the backward, the tables written."""

from __future__ import annotations

import csv
import dataclasses
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from rnnvision.files import atomic_path, atomic_write_text


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], object],
    *,
    device: torch.device | str = "cpu",
    warmup: int = 2,
    min_seconds: float = 0.5,
    min_repeats: int = 3,
    max_repeats: int = 50,
) -> float:
    """Median seconds of one call of ``fn`` after ``warmup`` calls; repeats until ``min_seconds`` elapsed."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - started < min_seconds and len(times) < max_repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_times(
    calls: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    warmup_rounds: int = 0,
    device: torch.device | str = "cpu",
    **options: Any,
) -> dict[str, list[float]]:
    """Seconds of each of ``calls`` in each of ``rounds`` rounds, the calls alternating within a round:
    a machine whose load changes (other work beside) slows them all alike rather than whichever
    ran during a busy spell. Each entry is :func:`time_call`'s median with ``options`` (its
    keywords); ``warmup_rounds`` rounds of one call each run first, untimed."""
    for _ in range(warmup_rounds):
        for call in calls.values():
            call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            seconds[name].append(time_call(call, device=device, **options))
    return seconds


class Switchable(Protocol):
    """A layer with a choice of implementation: its ``impl`` attribute (see :mod:`rnnvision.impl`)."""

    impl: Any

    def __call__(self, x: Tensor) -> Any: ...


def with_impl(layer: Switchable, impl: str, *, first_output: bool = False) -> Callable[[Tensor], Tensor]:
    """A call of ``layer`` that sets its ``impl`` first (every implementation runs the same
    parameters, so each call sets its own); ``first_output`` for a layer returning (output, state)."""

    def call(x: Tensor) -> Tensor:
        layer.impl = impl
        out = layer(x)
        return out[0] if first_output else out

    return call


def time_forward_backward(
    calls: dict[str, Callable[..., Tensor]],
    inputs: tuple[Tensor, ...],
    *,
    device: torch.device | str = "cpu",
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[bool, dict[str, float]]:
    """Seconds of each of ``calls`` on ``inputs``: ``[False]`` the forward pass alone (no grad),
    ``[True]`` a training step (forward, then backward of the output's sum). Every call gets fresh
    leaf copies of ``inputs``; ``options[name]`` are :func:`time_call` keywords for that call."""
    seconds: dict[bool, dict[str, float]] = {}
    for backward in (False, True):

        def run(call: Callable[..., Tensor]) -> Callable[[], Tensor]:
            def once() -> Tensor:
                out = call(*(t.detach().requires_grad_(backward) for t in inputs))
                if backward:
                    out.sum().backward()
                return out

            return once

        with torch.enable_grad() if backward else torch.no_grad():
            seconds[backward] = {
                name: time_call(run(call), device=device, **(options or {}).get(name, {}))
                for name, call in calls.items()
            }
    return seconds


def rate_row(
    *,
    group: str,
    name: str,
    shape: str,
    seconds: float,
    base: float,
    baseline: str,
    flops: float,
    matmul_rate: float,
    device: torch.device | str,
    note: str = "",
) -> BenchRow:
    """A row for ``flops`` done in ``seconds``: its ratio to ``base`` seconds, GFLOP/s and % of the matmul rate."""
    gflops = flops / seconds / 1e9
    return BenchRow(
        group=group,
        name=name,
        shape=shape,
        seconds=seconds,
        baseline=baseline,
        ratio=seconds / base,
        gflops=gflops,
        pct_matmul=100 * gflops / matmul_rate,
        device=str(device),
        note=note,
    )


KINDS = {False: "fwd", True: "fwd+bwd"}  # the names of the two passes time_forward_backward times


def _matmul_calls(n: int, device: torch.device, dtype: torch.dtype) -> dict[str, Callable[[], object]]:
    """(n x n) @ (n x n) through torch.mm, and on CPU also through oneDNN (torch's other GEMM)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    calls: dict[str, Callable[[], object]] = {"torch.mm": lambda: a @ b}
    mkldnn_linear = getattr(torch._C._nn, "mkldnn_linear", None)
    if device.type == "cpu" and dtype == torch.float32 and torch.backends.mkldnn.is_available() and mkldnn_linear:
        am, bm = a.to_mkldnn(), b.to_mkldnn()
        calls["oneDNN"] = lambda: mkldnn_linear(am, bm)
    return calls


def matmul_rates(
    *,
    sizes: tuple[int, ...] = (512, 1024, 2048),
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> dict[str, float]:
    """Best GFLOP/s of square (n x n) @ (n x n) products over ``sizes``, per GEMM ("torch.mm", "oneDNN")."""
    device = torch.device(device)
    rates: dict[str, float] = {}
    for n in sizes:
        for name, call in _matmul_calls(n, device, dtype).items():
            rates[name] = max(rates.get(name, 0.0), 2 * n**3 / time_call(call, device=device) / 1e9)
    return rates


def matmul_gflops(
    *,
    sizes: tuple[int, ...] = (512, 1024, 2048),
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> float:
    """This machine's matrix-multiply rate: the best GFLOP/s of square (n x n) @ (n x n) products.

    On CPU torch has two GEMMs (MKL/OpenBLAS behind ``torch.mm`` and oneDNN behind its fused RNN
    and convolution kernels); on some processors oneDNN is markedly faster, so both are timed
    and the best counts as the machine's rate (:func:`matmul_rates` gives each).
    """
    return max(matmul_rates(sizes=sizes, device=device, dtype=dtype).values())


@dataclass
class BenchRow:
    """One measured row. ``ratio`` is seconds / baseline seconds (lower is faster)."""

    group: str
    name: str
    shape: str
    seconds: float
    baseline: str = ""
    ratio: float | None = None
    gflops: float | None = None
    pct_matmul: float | None = None
    device: str = "cpu"
    note: str = ""


def machine_summary() -> str:
    """Machine, torch version and thread count, for the header of a results table."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    threads = torch.get_num_threads()
    return f"{cpu}, {threads} thread{'s' * (threads != 1)}{gpu}; torch {torch.__version__}; Python {platform.python_version()}"


def write_csv(rows: list[BenchRow], path: str | Path) -> None:
    fields = [f.name for f in dataclasses.fields(BenchRow)]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(dataclasses.asdict(row))


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def markdown_table(rows: list[BenchRow]) -> str:
    lines = [
        "| group | name | shape | ms | vs | ratio | GFLOP/s | % of matmul | device |",
        "|---|---|---|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.group} | {r.name} | {r.shape} | {r.seconds * 1e3:.2f} | {r.baseline} | {_fmt(r.ratio, '.2f')} "
            f"| {_fmt(r.gflops, '.1f')} | {_fmt(r.pct_matmul, '.0f')} | {r.device} |"
        )
    return "\n".join(lines) + "\n"


def write_markdown(rows: list[BenchRow], path: str | Path, *, title: str, command: str) -> None:
    text = f"### {title}\n\nCommand: `{command}`  \nMachine: {machine_summary()}\n\n{markdown_table(rows)}"
    atomic_write_text(path, text)


def write_tables(rows: list[BenchRow], out_dir: str | Path, stem: str, *, title: str, command: str) -> str:
    """Write ``<stem>.csv`` and ``<stem>.md`` (:func:`write_csv`, :func:`write_markdown`) under
    ``out_dir``; returns the markdown, for a script to print."""
    out = Path(out_dir)
    write_csv(rows, out / f"{stem}.csv")
    write_markdown(rows, out / f"{stem}.md", title=title, command=command)
    return (out / f"{stem}.md").read_text()


def saved_for_backward(fn: Callable[[], object]) -> tuple[int, int]:
    """(bytes, tensors) that ``fn``'s forward keeps for the backward: the distinct storages autograd
    saves, counted with ``torch.autograd.graph.saved_tensors_hooks``."""
    storages: dict[int, int] = {}
    count = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal count
        count += 1
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values()), count
