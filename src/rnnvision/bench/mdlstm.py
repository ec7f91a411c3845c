"""2D LSTM: the wavefront kernel against the per-pixel reference loop, on the same inputs."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor

from rnnvision.bench.timing import KINDS, BenchRow, rate_row, time_forward_backward, with_impl
from rnnvision.impl import MDLSTMImpl
from rnnvision.layers.mdlstm import MDLSTM2d


def mdlstm_flops(
    batch: int, height: int, width: int, in_chans: int, hidden: int, directions: int, *, backward: bool
) -> float:
    """Multiply-add FLOPs of the gate products: 2 * B * P * D * 5H * (C + 2H), tripled with backward."""
    forward = 2 * batch * height * width * directions * 5 * hidden * (in_chans + 2 * hidden)
    return forward * (3 if backward else 1)


def bench_mdlstm(
    *,
    batch: int,
    size: int,
    in_chans: int,
    hidden: int,
    directions: int,
    matmul_rate: float,
    device: torch.device | str = "cpu",
) -> list[BenchRow]:
    """Reference and wavefront rows, forward and forward+backward; checks the outputs agree (float64) first."""
    device = torch.device(device)
    torch.manual_seed(0)
    layer = MDLSTM2d(in_chans, hidden, directions=directions).to(device)
    x = torch.randn(batch, in_chans, size, size, device=device)
    with torch.no_grad():  # same computation, checked in float64: fp32 rounding grows along long scan paths
        check, x64 = copy.deepcopy(layer).double(), x.double()
        expected = check.forward_directions(x64)
        check.impl = "reference"
        torch.testing.assert_close(check.forward_directions(x64), expected, atol=1e-10, rtol=0)

    impls: tuple[MDLSTMImpl, ...] = ("reference", "wavefront")
    calls: dict[str, Callable[[Tensor], Tensor]] = {impl: with_impl(layer, impl) for impl in impls}
    slow = {"reference": {"warmup": 1, "min_seconds": 0.0}}  # the per-pixel loop: one timed call may take seconds
    shape = f"B{batch} C{in_chans} {size}x{size} H{hidden} D{directions}"
    return [
        rate_row(
            group="MDLSTM2d",
            name=f"{impl} {KINDS[backward]}",
            shape=shape,
            seconds=secs,
            base=seconds["reference"],
            baseline="reference",
            matmul_rate=matmul_rate,
            device=device,
            flops=mdlstm_flops(batch, size, size, in_chans, hidden, directions, backward=backward),
            note=f"{seconds['reference'] / secs:.1f}x faster than the reference" if impl == "wavefront" else "",
        )
        for backward, seconds in time_forward_backward(calls, (x,), device=device, options=slow).items()
        for impl, secs in seconds.items()
    ]
