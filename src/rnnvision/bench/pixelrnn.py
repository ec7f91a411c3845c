"""PixelRNN speed: fused layers vs their per-pixel references; incremental vs naive sampling."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor

from rnnvision.bench.timing import KINDS, BenchRow, rate_row, time_call, time_forward_backward, with_impl
from rnnvision.impl import RecurrentImpl
from rnnvision.layers.pixelrnn import DiagonalBiLSTM, RowLSTM
from rnnvision.models import create_model
from rnnvision.models.autoregressive import AutoregressiveImageModel


def layer_flops(
    layer: str, batch: int, height: int, width: int, hidden: int, *, kernel: int = 3, backward: bool
) -> float:
    """Multiply-add FLOPs of a layer's convolutions (masked weights counted as computed), x3 with backward.

    Per pixel, with 2h input channels: Row LSTM 1 x k input-to-state (2h -> 4h) and width-k
    state-to-state (h -> 4h); Diagonal BiLSTM, per direction, 1 x 1 (2h -> 4h) and 2 x 1 (h -> 4h);
    both a 1 x 1 output convolution (h -> 2h).
    """
    h = hidden
    if layer == "row":
        per_pixel = 2 * (2 * h * 4 * h * kernel + h * 4 * h * kernel + h * 2 * h)
    else:
        per_pixel = 2 * (2 * (2 * h * 4 * h + 2 * h * 4 * h) + h * 2 * h)
    return per_pixel * batch * height * width * (3 if backward else 1)


def bench_layers(
    *, batch: int, height: int, width: int, hidden: int, matmul_rate: float, device: torch.device | str = "cpu"
) -> list[BenchRow]:
    """Row LSTM and Diagonal BiLSTM, fused and reference, forward and forward+backward; checks they agree first."""
    device = torch.device(device)
    torch.manual_seed(0)
    x = torch.randn(batch, 2 * hidden, height, width, device=device)
    rows = []
    for kind, layer in (("row", RowLSTM(2 * hidden, hidden)), ("diagonal", DiagonalBiLSTM(2 * hidden, hidden))):
        layer.to(device)
        with torch.no_grad():
            outputs = {}
            for impl in ("fused", "reference"):
                layer.impl = impl
                outputs[impl] = layer(x)
            torch.testing.assert_close(outputs["fused"], outputs["reference"], atol=1e-4, rtol=1e-4)

        impls: tuple[RecurrentImpl, ...] = ("reference", "fused")
        calls: dict[str, Callable[[Tensor], Tensor]] = {impl: with_impl(layer, impl) for impl in impls}
        options = dict.fromkeys(calls, {"warmup": 1, "min_repeats": 3, "min_seconds": 1.0})
        for backward, times in time_forward_backward(calls, (x,), device=device, options=options).items():
            rows += [
                rate_row(
                    group=type(layer).__name__,
                    name=f"{impl} {KINDS[backward]}",
                    shape=f"B{batch} {height}x{width} h{hidden}",
                    seconds=times[impl],
                    base=times["reference"],
                    baseline="reference",
                    flops=layer_flops(kind, batch, height, width, hidden, backward=backward),
                    matmul_rate=matmul_rate,
                    device=device,
                    note=f"reference / fused = {times['reference'] / times['fused']:.0f}x",
                )
                for impl in ("fused", "reference")
            ]
    return rows


def bench_sampling(
    *, model_name: str, n: int, size: int, layers: int, hidden: int, device: torch.device | str = "cpu"
) -> list[BenchRow]:
    """Seconds to sample ``n`` images with the incremental stepper and with the naive per-pixel rerun.

    Both draw from the same seeded stream, so with equal conditionals they give the same images;
    the share of identical pixels is reported.
    """
    device = torch.device(device)
    torch.manual_seed(0)
    model = cast(
        AutoregressiveImageModel,
        create_model(model_name, num_layers=layers, hidden_size=hidden, img_size=size).to(device).eval(),
    )
    samples, seconds = {}, {}
    for method in ("incremental", "naive"):

        def call(method: str = method) -> None:
            generator = torch.Generator(device=device).manual_seed(0)
            samples[method] = model.sample(n, method=method, generator=generator)

        repeats = 3 if method == "incremental" else 1  # one naive run takes minutes at full size
        seconds[method] = time_call(call, device=device, warmup=0, min_repeats=repeats, min_seconds=0.0)
    same = (samples["incremental"] == samples["naive"]).float().mean().item()
    return [
        BenchRow(
            group=f"sample {model_name}",
            name=method,
            shape=f"{n} x {size}x{size}, {layers} layers h{hidden}",
            seconds=seconds[method],
            baseline="naive",
            ratio=seconds[method] / seconds["naive"],
            device=str(device),
            note=f"speedup {seconds['naive'] / seconds['incremental']:.0f}x; {100 * same:.2f}% of pixels identical",
        )
        for method in ("incremental", "naive")
    ]
