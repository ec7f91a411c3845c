"""PixelRNN speed: fused Row LSTM / Diagonal BiLSTM vs their per-pixel references, and sampling 64
images incrementally (recurrent state carried row by row) vs naively (network rerun per pixel).

    python benchmarks/bench_pixelrnn.py [--device cpu] [--quick] [--out benchmarks/results]

Writes pixelrnn_<device>.csv and .md with times and ratios measured in this process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rnnvision.bench import write_csv, write_markdown
from rnnvision.bench.suite import run_suite


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="12x12 images, 2 layers: a smoke run")
    parser.add_argument("--out", default="benchmarks/results")
    return parser


def main(args: argparse.Namespace) -> None:
    rows, rate = run_suite(["pixelrnn"], quick=args.quick, device=args.device)
    out = Path(args.out)
    stem = f"pixelrnn_{torch.device(args.device).type}" + ("_quick" if args.quick else "")
    write_csv(rows, out / f"{stem}.csv")
    write_markdown(
        rows, out / f"{stem}.md", title=f"PixelRNN layers and sampling (matmul rate {rate:.0f} GFLOP/s in this run)",
        command=f"python benchmarks/bench_pixelrnn.py --device {args.device}" + (" --quick" if args.quick else ""),
    )
    print((out / f"{stem}.md").read_text())


if __name__ == "__main__":
    main(get_args_parser().parse_args())
