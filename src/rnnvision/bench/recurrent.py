"""LSTM / GRU: ``impl="fused"`` and ``impl="reference"`` against ``torch.nn`` on the same inputs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from rnnvision.bench.timing import KINDS, BenchRow, rate_row, time_forward_backward, with_impl
from rnnvision.impl import RecurrentImpl
from rnnvision.layers import GRU, LSTM

GATE_BLOCKS = {"lstm": 4, "gru": 3}


def recurrent_flops(cell: str, batch: int, steps: int, input_size: int, hidden: int, *, backward: bool) -> float:
    """Multiply-add FLOPs of the matrix products: 2 * B * T * G*H * (I + H), tripled with backward."""
    forward = 2 * batch * steps * GATE_BLOCKS[cell] * hidden * (input_size + hidden)
    return forward * (3 if backward else 1)


def bench_recurrent(
    *,
    cell: str,
    batch: int,
    steps: int,
    input_size: int,
    hidden: int,
    matmul_rate: float,
    device: torch.device | str = "cpu",
    include_reference: bool = True,
) -> list[BenchRow]:
    """Rows for torch.nn, fused and reference, forward and forward+backward; checks outputs first."""
    device = torch.device(device)
    torch.manual_seed(0)
    ours = {"lstm": LSTM, "gru": GRU}[cell](input_size, hidden).to(device)
    theirs = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](input_size, hidden, batch_first=True).to(device)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(batch, steps, input_size, device=device)
    impls: list[RecurrentImpl] = ["fused", "reference"] if include_reference else ["fused"]

    with torch.no_grad():
        expected = theirs(x)[0]
        for impl in impls:
            ours.impl = impl
            torch.testing.assert_close(ours(x)[0], expected, atol=1e-4, rtol=1e-4)

    calls: dict[str, Callable[[Tensor], Tensor]] = {"torch.nn": lambda xi: theirs(xi)[0]}
    calls.update({impl: with_impl(ours, impl, first_output=True) for impl in impls})
    shape = f"B{batch} T{steps} I{input_size} H{hidden}"
    return [
        rate_row(
            group=cell.upper(),
            name=f"{name} {KINDS[backward]}",
            shape=shape,
            seconds=secs,
            base=seconds["torch.nn"],
            baseline="torch.nn",
            matmul_rate=matmul_rate,
            device=device,
            flops=recurrent_flops(cell, batch, steps, input_size, hidden, backward=backward),
        )
        for backward, seconds in time_forward_backward(calls, (x,), device=device).items()
        for name, secs in seconds.items()
    ]
