"""MinGRU training step (forward + backward) at T = 784 (or --steps): chunked scan vs the loop, over batch sizes.

The table also gives the input projection alone (the matrix multiply every implementation runs)
and loop / projection: the most any scan could gain over the loop at that batch size.

    python benchmarks/bench_mingru_sweep.py [--hidden 128] [--steps 784] [--batches 1 2 4 8 16 32 64] [--out benchmarks/results]

One process; each batch size checks every implementation against the loop, then times them on
the same inputs (rows of ``rnnvision.bench.minrnn.bench_mingru``). Writes mingru_sweep_T<steps>.csv
with every row and mingru_sweep_T<steps>.md with the training-step speed-up of each scan over the loop.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnnvision.bench.minrnn import bench_mingru
from rnnvision.bench.timing import machine_summary, matmul_gflops, write_csv
from rnnvision.files import atomic_write_text


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=784)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--out", default="benchmarks/results")
    return parser


def main(args: argparse.Namespace) -> None:
    rate = matmul_gflops()
    rows, lines = [], []
    for batch in args.batches:
        batch_rows = bench_mingru(batch=batch, steps=args.steps, hidden=args.hidden, matmul_rate=rate)
        rows += batch_rows
        step = {r.name: r.seconds for r in batch_rows if r.name.endswith("fwd+bwd")}
        loop = step["loop fwd+bwd"]
        lines.append(
            f"| {batch} | {loop * 1e3:.1f} | {step['chunked scan fwd+bwd'] * 1e3:.1f} | {loop / step['chunked scan fwd+bwd']:.1f} "
            f"| {step['log scan fwd+bwd'] * 1e3:.1f} | {loop / step['log scan fwd+bwd']:.1f} | {step['torch.nn.GRU fwd+bwd'] * 1e3:.1f} "
            f"| {step['input projection fwd+bwd'] * 1e3:.1f} | {loop / step['input projection fwd+bwd']:.1f} |"
        )
    out = Path(args.out)
    write_csv(rows, out / f"mingru_sweep_T{args.steps}.csv")
    command = f"python benchmarks/bench_mingru_sweep.py --hidden {args.hidden} --steps {args.steps} --batches {' '.join(map(str, args.batches))}"
    text = (
        f"### MinGRU training step (fwd+bwd), T {args.steps}, H {args.hidden}: scan vs loop\n\n"
        f"Command: `{command}`  \nMachine: {machine_summary()}\n\n"
        "| batch | loop ms | chunked ms | loop / chunked | log ms | loop / log | torch.nn.GRU ms | projection ms | loop / projection |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(lines) + "\n"
    )
    atomic_write_text(out / f"mingru_sweep_T{args.steps}.md", text)
    print(text)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
