"""The whole benchmark suite in one process: every family in ``rnnvision.bench.suite.SUITES``.

    python benchmarks/bench_suite.py [--device cpu|cuda] [--quick] [--suite NAME ...] [--update BENCHMARKS.md]

Writes benchmarks/results/suite_<device>.csv and .md (times, ratios measured in this process,
GFLOP/s and the percentage of this machine's matrix-multiply rate measured in the same run).
With ``--update`` it also regenerates the block between ``<!-- suite-<device>:begin -->`` and
``<!-- suite-<device>:end -->`` in that markdown file, leaving the rest of the file untouched.
"""

from __future__ import annotations

import argparse

import torch

from rnnvision.bench.report import measure, update_section


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--suite", action="append", help="only this family (repeatable; default all)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--update", metavar="MARKDOWN", help="regenerate the suite block of this file (BENCHMARKS.md)")
    return parser


def main(args: argparse.Namespace) -> None:
    result = measure(args.suite, quick=args.quick, device=args.device)
    command = " ".join(
        ["python benchmarks/bench_suite.py", f"--device {args.device}"]
        + ["--quick"] * args.quick
        + [f"--suite {name}" for name in args.suite or []]
    )
    _, md_path = result.write(args.out, command=command)
    if args.update:
        update_section(args.update, f"suite-{torch.device(args.device).type}", result.markdown(command=command))
    print(md_path.read_text())


if __name__ == "__main__":
    main(get_args_parser().parse_args())
