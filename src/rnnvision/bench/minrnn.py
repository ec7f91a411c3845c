"""MinGRU and its scans against the sequential loop and ``torch.nn.GRU``, on the same inputs.

Two families of rows, each timed as a forward pass and as a training step (forward + backward of
the sum of the outputs): a whole MinGRU layer (input projection to the gates, gate
nonlinearities, recurrence) and the recurrence ``h_t = a_t h_{t-1} + b_t`` alone. ``ratio`` is
seconds / the loop's seconds (0.1 = ten times faster than the loop). The layer family also times
its input projection alone: every implementation runs that matrix multiply, so loop / projection
is the most any scan can gain over the loop in the layer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.bench.recurrent import recurrent_flops
from rnnvision.bench.timing import KINDS, BenchRow, rate_row, time_forward_backward, with_impl
from rnnvision.impl import MinImpl, ScanImpl
from rnnvision.layers import GRU
from rnnvision.layers.minrnn import MinGRU
from rnnvision.ops.scan import linear_scan, linear_scan_reference


def mingru_flops(batch: int, steps: int, input_size: int, hidden: int, *, backward: bool) -> float:
    """Multiply-add FLOPs of the input projection to 2H gates: 2 * B * T * I * 2H, tripled with backward."""
    forward = 2 * batch * steps * input_size * 2 * hidden
    return forward * (3 if backward else 1)


def bench_mingru(
    *, batch: int, steps: int, hidden: int, matmul_rate: float, device: torch.device | str = "cpu"
) -> list[BenchRow]:
    """Rows for a MinGRU layer (input projection, gates, recurrence) and torch.nn.GRU, forward and training step.

    Outputs are checked before anything is timed: every MinGRU implementation against the loop,
    and torch.nn.GRU against rnnvision's reference GRU loaded with the same weights.
    """
    device = torch.device(device)
    torch.manual_seed(0)
    layer = MinGRU(hidden, hidden).to(device)
    gru = nn.GRU(hidden, hidden, batch_first=True).to(device)
    x = torch.randn(batch, steps, hidden, device=device)
    with torch.no_grad():
        layer.impl = "reference"
        expected = layer(x)[0]
        for impl in SCAN_IMPLS:
            layer.impl = impl
            torch.testing.assert_close(layer(x)[0], expected, atol=1e-4, rtol=1e-4)
        reference_gru = GRU(hidden, hidden, impl="reference").to(device)
        reference_gru.load_state_dict(gru.state_dict())
        torch.testing.assert_close(gru(x)[0], reference_gru(x)[0], atol=1e-4, rtol=1e-4)

    impls: tuple[MinImpl, ...] = (*SCAN_IMPLS, "reference")
    calls: dict[str, Callable[..., Tensor]] = {
        LABELS[impl]: with_impl(layer, impl, first_output=True) for impl in impls
    }
    calls[PROJECTION] = layer.proj
    calls["torch.nn.GRU"] = lambda xi: gru(xi)[0]
    shape = f"B{batch} T{steps} H{hidden}"
    rows = []
    for backward, seconds in time_forward_backward(calls, (x,), device=device).items():
        flops = mingru_flops(batch, steps, hidden, hidden, backward=backward)
        gru_flops = recurrent_flops("gru", batch, steps, hidden, hidden, backward=backward)
        rows += [
            rate_row(
                group="MinGRU",
                name=f"{name} {KINDS[backward]}",
                shape=shape,
                seconds=secs,
                base=seconds["loop"],
                baseline="loop",
                flops=gru_flops if name == "torch.nn.GRU" else flops,
                matmul_rate=matmul_rate,
                device=device,
                note=NOTES.get(name, ""),
            )
            for name, secs in seconds.items()
        ]
    return rows


def bench_linear_scan(*, batch: int, steps: int, hidden: int, device: torch.device | str = "cpu") -> list[BenchRow]:
    """Rows for the recurrence alone, ``h_t = a_t h_{t-1} + b_t``: the scans against the loop (no matmuls)."""
    device = torch.device(device)
    torch.manual_seed(0)
    log_a = -F.softplus(torch.randn(batch, steps, hidden, device=device))
    b = torch.rand(batch, steps, hidden, device=device)
    expected = linear_scan_reference(log_a, b)
    for impl in SCAN_IMPLS:
        torch.testing.assert_close(linear_scan(log_a, b, impl=impl), expected, atol=1e-4, rtol=1e-4)

    def with_impl(impl: ScanImpl) -> Callable[[Tensor, Tensor], Tensor]:
        return lambda la, bb: linear_scan(la, bb, impl=impl)

    calls = {LABELS[impl]: with_impl(impl) for impl in SCAN_IMPLS}
    calls["loop"] = linear_scan_reference
    shape = f"B{batch} T{steps} H{hidden}"
    return [
        BenchRow(
            group="linear recurrence",
            name=f"{name} {KINDS[backward]}",
            shape=shape,
            seconds=secs,
            baseline="loop",
            ratio=secs / seconds["loop"],
            device=str(device),
            note="no matmuls",
        )
        for backward, seconds in time_forward_backward(calls, (log_a, b), device=device).items()
        for name, secs in seconds.items()
    ]


SCAN_IMPLS: tuple[ScanImpl, ...] = ("chunked", "log")
LABELS = {"chunked": "chunked scan", "log": "log scan", "reference": "loop"}
PROJECTION = "input projection"
NOTES = {"torch.nn.GRU": "a full GRU: recurrent matmuls", PROJECTION: "the matmul every implementation runs"}
