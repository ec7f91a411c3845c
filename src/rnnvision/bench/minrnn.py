"""MinGRU: the parallel scans against the sequential loop and ``torch.nn.GRU``, on the same inputs.

Each call times a forward pass, or a training step (forward + backward of the sum of the
outputs), of one layer that projects (B, T, H) inputs to its gates and runs the recurrence.
Rows report ``ratio`` = seconds / the loop's seconds (0.1 = ten times faster than the loop).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnvision.bench.recurrent import recurrent_flops
from rnnvision.bench.timing import BenchRow, time_call
from rnnvision.layers import GRU
from rnnvision.layers.minrnn import MinGRU

# The suite's shape: a pixel_mingru block's width, and a training batch.
MINGRU_BATCH, MINGRU_HIDDEN = 64, 128


def mingru_flops(batch: int, steps: int, input_size: int, hidden: int, *, backward: bool) -> float:
    """Multiply-add FLOPs of the input projection to 2H gates: 2 * B * T * I * 2H, tripled with backward."""
    forward = 2 * batch * steps * input_size * 2 * hidden
    return forward * (3 if backward else 1)


def bench_mingru(
    *, batch: int, steps: int, hidden: int, matmul_rate: float, device: torch.device | str = "cpu",
    include_reference: bool = True,
) -> list[BenchRow]:
    """Rows for MinGRU chunked / log / reference loop and torch.nn.GRU, forward and training step.

    Outputs are checked before anything is timed: every MinGRU implementation against the loop,
    and torch.nn.GRU against rnnvision's reference GRU loaded with the same weights.
    """
    device = torch.device(device)
    torch.manual_seed(0)
    layer = MinGRU(hidden, hidden).to(device)
    gru = nn.GRU(hidden, hidden, batch_first=True).to(device)
    x = torch.randn(batch, steps, hidden, device=device)
    impls = ["chunked", "log"] + (["reference"] if include_reference else [])

    with torch.no_grad():
        layer.impl = "reference"
        expected = layer(x)[0]
        for impl in impls:
            layer.impl = impl
            torch.testing.assert_close(layer(x)[0], expected, atol=1e-4, rtol=1e-4)
        reference_gru = GRU(hidden, hidden, impl="reference").to(device)
        reference_gru.load_state_dict(gru.state_dict())
        torch.testing.assert_close(gru(x)[0], reference_gru(x)[0], atol=1e-4, rtol=1e-4)

    def call(module: nn.Module, impl: str | None, backward: bool):
        def run():
            if impl is not None:
                module.impl = impl
            out = module(x.requires_grad_(backward))[0]
            if backward:
                out.sum().backward()
            return out

        return run

    shape = f"B{batch} T{steps} H{hidden}"
    rows: list[BenchRow] = []
    for backward in (False, True):
        kind = "fwd+bwd" if backward else "fwd"
        flops = mingru_flops(batch, steps, hidden, hidden, backward=backward)
        gru_flops = recurrent_flops("gru", batch, steps, hidden, hidden, backward=backward)
        with torch.enable_grad() if backward else torch.no_grad():
            seconds = {impl: time_call(call(layer, impl, backward), device=device) for impl in impls}
            seconds["torch.nn.GRU"] = time_call(call(gru, None, backward), device=device)
        base_name = "reference" if include_reference else "chunked"
        base = seconds[base_name]
        for name, secs in seconds.items():
            gflops = (gru_flops if name == "torch.nn.GRU" else flops) / secs / 1e9
            label = {"reference": "loop", "chunked": "chunked scan", "log": "log scan"}.get(name, name)
            rows.append(BenchRow(
                group="MinGRU", name=f"{label} {kind}", shape=shape, seconds=secs,
                baseline="loop" if include_reference else "chunked scan", ratio=secs / base, gflops=gflops,
                pct_matmul=100 * gflops / matmul_rate, device=str(device),
                note="full GRU (recurrent matmuls)" if name == "torch.nn.GRU" else "",
            ))
    return rows
