"""LSTM/GRU speed: rnnvision fused and reference vs torch.nn, forward and forward+backward.

    python benchmarks/bench_recurrent.py [--device cpu] [--quick] [--out benchmarks/results]

Writes recurrent_<device>.csv and .md: times, ratios to torch.nn measured in this process,
GFLOP/s and the percentage of this machine's matrix-multiply rate measured in the same run.
"""

from __future__ import annotations

import argparse

import torch

from rnnvision.bench.suite import run_suite
from rnnvision.bench.timing import write_tables


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    return parser


def main(args: argparse.Namespace) -> None:
    rows, rate = run_suite(["recurrent"], quick=args.quick, device=args.device)
    command = f"python benchmarks/bench_recurrent.py --device {args.device}" + (" --quick" if args.quick else "")
    title = f"LSTM / GRU vs torch.nn (matmul rate {rate:.0f} GFLOP/s in this run)"
    print(write_tables(rows, args.out, f"recurrent_{torch.device(args.device).type}", title=title, command=command))


if __name__ == "__main__":
    main(get_args_parser().parse_args())
