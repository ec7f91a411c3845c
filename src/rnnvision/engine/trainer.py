"""The one trainer for every task.

AdamW with decoupled weight decay (none on biases and norms), linear warm-up then cosine decay,
gradient-norm clipping, optional bfloat16 autocast, an optional moving average of the weights
(``train.ema_decay``: validated, tested and saved in place of the raw weights), seeded runs,
validation after every epoch, ``best.pt`` (best validation metric) and ``last.pt`` (everything
needed to resume), metrics in ``metrics.jsonl`` and a training-curve PNG. Under ``torchrun`` the model is wrapped in DDP,
each process reads its shard of every epoch, and only rank 0 writes files or prints.

Run directory (rules in :mod:`rnnvision.outputs`: marked, locked while written, never someone else's)::

    .rnnvision-run.json  marker: the run's id (last.pt and best.pt carry it too)
    .rnnvision-lock      while a process writes the directory: its pid and host
    config.yaml     resolved config: the settings actually used
    metrics.jsonl   one JSON line per epoch
    curves.png      loss and validation metric per epoch
    last.pt         weights + optimizer/scheduler state + history + best weights, for --resume
    best.pt         weights at the best validation metric, with validation and test metrics
    results.json    summary: best epoch, validation and test metrics, training time
    ...             task pictures (confusion matrix, predictions, gates, ...)

The end of an epoch is one commit: ``last.pt`` is written first and holds everything (history,
best weights and metric); ``best.pt``, ``metrics.jsonl`` and ``curves.png`` are derived from it and
rewritten from it on ``--resume``. A kill at any instant therefore leaves files that agree with
themselves, and ``--resume`` repairs the derived ones and continues to the same final weights.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from rnnvision.config import SECTIONS, RunConfig
from rnnvision.data import build_dataset
from rnnvision.data.base import DatasetInfo, InfoDataset, dataset_meta
from rnnvision.engine.checkpoint import load_checkpoint, save_checkpoint
from rnnvision.engine.distributed import DistContext, all_reduce_sums, autocast, barrier, init_distributed, shutdown
from rnnvision.engine.ema import WeightAverage
from rnnvision.engine.evaluation import evaluate
from rnnvision.errors import UserError
from rnnvision.files import atomic_write_text, remove_stale_temps
from rnnvision.models import create_model, get_model_entry
from rnnvision.outputs import RunLock, new_run_id, output_dir_marker, read_marker, write_marker
from rnnvision.tasks import get_task_class, make_task, to_device


@dataclass
class TrainResult:
    """What a finished run returns; ``model`` holds the best weights (on every DDP process)."""

    out_dir: Path
    best_epoch: int
    val_metrics: dict[str, Any]
    test_metrics: dict[str, Any]
    train_seconds: float
    model: nn.Module


def resolve_model_kwargs(model_section: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    """Builder defaults, then what the data implies (classes, channels, size), then the config."""
    entry = get_model_entry(model_section["name"])
    options = entry.options()
    kwargs = {name: default for name, (_, default) in options.items()}
    kwargs.update({k: v for k, v in info.model_kwargs.items() if k in options})
    kwargs.update({k: v for k, v in model_section.items() if k != "name"})
    return kwargs


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then cosine decay to ``min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)


def decays_weight(module: nn.Module, name: str, param: nn.Parameter) -> bool:
    """Whether AdamW decays ``module.<name>``, by its role: weight matrices and kernels are decayed;
    biases (of any shape: the MDLSTM's is (D, 5H)), normalisation scales and shifts, and other
    one-dimensional parameters are not."""
    return param.ndim >= 2 and "bias" not in name and not isinstance(module, _NORMS)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                (decay if decays_weight(module, name, param) else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    """Trains one run; construct with a resolved :class:`RunConfig`, then call :meth:`fit`."""

    def __init__(
        self,
        config: RunConfig,
        *,
        out_dir: str | Path,
        data_dir: str | Path | None = None,
        download: bool = False,
        resume: str | Path | None = None,
        quiet: bool = False,
        ctx: DistContext,
    ) -> None:
        self.config, self.ctx, self.quiet = config, ctx, quiet
        self.out_dir = Path(out_dir)
        cfg = config.train
        if cfg.batch_size % ctx.world_size:
            raise UserError(f"train.batch_size {cfg.batch_size} must divide evenly over {ctx.world_size} processes")
        self.resume_path = Path(resume) if resume else None
        self.resume_state = load_checkpoint(resume) if resume else None
        if self.resume_state is not None and "training" not in self.resume_state:
            raise UserError(f"{resume} has no training state; resume from a last.pt")
        self.run_id = self._check_out_dir()

        if cfg.init_from and self.resume_state is None:
            _check_init_from(cfg.init_from)
        torch.manual_seed(cfg.seed)
        data = {k: v for k, v in config.data.items() if k != "name"}

        def split(name: str) -> InfoDataset:
            return build_dataset(config.data["name"], split=name, root=data_dir, download=download, **data)

        if ctx.is_main:  # rank 0 downloads first; the others then find the files
            self.train_set = split("train")
        barrier(ctx)
        if not ctx.is_main:
            self.train_set = split("train")
        self.val_set, self.test_set = split("val"), split("test")
        info = self.train_set.info
        self.meta = dataset_meta(info)
        if self.resume_state is not None and "class_weights" in self.resume_state["meta"]:
            self.meta["class_weights"] = self.resume_state["meta"]["class_weights"]
        elif cfg.class_weights:
            self.meta["class_weights"] = get_task_class(config.task).class_weights_from(
                self.train_set, method=cfg.class_weights
            )
        config.model = {"name": config.model["name"], **resolve_model_kwargs(config.model, info)}
        self.model = create_model(config.model["name"], **{k: v for k, v in config.model.items() if k != "name"})
        if cfg.init_from and self.resume_state is None:
            self._init_from(cfg.init_from)
        self.model.to(ctx.device)
        self.task = make_task(config.task, self.meta)
        self.task.check_data(self.model, self.train_set)

        if len(self.train_set) < cfg.batch_size and len(self.train_set) >= ctx.world_size:
            fitted = len(self.train_set) // ctx.world_size * ctx.world_size
            self._log(
                f"train.batch_size {cfg.batch_size} is more than the {len(self.train_set)} training items; using {fitted}"
            )
            cfg.batch_size = fitted  # what config.yaml and the checkpoints record
        per_rank_batch = cfg.batch_size // ctx.world_size
        self.sampler: DistributedSampler = DistributedSampler(
            self.train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.seed
        )
        self.loader = DataLoader(
            self.train_set,
            batch_size=per_rank_batch,
            sampler=self.sampler,
            num_workers=cfg.num_workers,
            collate_fn=self.task.collate,
            drop_last=True,  # equal batches, so N processes take exactly the steps of one
        )
        if not len(self.loader):
            raise UserError(
                f"the training split has {len(self.train_set)} items, fewer than train.batch_size {cfg.batch_size}"
            )
        self.total_steps = cfg.epochs * len(self.loader)
        warmup_steps = max(1, round(cfg.warmup_epochs * len(self.loader)))
        self.optimizer = torch.optim.AdamW(_param_groups(self.model, cfg.weight_decay), lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(
                step, warmup_steps=warmup_steps, total_steps=self.total_steps, min_ratio=cfg.min_lr_ratio
            ),
        )
        self.train_model = DistributedDataParallel(self.model) if ctx.enabled else self.model
        self.average = WeightAverage(self.model, cfg.ema_decay) if cfg.ema_decay else None
        # the weights that are validated, tested, saved as best.pt and returned: the average when kept
        self.eval_model = self.average.module if self.average else self.model

        self.history: list[dict[str, Any]] = []
        self.start_epoch, self.step = 1, 0
        self.best_metric: float | None = None
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.train_seconds = 0.0
        if self.resume_state is not None and resume is not None:
            self._restore(self.resume_state, Path(resume))

    # -- the run directory -----------------------------------------------------------------------
    def _check_out_dir(self) -> str:
        """The id of the run this trainer writes, after checking that ``out_dir`` may take it.

        A new run needs a new or empty folder (or one of ours that died before its first
        checkpoint); a resumed run writes into its own folder or a new one, never another run's.
        """
        out, state, resume = self.out_dir, self.resume_state, self.resume_path
        if state is None:
            marker = output_dir_marker(out)
            if marker is not None and (marker.get("kind") != "train" or (out / "last.pt").exists()):
                raise UserError(f"{out} already holds a run; pass --out NEW_DIR or --resume {out / 'last.pt'}")
            return new_run_id()
        assert resume is not None  # a resume state comes from a resume path
        own = state.get("run_id")
        own_dir = out.resolve() == resume.resolve().parent
        marker = read_marker(out) if own_dir else output_dir_marker(out)
        if marker is not None and marker["run_id"] != own and not (own is None and own_dir):  # own None: before run ids
            raise UserError(
                f"--out {out} holds another run than {resume}; resume into {resume.parent} (the default) or a new folder"
            )
        return own or (marker or {}).get("run_id") or new_run_id()

    def _open_run_dir(self) -> None:
        """Rank 0, under the lock: mark the folder, clear killed writes, write the config and the derived files."""
        out = self.out_dir
        self._check_out_dir()  # again: another run may have taken the folder since __init__
        out.mkdir(parents=True, exist_ok=True)
        removed = remove_stale_temps(out)
        if removed:
            self._log(f"removed {len(removed)} temporary file(s) left by an interrupted write in {out}")
        write_marker(
            out, run_id=self.run_id, kind="train", model=self.config.model["name"], data=self.config.data["name"]
        )
        atomic_write_text(out / "config.yaml", self.config.to_yaml())
        if self.history:  # resumed: best.pt, metrics.jsonl and curves.png may lag last.pt after a kill
            self._write_derived_files(best=True)

    @contextlib.contextmanager
    def _locked_run_dir(self) -> Iterator[None]:
        """Rank 0 holds the run directory's lock while the run writes it; every process learns if taking it failed."""
        with contextlib.ExitStack() as stack:
            error: UserError | None = None
            if self.ctx.is_main:
                try:
                    self.out_dir.mkdir(parents=True, exist_ok=True)
                    lock = stack.enter_context(RunLock(self.out_dir))
                    if lock.stale:
                        self._log(f"took over the stale lock of process {lock.stale.get('pid')} in {self.out_dir}")
                    self._open_run_dir()
                except UserError as exc:
                    error = exc
            failed = all_reduce_sums({"failed": torch.tensor(float(error is not None))}, self.ctx)["failed"]
            if error is not None:
                raise error
            if float(failed):
                raise UserError(f"rank 0 could not open the run directory {self.out_dir}")
            yield

    # -- start from other weights / resume -------------------------------------------------------
    def _init_from(self, path: str) -> None:
        """Copy the tensors of checkpoint ``path`` (or shipped weights, by name) whose names and shapes match this model's."""
        from rnnvision.weights.loading import load_payload  # the weights package imports the engine

        source = load_payload(path)["state_dict"]
        own = self.model.state_dict()
        fitting = {k: v for k, v in source.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
        if not fitting:
            raise UserError(
                f"train.init_from: no tensor of {path} fits {self.config.model['name']} (names or shapes differ)"
            )
        self.model.load_state_dict(fitting, strict=False)
        fresh = sorted(set(own) - set(fitting))
        self._log(
            f"initialised {len(fitting)} of {len(own)} tensors from {path}"
            + (f"; freshly initialised: {', '.join(fresh)}" if fresh else "")
        )

    def _restore(self, state: dict[str, Any], path: Path) -> None:
        if state["model_name"] != self.config.model["name"]:
            raise UserError(
                f"{path} holds a {state['model_name']} model, the config asks for {self.config.model['name']}"
            )
        self._check_same_settings(state["config"], path)
        training = state["training"]
        try:
            self.model.load_state_dict(state["state_dict"])
        except RuntimeError as exc:
            raise UserError(
                f"{path}: weights do not fit {self.config.model['name']} ({str(exc).splitlines()[0]})"
            ) from None
        if self.average is not None:
            if "ema_state_dict" not in training:
                raise UserError(f"{path} was trained without train.ema_decay; resume it with the same config")
            self.average.load_state_dict(training["ema_state_dict"])
        self.optimizer.load_state_dict(training["optimizer"])
        self.scheduler.load_state_dict(training["scheduler"])
        self.start_epoch = training["epoch"] + 1
        self.step = training["step"]
        self.history = list(training["history"])
        self.best_metric, self.best_epoch = training["best_metric"], training["best_epoch"]
        self.train_seconds = training["train_seconds"]
        if "best_state_dict" in training:
            self.best_state = training["best_state_dict"]
        elif (path.parent / "best.pt").exists():  # a last.pt written before it carried the best weights
            self.best_state = load_checkpoint(path.parent / "best.pt")["state_dict"]

    # keys that say how to run, not what is computed: a resumed run may change them (and records the new value)
    RESUME_MAY_CHANGE = ("train.device", "train.num_workers", "train.eval_batch_size")

    def _check_same_settings(self, saved: dict[str, Any], path: Path) -> None:
        """Refuse to resume ``path`` with settings other than its own, naming every key that differs.

        ``train.init_from`` is not used by a resumed run: it keeps the checkpoint's value, so that
        config.yaml states what started the weights.
        """
        now = self.config.to_dict()
        changed = [
            f"{section}.{key} ({value!r} -> {now[section].get(key)!r})"
            for section in SECTIONS
            for key, value in saved.get(section, {}).items()
            if value != now[section].get(key)
            and f"{section}.{key}" not in self.RESUME_MAY_CHANGE
            and f"{section}.{key}" != "train.init_from"
        ]
        if changed:
            raise UserError(
                f"{path} was trained with other settings: {', '.join(changed)}; resume with the same settings, "
                f"or start a new run from its weights with --set train.init_from={path}"
            )
        self.config.train.init_from = saved.get("train", {}).get("init_from", "")

    # -- one epoch ------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> float:
        cfg = self.config.train
        self.sampler.set_epoch(epoch)
        if hasattr(self.train_set, "set_epoch"):  # data redrawn per epoch (e.g. stochastic binarization)
            self.train_set.set_epoch(epoch)
        torch.manual_seed(cfg.seed * 1_000_003 + epoch * 1_009 + self.ctx.rank)  # dropout, augmentation
        self.train_model.train()
        show = not self.quiet and self.ctx.is_main and sys.stderr.isatty()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.ctx.device)
        count = torch.zeros((), dtype=torch.float64, device=self.ctx.device)
        bar = tqdm(self.loader, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, disable=not show, dynamic_ncols=True)
        for batch in bar:
            batch = to_device(batch, self.ctx.device)
            with autocast(self.ctx.device, cfg.bf16):
                loss = self.task.training_loss(self.train_model, batch)
            if not torch.isfinite(loss):
                raise UserError(f"training diverged at step {self.step} (loss {loss.item()}); lower train.lr")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            if self.average is not None:
                self.average.update(self.step)
            self.step += 1
            loss_sum += loss.detach().double()
            count += 1
            if show:
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
        sums = all_reduce_sums({"loss": loss_sum, "n": count}, self.ctx)
        return float(sums["loss"] / sums["n"])

    # -- files ----------------------------------------------------------------------------------
    def _payload(self, metrics: dict[str, Any], *, training: bool) -> dict[str, Any]:
        payload = {
            "model_name": self.config.model["name"],
            "task": self.config.task,
            "config": self.config.to_dict(),
            "meta": self.meta,
            "run_id": self.run_id,
            # last.pt: the trained weights (to resume); best.pt: the best evaluated ones
            "state_dict": self.model.state_dict() if training else self.best_state,
            "metrics": metrics,
            "num_params": count_parameters(self.model),
        }
        if training:
            payload["training"] = {
                "epoch": self.history[-1]["epoch"],
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "history": self.history,
                "best_metric": self.best_metric,
                "best_epoch": self.best_epoch,
                "best_state_dict": self.best_state,  # so that best.pt can always be rebuilt from last.pt
                "train_seconds": self.train_seconds,
            }
            if self.average is not None:
                payload["training"]["ema_state_dict"] = self.average.state_dict()
        return payload

    def _write_epoch_files(self, improved: bool) -> None:
        """The epoch's commit (last.pt), then what derives from it."""
        metrics = {"epoch": self.history[-1]["epoch"], "val": self._val_of(self.history[-1])}
        save_checkpoint(self.out_dir / "last.pt", self._payload(metrics, training=True))
        self._write_derived_files(best=improved)

    def _write_derived_files(self, *, best: bool) -> None:
        """best.pt (when ``best``), metrics.jsonl and curves.png, from the state last.pt holds."""
        from rnnvision.viz.plots import plot_curves

        out = self.out_dir
        if best and self.best_state is not None:
            best_row = next(r for r in self.history if r["epoch"] == self.best_epoch)
            save_checkpoint(
                out / "best.pt",
                self._payload({"epoch": self.best_epoch, "val": self._val_of(best_row)}, training=False),
            )
        atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in self.history))
        plot_curves(self.history, out / "curves.png", metric=self.task.metric)

    @staticmethod
    def _val_of(row: dict[str, Any]) -> dict[str, Any]:
        return {k[4:]: v for k, v in row.items() if k.startswith("val_")}

    def _log(self, text: str) -> None:
        if self.ctx.is_main and not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def _evaluate(self, dataset: InfoDataset) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        cfg = self.config.train
        return evaluate(
            self.eval_model,
            dataset,
            self.task,
            batch_size=cfg.eval_batch_size,
            device=self.ctx.device,
            ctx=self.ctx,
            bf16=cfg.bf16,
        )

    # -- the run --------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        with self._locked_run_dir():
            return self._fit()

    def _fit(self) -> TrainResult:
        cfg = self.config.train
        n_params = count_parameters(self.model)
        self._log(
            f"{self.config.model['name']} ({n_params:,} parameters) on {self.config.data['name']}: "
            f"{len(self.train_set)} train / {len(self.val_set)} val / {len(self.test_set)} test, "
            f"{self.ctx.world_size} process(es) on {self.ctx.device}"
        )
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            started = time.perf_counter()
            train_loss = self._train_epoch(epoch)
            self.train_seconds += time.perf_counter() - started
            val, _ = self._evaluate(self.val_set)
            row = {
                "epoch": epoch,
                "step": self.step,
                "lr": self.scheduler.get_last_lr()[0],
                "train_loss": train_loss,
                **{f"val_{k}": v for k, v in val.items()},
                "epoch_seconds": time.perf_counter() - started,
                "train_seconds": self.train_seconds,
            }
            self.history.append(row)
            improved = self.task.is_better(val[self.task.metric], self.best_metric)
            if improved:
                self.best_metric, self.best_epoch = val[self.task.metric], epoch
                self.best_state = copy.deepcopy(self.eval_model.state_dict())
            if self.ctx.is_main:
                self._write_epoch_files(improved)
            self._log(
                f"epoch {epoch}/{cfg.epochs}  {self.task.describe_epoch(train_loss, val)}  ({row['epoch_seconds']:.1f} s)"
            )
        return self._finish()

    def _finish(self) -> TrainResult:
        if self.best_state is not None:
            self.eval_model.load_state_dict(self.best_state)
        test, test_stats = self._evaluate(self.test_set)
        best_row = next(r for r in self.history if r["epoch"] == self.best_epoch)
        val = self._val_of(best_row)
        if self.ctx.is_main:
            metrics = {"epoch": self.best_epoch, "val": val, "test": test}
            save_checkpoint(self.out_dir / "best.pt", self._payload(metrics, training=False))
            summary = {
                "model": self.config.model["name"],
                "data": self.config.data["name"],
                "best_epoch": self.best_epoch,
                "val": val,
                "test": test,
                "train_seconds": round(self.train_seconds, 1),
                "num_params": count_parameters(self.model),
                "processes": self.ctx.world_size,
            }
            atomic_write_text(self.out_dir / "results.json", json.dumps(summary, indent=2) + "\n")
            self.task.write_report(self.eval_model, self.test_set, test_stats, self.out_dir, device=self.ctx.device)
        barrier(self.ctx)
        return TrainResult(self.out_dir, self.best_epoch, val, test, self.train_seconds, self.eval_model)


def train(
    config: RunConfig,
    *,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    download: bool = False,
    resume: str | Path | None = None,
    quiet: bool = False,
) -> TrainResult:
    """Train ``config`` into ``out_dir`` (joining a torchrun process group when there is one)."""
    ctx = init_distributed(config.train.device)
    try:
        return Trainer(
            config, out_dir=out_dir, data_dir=data_dir, download=download, resume=resume, quiet=quiet, ctx=ctx
        ).fit()
    finally:
        shutdown(ctx)


def _check_init_from(source: str) -> None:
    """A missing ``train.init_from`` (or an unknown weights name) is reported before any data is read, with the
    recipe that makes it."""
    from rnnvision.weights.loading import is_weights_source

    path = Path(source)
    if path.is_file() or is_weights_source(source):
        return
    hint = ""
    if path.name in ("best.pt", "last.pt") and path.parent.name:
        hint = (
            f"; it is made by another recipe: run `rnnvision train configs/{path.parent.name}.yaml --out {path.parent}` "
            "first (or set train.init_from to an existing checkpoint, or to '' to start from scratch)"
        )
    raise UserError(f"train.init_from: checkpoint not found: {path}{hint}")
