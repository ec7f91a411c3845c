"""CamVid models on the CPU: inference speed at 480x360, and where a training step's time goes.

    python benchmarks/bench_camvid.py --speed [--repeats 3]
    python benchmarks/bench_camvid.py --train-steps 8 --data-dir ../shared/data

``--speed``: images per second of each recipe's model on one 480x360 image (batch 1, no
gradients, after one warm-up pass), all models in this process. The weights are untrained
(speed does not depend on them), the model options are the recipes'.

``--train-steps K``: for each recipe, K training steps exactly as the trainer takes them (its
DataLoader, its batch size, augmentation, loss, AdamW), twice over the same K batches: the first
pass decodes the PNGs, the second finds them in the in-memory cache (as every epoch after the
first does). Reports the loader's share of a step in each pass and projects an epoch and the
recipe's whole schedule from the cached pass (validation excluded).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from rnnvision.config import load_config
from rnnvision.data import build_dataset
from rnnvision.data.base import dataset_meta
from rnnvision.engine.trainer import resolve_model_kwargs
from rnnvision.models import create_model
from rnnvision.tasks import make_task

RECIPES = ("configs/camvid_reseg.yaml", "configs/camvid_mdlstm.yaml")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--speed", action="store_true", help="images/second at 480x360, untrained weights")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per model (--speed)")
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
            started = time.perf_counter()
            for _ in range(repeats):
                model(image)
            seconds = (time.perf_counter() - started) / repeats
        params = sum(p.numel() for p in model.parameters())
        print(f"| `{recipe}` | `{name}` | {params:,} | {1000 * seconds:.0f} | {1 / seconds:.2f} |", flush=True)


def train_steps(recipes: list[str], steps: int, data_dir: str) -> None:
    print("| recipe | step (s) | loader share, 1st pass (decoding) | loader share, cached | steps/epoch | "
          "projected epoch (s) | projected schedule (h) |\n|---|---:|---:|---:|---:|---:|---:|")
    for recipe in recipes:
        config = load_config(recipe)
        data = {k: v for k, v in config.data.items() if k != "name"}
        train_set = build_dataset(config.data["name"], split="train", root=data_dir, **data)
        info = train_set.info
        model = create_model(config.model["name"], **resolve_model_kwargs(config.model, info))
        meta = dataset_meta(info)
        task = make_task(config.task, meta)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr)
        generator = torch.Generator().manual_seed(0)
        loader = DataLoader(train_set, batch_size=config.train.batch_size, shuffle=True, generator=generator,
                            collate_fn=task.collate, drop_last=True)
        order = list(loader.batch_sampler)[:steps]  # the same K batches in both passes
        model.train()
        passes = []
        for _ in range(2):
            load = compute = 0.0
            for indices in order:
                started = time.perf_counter()
                batch = task.collate([train_set[i] for i in indices])
                loaded = time.perf_counter()
                loss = task.training_loss(model, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                load, compute = load + loaded - started, compute + time.perf_counter() - loaded
            passes.append((load, compute))
        (cold_load, cold_compute), (warm_load, warm_compute) = passes
        step = (warm_load + warm_compute) / steps
        per_epoch = len(train_set) // config.train.batch_size
        print(f"| `{recipe}` | {step:.2f} | {100 * cold_load / (cold_load + cold_compute):.0f} % | "
              f"{100 * warm_load / (warm_load + warm_compute):.0f} % | {per_epoch} | {per_epoch * step:.0f} | "
              f"{config.train.epochs * per_epoch * step / 3600:.2f} |", flush=True)


def main(args: argparse.Namespace) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    if args.speed:
        speed(args.recipes, args.repeats)
    if args.train_steps:
        train_steps(args.recipes, args.train_steps, args.data_dir)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
