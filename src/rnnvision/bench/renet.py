"""ReNetLayer against its lower bound: the two bidirectional torch.nn.LSTM calls on pre-folded data.

The lower bound is what a ReNet layer cannot avoid: one bidirectional LSTM over every column of
patches and one over every row of the result, each handed an already folded (B*W', H', F)
batch. The ratio layer / lower bound is the cost of everything else the layer does: cutting
patches, folding columns and rows into the batch and back.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnvision.bench.recurrent import recurrent_flops
from rnnvision.bench.timing import KINDS, BenchRow, rate_row, time_forward_backward
from rnnvision.layers.renet import ReNetLayer


def bench_renet(
    *,
    batch: int,
    in_chans: int,
    size: int,
    patch: int,
    hidden: int,
    matmul_rate: float,
    device: torch.device | str = "cpu",
) -> list[BenchRow]:
    """Rows for the lower bound and the layer, forward and forward+backward; checks they agree first."""
    device = torch.device(device)
    torch.manual_seed(0)
    layer = ReNetLayer(in_chans, hidden, patch_size=patch).to(device)
    vertical = nn.LSTM(in_chans * patch * patch, hidden, bidirectional=True, batch_first=True).to(device)
    horizontal = nn.LSTM(2 * hidden, hidden, bidirectional=True, batch_first=True).to(device)
    vertical.load_state_dict(layer.vertical.state_dict())
    horizontal.load_state_dict(layer.horizontal.state_dict())
    x = torch.randn(batch, in_chans, size, size, device=device)
    rows_, cols = size // patch, size // patch
    with torch.no_grad():
        patches = x.reshape(batch, in_chans, rows_, patch, cols, patch)  # (B, C, H', p, W', p)
        columns = patches.permute(0, 4, 2, 1, 3, 5).reshape(batch * cols, rows_, -1)  # (B*W', H', C*p*p)
        swept = vertical(columns)[0]  # (B*W', H', 2h)
        lines = swept.view(batch, cols, rows_, 2 * hidden).transpose(1, 2).reshape(batch * rows_, cols, 2 * hidden)
        expected = horizontal(lines)[0].view(batch, rows_, cols, 2 * hidden).permute(0, 3, 1, 2)
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=0)

    bound = "2 x torch.nn bi-LSTM (lower bound)"
    calls = {  # each takes (x, columns, lines) and uses what it needs
        bound: lambda _, c, h: vertical(c)[0].sum() + horizontal(h)[0].sum(),
        "ReNetLayer": lambda xi, *_: layer(xi),
    }
    steps = rows_ * cols  # every patch position is one step of each sweep, per direction
    shape = f"B{batch} C{in_chans} {size}x{size} p{patch} H{hidden}"

    def flops(backward: bool) -> float:
        return (
            2
            * batch
            * (  # two directions per sweep
                recurrent_flops("lstm", 1, steps, in_chans * patch * patch, hidden, backward=backward)
                + recurrent_flops("lstm", 1, steps, 2 * hidden, hidden, backward=backward)
            )
        )

    return [
        rate_row(
            group="ReNetLayer",
            name=f"{name} {KINDS[backward]}",
            shape=shape,
            seconds=secs,
            base=seconds[bound],
            baseline="lower bound",
            flops=flops(backward),
            matmul_rate=matmul_rate,
            device=device,
        )
        for backward, seconds in time_forward_backward(calls, (x, columns, lines), device=device).items()
        for name, secs in seconds.items()
    ]
