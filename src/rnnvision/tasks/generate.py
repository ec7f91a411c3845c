"""Generation (density estimation): exact negative log-likelihood, samples and completions.

Training minimises the mean NLL per sub-pixel (nats); evaluation reports the NLL per image in
nats (``nll_nats``, the binarized-MNIST convention) and in bits per sub-pixel (``bits_per_dim``,
the convention for 8-bit images). ``rnnvision generate`` and ``rnnvision complete`` call
:func:`generate_to_file` and :func:`complete_to_file`; ``rnnvision predict`` gives each image's NLL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
from PIL import Image
from torch import Tensor, nn

from rnnvision.data.base import InfoDataset
from rnnvision.data.transforms import image_size, open_image, pil_to_tensor
from rnnvision.errors import UserError
from rnnvision.models.autoregressive import AutoregressiveImageModel, nats_to_bits_per_dim, pixel_log_probs
from rnnvision.outputs import check_output_file, image_format
from rnnvision.tasks.base import Batch, Task, register_task

NOT_COMPARABLE = "fixed-threshold binarization: NLL not comparable to stochastic-binarization results"


def _unwrap(model: nn.Module) -> AutoregressiveImageModel:
    return cast(
        AutoregressiveImageModel, getattr(model, "module", model)
    )  # DistributedDataParallel keeps it in .module


def quantize(images: Tensor, levels: int) -> Tensor:
    """Values in [0, 1] -> the nearest of the ``levels`` values k / (levels - 1) (0/1 at 0.5 for binary)."""
    return (images * (levels - 1)).round() / (levels - 1)


@register_task
class GenerationTask(Task):
    name = "generate"
    metric = "nll_nats"
    higher_is_better = False

    def __init__(self, *, comparable: bool = True) -> None:
        self.comparable = comparable

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> GenerationTask:
        return cls(comparable=not str(meta.get("name", "")).endswith("-threshold"))

    def training_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Mean NLL per sub-pixel in nats (the per-image NLL divided by C * H * W)."""
        return -pixel_log_probs(model(batch), batch, _unwrap(model).levels).mean()

    def describe_epoch(self, train_loss: float, val: dict[str, Any]) -> str:
        """Both in bits/dim (the training loss is the mean NLL per sub-pixel in nats), validation also per image."""
        return (
            f"train {nats_to_bits_per_dim(train_loss, 1):.4f} bits/dim  val {val['bits_per_dim']:.4f} bits/dim "
            f"({val['nll_nats']:.2f} nats/image)"
        )

    def eval_stats(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        log_probs = pixel_log_probs(model(batch).float(), batch, _unwrap(model).levels)  # (B, C, H, W)
        return {
            "nll": -log_probs.double().flatten(1).sum(dim=1).sum(),
            "n": torch.tensor(len(batch)),
            "dims": torch.tensor(log_probs.numel()),
        }

    def finalize(self, stats: dict[str, Tensor]) -> dict[str, Any]:
        n, dims, nll = int(stats["n"]), int(stats["dims"]), float(stats["nll"])
        metrics: dict[str, Any] = {
            "nll_nats": nll / max(n, 1),
            "bits_per_dim": nats_to_bits_per_dim(nll, max(dims, 1)),
            "n": n,
        }
        if not self.comparable:
            metrics["note"] = NOT_COMPARABLE
        return metrics

    def write_report(
        self, model: nn.Module, dataset: InfoDataset, stats: dict[str, Tensor], out_dir: Path, *, device: torch.device
    ) -> list[Path]:
        """``samples.png`` (64 samples) and ``completions.png`` (bottom halves of test images filled in)."""
        from rnnvision.viz.plots import save_image_grid

        generative = cast(AutoregressiveImageModel, model)
        generator = torch.Generator(device=device).manual_seed(0)
        written = [save_image_grid(generative.sample(64, generator=generator), out_dir / "samples.png", nrow=8)]
        images = torch.stack([dataset[i] for i in range(min(8, len(dataset)))]).to(device)
        grid = completion_grid(generative, images, known_rows=images.shape[-2] // 2, samples=4, generator=generator)
        written.append(save_image_grid(grid, out_dir / "completions.png", nrow=grid.shape[0] // len(images)))
        return written

    def predict_images(
        self,
        model: nn.Module,
        images: list[Image.Image],
        names: list[str],
        meta: dict[str, Any],
        *,
        device: torch.device,
    ) -> list[dict[str, Any]]:
        """NLL of each image (resized to the training size; binary models threshold it at 0.5)."""
        generative = _unwrap(model)
        batch = images_tensor(generative, images).to(device)  # (B, C, H, W)
        with torch.no_grad():
            nll = -generative.log_prob(batch).double().cpu()
        dims = batch[0].numel()
        return [
            {
                "file": name,
                "nll_nats": round(float(v), 4),
                "bits_per_dim": round(nats_to_bits_per_dim(float(v), dims), 5),
            }
            for name, v in zip(names, nll)
        ]

    @staticmethod
    def format_prediction(result: dict[str, Any]) -> str:
        return f"{result['file']}: {result['nll_nats']:.2f} nats ({result['bits_per_dim']:.4f} bits/dim)"


def images_tensor(model: AutoregressiveImageModel, images: list[Image.Image]) -> Tensor:
    """PIL images -> (N, C, H, W) at the model's training size and value levels."""
    size = model.img_size
    return quantize(
        torch.stack([pil_to_tensor(image, channels=model.in_chans, size=size) for image in images]), model.levels
    )


def completion_grid(
    model: AutoregressiveImageModel,
    images: Tensor,
    *,
    known_rows: int | list[int],
    samples: int,
    generator: torch.Generator | None,
    method: str = "auto",
) -> Tensor:
    """Per image: the occluded input (unknown rows grey), ``samples`` completions, the original.

    ``known_rows`` counts rows of ``images`` (one count for all, or one per image).

    Returns (N * (samples + 2), C, H, W), image by image, ready for a grid with ``samples + 2`` columns.
    """
    height = images.shape[-2]
    if samples < 1:
        raise UserError(f"the number of completions per image must be at least 1, got {samples}")
    per_image = [known_rows] * len(images) if isinstance(known_rows, int) else list(known_rows)
    known = torch.zeros_like(images, dtype=torch.bool)
    for i, rows in enumerate(per_image):
        if not 0 < rows < height:
            raise UserError(f"the number of known rows must lie in [1, {height - 1}], got {rows}")
        known[i, :, :rows] = True
    repeated = images.repeat_interleave(samples, dim=0)  # (N * samples, C, H, W)
    completed = model.complete(repeated, known.repeat_interleave(samples, dim=0), method=method, generator=generator)
    occluded = torch.where(known, images, torch.full_like(images, 0.5))
    grid = [
        torch.cat([occluded[i : i + 1], completed[i * samples : (i + 1) * samples], images[i : i + 1]])
        for i in range(len(images))
    ]
    return torch.cat(grid)


def _load(checkpoint: str | Path, device: str) -> tuple[AutoregressiveImageModel, torch.device]:
    from rnnvision.engine.distributed import pick_device
    from rnnvision.weights.loading import resolve

    torch_device = pick_device(device)
    model, state = resolve(checkpoint, device=torch_device)
    if state["task"] != "generate":
        raise UserError(f"{checkpoint} is a {state['task']} model; generate and complete need a generate model")
    return _unwrap(model), torch_device


def generate_to_file(
    checkpoint: str | Path,
    *,
    n: int = 64,
    out: str | Path,
    seed: int = 0,
    method: str = "auto",
    size: tuple[int, int] | None = None,
    device: str = "auto",
    nrow: int = 8,
) -> Path:
    """Sample ``n`` images from a checkpoint and write them as one image grid (PNG, JPEG, ... by suffix); returns the path."""
    from rnnvision.viz.plots import save_image_grid

    image_format(check_output_file(out))  # refuse a bad --out before sampling
    model, torch_device = _load(checkpoint, device)
    generator = torch.Generator(device=torch_device).manual_seed(seed)
    images = model.sample(n, size=size, method=method, generator=generator)
    return save_image_grid(images, out, nrow=min(nrow, n))


def complete_to_file(
    checkpoint: str | Path,
    images: list[str],
    *,
    out: str | Path,
    known_rows: int | None = None,
    samples: int = 4,
    seed: int = 0,
    method: str = "auto",
    device: str = "auto",
) -> Path:
    """Keep the top ``known_rows`` rows (rows of the file; default: half) of each image file, sample the
    rest ``samples`` times, and write an image grid: one row per file (occluded, completions, original)."""
    from rnnvision.viz.plots import save_image_grid

    if samples < 1:
        raise UserError(f"--samples must be at least 1, got {samples}")
    image_format(check_output_file(out))
    model, torch_device = _load(checkpoint, device)
    rows = [_model_rows(path, known_rows, model.img_size[0]) for path in images]
    batch = images_tensor(model, [open_image(path) for path in images]).to(torch_device)
    generator = torch.Generator(device=torch_device).manual_seed(seed)
    grid = completion_grid(model, batch, known_rows=rows, samples=samples, generator=generator, method=method)
    return save_image_grid(grid, out, nrow=samples + 2)


def _model_rows(path: str, known_rows: int | None, model_height: int) -> int:
    """Known rows of an image file -> rows of the model's grid the file is resized to (at least 1, one left)."""
    height = image_size(path)[1]
    if known_rows is None:
        known_rows = height // 2
    if not 0 < known_rows < height:
        raise UserError(
            f"the number of known rows must lie in [1, {height - 1}] for {path} ({height} rows), got {known_rows}"
        )
    return min(max(round(known_rows * model_height / height), 1), model_height - 1)
