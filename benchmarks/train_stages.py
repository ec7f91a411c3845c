"""Train a recipe in all its stages, each continuing from the stage before: how the shipped weights
of a multi-stage recipe are regenerated.

    python benchmarks/train_stages.py configs/mnist_pixel_lstm.yaml --out runs/mnist_pixel_lstm --data-dir D
    python benchmarks/make_weights.py mnist_pixel_lstm --from-run runs/mnist_pixel_lstm/stage3 --stage 3 --data-dir D

Stage k runs ``rnnvision train RECIPE --stage k --out OUT/stage<k>`` with ``train.init_from`` set to
``OUT/stage<k-1>/best.pt`` (the recipe's ``stages:`` list says what else each stage changes; see
``rnnvision.config.load_config``). Each command is printed before it runs; ``--from-stage K``
starts at stage K (stage K-1's run must be in OUT already). A stage that fails stops the chain with
its exit status.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from rnnvision.config import count_stages
from rnnvision.errors import UserError


def stage_commands(recipe: str, out: Path, *, first: int, last: int, extra: list[str]) -> list[list[str]]:
    """The ``rnnvision train`` command of each stage from ``first`` to ``last``."""
    commands = []
    for stage in range(first, last + 1):
        command = [sys.executable, "-m", "rnnvision", "train", recipe, "--stage", str(stage)]
        command += ["--out", str(out / f"stage{stage}")]
        if stage > 1:
            command += ["--set", f"train.init_from={out / f'stage{stage - 1}' / 'best.pt'}"]
        commands.append(command + extra)
    return commands


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="the recipe's YAML (configs/RECIPE.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="folder of the stage runs: OUT/stage1, OUT/stage2, ...")
    parser.add_argument("--from-stage", type=int, default=1, metavar="K", help="start at stage K (default 1)")
    parser.add_argument("--data-dir", help="data root (default $RNNVISION_DATA or ~/.cache/rnnvision)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    return parser


def main(args: argparse.Namespace) -> int:
    extra = (["--data-dir", args.data_dir] if args.data_dir else []) + (["--quiet"] if args.quiet else [])
    try:
        stages = count_stages(args.recipe)
        if not 1 <= args.from_stage <= stages:
            raise UserError(f"{args.recipe} has {stages} stage(s); --from-stage must be 1 to {stages}")
        commands = stage_commands(args.recipe, args.out, first=args.from_stage, last=stages, extra=extra)
    except UserError as exc:
        print(f"train_stages: error: {exc}", file=sys.stderr)
        return 2
    for command in commands:
        print("$ " + shlex.join(["rnnvision", *command[3:]]), flush=True)
        status = subprocess.run(command, check=False).returncode
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
