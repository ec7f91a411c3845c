"""CamVid models on the CPU: inference speed at 480x360, and where a training step's time goes.

    python benchmarks/bench_camvid.py --speed [--repeats 3]
    python benchmarks/bench_camvid.py --train-steps 8 --data-dir ../shared/data

``--speed``: images per second of each recipe's model on one 480x360 image (batch 1, no
gradients, the median of ``--repeats`` passes after one warm-up pass), all models in this
process. The weights are untrained (speed does not depend on them), the model options are the recipes'.

``--train-steps K``: for each recipe, K training steps exactly as the trainer takes them (its
DataLoader, its batch size, augmentation, loss, AdamW), twice over the same K batches: the first
pass decodes the PNGs, the second finds them in the in-memory cache (as every epoch after the
first does; :func:`rnnvision.bench.training.time_training_steps`). Reports the loader's share of a step in each pass and projects an epoch and the
recipe's whole schedule from the cached pass (validation excluded).
"""

from __future__ import annotations

import argparse

import torch

from rnnvision.bench.timing import time_call
from rnnvision.bench.training import time_training_steps
from rnnvision.config import load_config
from rnnvision.models import create_model

RECIPES = ("configs/camvid_reseg.yaml", "configs/camvid_mdlstm.yaml")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--speed", action="store_true", help="images/second at 480x360, untrained weights")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per model, the median reported (--speed)")
    parser.add_argument("--train-steps", type=int, default=0, metavar="K", help="time K training steps per recipe")
    parser.add_argument("--data-dir", default="../shared/data")
    return parser


def _model(recipe: str, info_kwargs: dict) -> tuple[torch.nn.Module, str]:
    config = load_config(recipe)
    kwargs = {k: v for k, v in config.model.items() if k != "name"}
    kwargs.update(info_kwargs)
    return create_model(config.model["name"], **kwargs), config.model["name"]


def speed(recipes: list[str], repeats: int) -> None:
    print("| recipe | model | parameters | ms per 480x360 image | images/s |\n|---|---|---:|---:|---:|")
    image = torch.rand(1, 3, 360, 480)
    for recipe in recipes:
        model, name = _model(recipe, {"num_classes": 11, "in_chans": 3})
        model.eval()
        with torch.no_grad():
            assert model(image).shape == (1, 11, 360, 480)  # warm-up, and the logits come at full resolution
            seconds = time_call(
                lambda m=model: m(image), warmup=0, min_seconds=0.0, min_repeats=repeats, max_repeats=repeats
            )
        params = sum(p.numel() for p in model.parameters())
        print(f"| `{recipe}` | `{name}` | {params:,} | {1000 * seconds:.0f} | {1 / seconds:.2f} |", flush=True)


def train_steps(recipes: list[str], steps: int, data_dir: str) -> None:
    print(
        "| recipe | step (s) | loader share, 1st pass (decoding) | loader share, cached | steps/epoch | "
        "projected epoch (s) | projected schedule (h) |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for recipe in recipes:
        split = time_training_steps(recipe, steps=steps, data_dir=data_dir)
        print(
            f"| `{recipe}` | {split.step_seconds:.2f} | {100 * split.cold_load_share:.0f} % | "
            f"{100 * split.cached_load_share:.0f} % | {split.steps_per_epoch} | {split.epoch_seconds:.0f} | "
            f"{split.schedule_hours:.2f} |",
            flush=True,
        )


def main(args: argparse.Namespace) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    if args.speed:
        speed(args.recipes, args.repeats)
    if args.train_steps:
        train_steps(args.recipes, args.train_steps, args.data_dir)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
