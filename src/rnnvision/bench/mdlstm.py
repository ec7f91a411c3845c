"""2D LSTM: the wavefront kernel against the per-pixel reference loop, on the same inputs."""

from __future__ import annotations

import copy

import torch

from rnnvision.bench.timing import BenchRow, time_call
from rnnvision.layers.mdlstm import MDLSTM2d


def mdlstm_flops(batch: int, height: int, width: int, in_chans: int, hidden: int, directions: int, *, backward: bool) -> float:
    """Multiply-add FLOPs of the gate products: 2 * B * P * D * 5H * (C + 2H), tripled with backward."""
    forward = 2 * batch * height * width * directions * 5 * hidden * (in_chans + 2 * hidden)
    return forward * (3 if backward else 1)


def bench_mdlstm(
    *, batch: int, size: int, in_chans: int, hidden: int, directions: int, matmul_rate: float,
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

    def run(impl: str, backward: bool):
        def call():
            layer.impl = impl
            out = layer(x.requires_grad_(backward))
            if backward:
                out.sum().backward()

        return call

    rows = []
    shape = f"B{batch} C{in_chans} {size}x{size} H{hidden} D{directions}"
    for backward in (False, True):
        kind = "fwd+bwd" if backward else "fwd"
        flops = mdlstm_flops(batch, size, size, in_chans, hidden, directions, backward=backward)
        with torch.enable_grad() if backward else torch.no_grad():
            base = time_call(run("reference", backward), device=device, warmup=1, min_seconds=0.0)
            fast = time_call(run("wavefront", backward), device=device)
        for impl, seconds in (("reference", base), ("wavefront", fast)):
            gflops = flops / seconds / 1e9
            rows.append(BenchRow(
                group="MDLSTM2d", name=f"{impl} {kind}", shape=shape, seconds=seconds, baseline="reference",
                ratio=seconds / base, gflops=gflops, pct_matmul=100 * gflops / matmul_rate, device=str(device),
                note=f"{base / seconds:.1f}x faster than the reference" if impl == "wavefront" else "",
            ))
    return rows
