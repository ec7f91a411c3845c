"""PixelRNN speed: fused layers vs their per-pixel references; incremental vs naive sampling."""

from __future__ import annotations

import torch

from rnnvision.bench.timing import BenchRow, time_call
from rnnvision.layers.pixelrnn import DiagonalBiLSTM, RowLSTM
from rnnvision.models import create_model


def layer_flops(layer: str, batch: int, height: int, width: int, hidden: int, *, kernel: int = 3, backward: bool) -> float:
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
        for backward in (False, True):
            times = {}
            for impl in ("reference", "fused"):
                layer.impl = impl

                def call(layer=layer, backward=backward):
                    xi = x.detach().requires_grad_(backward)
                    out = layer(xi)
                    if backward:
                        out.sum().backward()

                with torch.enable_grad() if backward else torch.no_grad():
                    times[impl] = time_call(call, device=device, warmup=1, min_repeats=3, min_seconds=1.0)
            flops = layer_flops(kind, batch, height, width, hidden, backward=backward)
            for impl in ("fused", "reference"):
                gflops = flops / times[impl] / 1e9
                rows.append(BenchRow(
                    group=f"{type(layer).__name__}", name=f"{impl} {'fwd+bwd' if backward else 'fwd'}",
                    shape=f"B{batch} {height}x{width} h{hidden}", seconds=times[impl], baseline="reference",
                    ratio=times[impl] / times["reference"], gflops=gflops, pct_matmul=100 * gflops / matmul_rate,
                    device=str(device), note=f"reference / fused = {times['reference'] / times['fused']:.0f}x",
                ))
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
    model = create_model(model_name, layers=layers, hidden=hidden, img_size=size).to(device).eval()
    samples, seconds = {}, {}
    for method in ("incremental", "naive"):
        def call(method=method):
            generator = torch.Generator(device=device).manual_seed(0)
            samples[method] = model.sample(n, method=method, generator=generator)

        repeats = 3 if method == "incremental" else 1  # one naive run takes minutes at full size
        seconds[method] = time_call(call, device=device, warmup=0, min_repeats=repeats, min_seconds=0.0)
    same = (samples["incremental"] == samples["naive"]).float().mean().item()
    return [
        BenchRow(
            group=f"sample {model_name}", name=method, shape=f"{n} x {size}x{size}, {layers} layers h{hidden}",
            seconds=seconds[method], baseline="naive", ratio=seconds[method] / seconds["naive"], device=str(device),
            note=f"speedup {seconds['naive'] / seconds['incremental']:.0f}x; {100 * same:.2f}% of pixels identical",
        )
        for method in ("incremental", "naive")
    ]
