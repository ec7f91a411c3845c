"""LSTM/GRU speed: rnnvision fused and reference vs torch.nn, forward and forward+backward.

    python benchmarks/bench_recurrent.py [--device cpu] [--quick] [--out benchmarks/results]

Writes recurrent_<device>.csv and .md: times, ratios to torch.nn measured in this process,
GFLOP/s and the percentage of this machine's matrix-multiply rate measured in the same run.
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
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    return parser


def main(args: argparse.Namespace) -> None:
    rows, rate = run_suite(["recurrent"], quick=args.quick, device=args.device)
    out = Path(args.out)
    stem = f"recurrent_{torch.device(args.device).type}"
    write_csv(rows, out / f"{stem}.csv")
    write_markdown(
        rows, out / f"{stem}.md", title=f"LSTM / GRU vs torch.nn (matmul rate {rate:.0f} GFLOP/s in this run)",
        command=f"python benchmarks/bench_recurrent.py --device {args.device}" + (" --quick" if args.quick else ""),
    )
    print((out / f"{stem}.md").read_text())


if __name__ == "__main__":
    main(get_args_parser().parse_args())
