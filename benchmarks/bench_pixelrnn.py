"""PixelRNN speed: fused Row LSTM / Diagonal BiLSTM vs their per-pixel references, and sampling 64
images incrementally (recurrent state carried row by row) vs naively (network rerun per pixel).

    python benchmarks/bench_pixelrnn.py [--device cpu] [--quick] [--out benchmarks/results]
    python benchmarks/bench_pixelrnn.py --part layers
    python benchmarks/bench_pixelrnn.py --part sample --model pixelrnn_diag --layers 1 --hidden 32

``--part all`` (default) is the ``pixelrnn`` suite of ``bench/suite.py``. The parts exist because a
naive 64-image sample at 28 x 28 reruns a 7-layer network 784 times (minutes per model on one
thread). Writes pixelrnn_<device>[_<part>].csv and .md with times and ratios measured in this
process, and prints every row as soon as it is measured.
"""

from __future__ import annotations

import argparse
import sys

import torch

from rnnvision.bench.pixelrnn import bench_layers, bench_sampling
from rnnvision.bench.suite import run_suite
from rnnvision.bench.timing import BenchRow, markdown_table, matmul_gflops, write_tables


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="12x12 images, 2 layers: a smoke run")
    parser.add_argument("--part", default="all", choices=("all", "layers", "sample"))
    parser.add_argument("--model", default="pixelrnn_row", help="with --part sample (default pixelrnn_row)")
    parser.add_argument("--layers", type=int, default=7, help="with --part sample (default 7)")
    parser.add_argument("--hidden", type=int, default=16, help="with --part sample and layers (default 16)")
    parser.add_argument("--n", type=int, default=64, help="images to sample with --part sample (default 64)")
    parser.add_argument("--out", default="benchmarks/results")
    return parser


def _measure(args: argparse.Namespace) -> tuple[list[BenchRow], float]:
    if args.part == "all":
        return run_suite(["pixelrnn"], quick=args.quick, device=args.device)
    rate = matmul_gflops(device=args.device)
    size = 12 if args.quick else 28
    if args.part == "layers":
        rows = bench_layers(batch=16, height=size, width=size, hidden=args.hidden, matmul_rate=rate, device=args.device)
    else:
        rows = bench_sampling(
            model_name=args.model, n=args.n, size=size, layers=args.layers, hidden=args.hidden, device=args.device
        )
    print(markdown_table(rows), flush=True)
    return rows, rate


def main(args: argparse.Namespace) -> None:
    rows, rate = _measure(args)
    part = (
        ""
        if args.part == "all"
        else f"_{args.part}" + (f"_{args.model}_{args.layers}x{args.hidden}" if args.part == "sample" else "")
    )
    stem = f"pixelrnn_{torch.device(args.device).type}{part}" + ("_quick" if args.quick else "")
    title = f"PixelRNN layers and sampling (matmul rate {rate:.0f} GFLOP/s in this run)"
    print(
        write_tables(
            rows,
            args.out,
            stem,
            title=title,
            command="python " + " ".join(["benchmarks/bench_pixelrnn.py", *sys.argv[1:]]),
        )
    )


if __name__ == "__main__":
    main(get_args_parser().parse_args())
