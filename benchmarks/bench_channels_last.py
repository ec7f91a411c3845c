"""CRNN training step with the convolutions channels-last (what ``CRNN`` uses) vs contiguous.

    python benchmarks/bench_channels_last.py [--size small] [--batch 16] [--width 128]

One process, one thread; the same seeded model and inputs in both layouts (outputs checked
equal first); forward + backward of a sum of squares, the median of ``time_call``'s repeats.
Prints a markdown row.
"""

from __future__ import annotations

import argparse

import torch

from rnnvision.bench.timing import machine_summary, time_call
from rnnvision.models import create_model


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=128)
    return parser


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    images = torch.rand(args.batch, 1, 32, args.width, generator=torch.Generator().manual_seed(1))
    widths = torch.full((args.batch,), args.width)
    seconds, outputs = {}, {}
    for layout in ("channels-last", "contiguous"):
        torch.manual_seed(0)
        model = create_model("crnn", size=args.size, img_height=32)  # built channels-last
        if layout == "contiguous":
            model.to(memory_format=torch.contiguous_format)
        with torch.no_grad():
            outputs[layout] = model(images, widths)

        def step(model: torch.nn.Module = model) -> None:
            model(images, widths).square().mean().backward()

        seconds[layout] = time_call(step, warmup=2, min_seconds=5.0, min_repeats=5)
    torch.testing.assert_close(outputs["channels-last"], outputs["contiguous"], atol=1e-4, rtol=1e-4)
    print(f"Machine: {machine_summary()}\n")
    print("| crnn size, batch x width | contiguous ms | channels-last ms | contiguous / channels-last |")
    print("|---|---:|---:|---:|")
    print(
        f"| {args.size}, {args.batch} x 32x{args.width} | {seconds['contiguous'] * 1e3:.1f} "
        f"| {seconds['channels-last'] * 1e3:.1f} | {seconds['contiguous'] / seconds['channels-last']:.2f}x |"
    )


if __name__ == "__main__":
    main(get_args_parser().parse_args())
