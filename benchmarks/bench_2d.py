"""2D recurrence speed: MDLSTM2d wavefront vs its per-pixel reference, ReNetLayer vs its lower bound.

    python benchmarks/bench_2d.py [--suite mdlstm renet] [--device cpu] [--quick] [--out benchmarks/results]

Writes <suite>_<device>.csv and .md per suite: times, ratios to the baseline measured in this
process (ratio < 1 is faster), GFLOP/s and the percentage of this machine's matrix-multiply rate
measured in the same run.
"""

from __future__ import annotations

import argparse

import torch

from rnnvision.bench.suite import run_suite
from rnnvision.bench.timing import write_tables

TITLES = {
    "mdlstm": "MDLSTM2d: wavefront vs the per-pixel reference loop",
    "renet": "ReNetLayer vs its lower bound (two bidirectional torch.nn.LSTM calls on pre-folded data)",
}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", nargs="+", choices=sorted(TITLES), default=sorted(TITLES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    return parser


def main(args: argparse.Namespace) -> None:
    for suite in args.suite:
        rows, rate = run_suite([suite], quick=args.quick, device=args.device)
        command = f"python benchmarks/bench_2d.py --suite {suite} --device {args.device}" + (
            " --quick" if args.quick else ""
        )
        title = f"{TITLES[suite]} (matmul rate {rate:.0f} GFLOP/s in this run)"
        print(
            write_tables(rows, args.out, f"{suite}_{torch.device(args.device).type}", title=title, command=command),
            flush=True,
        )


if __name__ == "__main__":
    main(get_args_parser().parse_args())
