"""Turn a training run into shipped weights: safetensors (float16, int8 or float32) + its catalogue entry.

    rnnvision train configs/RECIPE.yaml --data-dir D          # writes runs/RECIPE/best.pt
    python benchmarks/make_weights.py RECIPE --from-run runs/RECIPE --data-dir D

A recipe trained in stages (a ``stages:`` list): benchmarks/train_stages.py trains them all, and
``--stage K --from-run OUT/stageK`` makes the weights of the last (the entry records the stage).

Evaluates the float32 weights and the smaller forms on the full test split, and stores the first of
float16, int8 (weights only, a scale per row) and float32 that fits in 2,000,000 bytes and loses at
most 0.1 point (0.2 nats). Writes src/rnnvision/weights/shipped/RECIPE.safetensors
and updates catalogue.json there with the metric measured on the stored weights (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rnnvision.errors import UserError
from rnnvision.weights.catalogue import format_metric
from rnnvision.weights.make import make_weights


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="recipe name or YAML (configs/RECIPE.yaml); the weights are named after it")
    parser.add_argument("--from-run", required=True, metavar="RUN_DIR", help="run directory holding best.pt")
    parser.add_argument(
        "--data-dir", help="data root holding the test split (default $RNNVISION_DATA or ~/.cache/rnnvision)"
    )
    parser.add_argument("--url", help="where the file will also be published (recorded in the entry)")
    parser.add_argument("--out", type=Path, help="folder of catalogue.json and the files (default: the package's)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--stage", type=int, default=1, help="the recipe's stage that trained the run (benchmarks/train_stages.py)"
    )
    return parser


def main(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    try:
        made = make_weights(
            args.recipe,
            args.from_run,
            data_dir=args.data_dir,
            folder=args.out,
            url=args.url,
            batch_size=args.batch_size,
            stage=args.stage,
        )
    except UserError as exc:
        print(f"make_weights: error: {exc}", file=sys.stderr)
        return 2
    entry = made.entry
    shown = made.path.resolve().relative_to(Path.cwd()) if made.path.resolve().is_relative_to(Path.cwd()) else made.path
    print(f"float32: {format_metric(entry.metric, entry.float32_test_metrics[entry.metric])}")
    for dtype, reason in made.refused.items():
        print(f"{dtype}: refused ({reason})")
    print(
        f"stored {entry.dtype}: {format_metric(entry.metric, entry.value)} on {entry.test_metrics.get('n')} test items; "
        f"wrote {shown} ({entry.bytes / 1e6:.2f} MB, sha256 {entry.sha256[:12]}...) in {time.perf_counter() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
