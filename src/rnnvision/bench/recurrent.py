"""LSTM / GRU: ``impl="fused"`` and ``impl="reference"`` against ``torch.nn`` on the same inputs."""

from __future__ import annotations

import torch
from torch import nn

from rnnvision.bench.timing import BenchRow, time_call
from rnnvision.layers import GRU, LSTM

GATE_BLOCKS = {"lstm": 4, "gru": 3}


def recurrent_flops(cell: str, batch: int, steps: int, input_size: int, hidden: int, *, backward: bool) -> float:
    """Multiply-add FLOPs of the matrix products: 2 * B * T * G*H * (I + H), tripled with backward."""
    forward = 2 * batch * steps * GATE_BLOCKS[cell] * hidden * (input_size + hidden)
    return forward * (3 if backward else 1)


def bench_recurrent(
    *, cell: str, batch: int, steps: int, input_size: int, hidden: int, matmul_rate: float,
    device: torch.device | str = "cpu", include_reference: bool = True,
) -> list[BenchRow]:
    """Rows for torch.nn, fused and reference, forward and forward+backward; checks outputs first."""
    device = torch.device(device)
    torch.manual_seed(0)
    ours = {"lstm": LSTM, "gru": GRU}[cell](input_size, hidden).to(device)
    theirs = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](input_size, hidden, batch_first=True).to(device)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(batch, steps, input_size, device=device)
    impls = ["fused", "reference"] if include_reference else ["fused"]

    def run(module, impl: str | None, backward: bool):
        if impl is not None:
            module.impl = impl

        def call():
            xi = x.requires_grad_(backward)
            out = module(xi)[0]
            if backward:
                out.sum().backward()
            return out

        return call

    with torch.no_grad():
        expected = theirs(x)[0]
        for impl in impls:
            ours.impl = impl
            torch.testing.assert_close(ours(x)[0], expected, atol=1e-4, rtol=1e-4)

    rows = []
    shape = f"B{batch} T{steps} I{input_size} H{hidden}"
    for backward in (False, True):
        kind = "fwd+bwd" if backward else "fwd"
        flops = recurrent_flops(cell, batch, steps, input_size, hidden, backward=backward)
        context = torch.enable_grad() if backward else torch.no_grad()
        with context:
            base = time_call(run(theirs, None, backward), device=device)
            rows.append(_row(cell, f"torch.nn {kind}", shape, base, base, flops, matmul_rate, device))
            for impl in impls:
                seconds = time_call(run(ours, impl, backward), device=device)
                rows.append(_row(cell, f"{impl} {kind}", shape, seconds, base, flops, matmul_rate, device))
    return rows


def _row(cell, name, shape, seconds, base, flops, matmul_rate, device) -> BenchRow:
    gflops = flops / seconds / 1e9
    return BenchRow(
        group=cell.upper(), name=name, shape=shape, seconds=seconds, baseline="torch.nn", ratio=seconds / base,
        gflops=gflops, pct_matmul=100 * gflops / matmul_rate, device=str(device),
    )
