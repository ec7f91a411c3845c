"""Image classification: cross-entropy, accuracy, confusion matrix, prediction with probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from rnnvision.data.base import InfoDataset
from rnnvision.data.transforms import pil_to_tensor
from rnnvision.errors import UserError
from rnnvision.models.classifier import ReadingClassifier
from rnnvision.tasks.base import Batch, Task, register_task


@register_task
class ClassificationTask(Task):
    name = "classify"
    metric = "accuracy"
    higher_is_better = True

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ClassificationTask:
        return cls(num_classes=len(meta["class_names"]))

    def training_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        images, labels = batch
        return F.cross_entropy(model(images), labels)

    def eval_stats(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        images, labels = batch
        logits = model(images).float()
        predicted = logits.argmax(dim=1)
        confusion = torch.bincount(labels * self.num_classes + predicted, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )  # rows: true class, columns: predicted
        return {
            "loss": F.cross_entropy(logits, labels, reduction="sum"),
            "correct": (predicted == labels).sum(),
            "n": torch.tensor(len(labels)),
            "confusion": confusion,
        }

    def finalize(self, stats: dict[str, Tensor]) -> dict[str, Any]:
        n = int(stats["n"])
        return {"accuracy": float(stats["correct"]) / max(n, 1), "loss": float(stats["loss"]) / max(n, 1), "n": n}

    def write_report(
        self, model: nn.Module, dataset: InfoDataset, stats: dict[str, Tensor], out_dir: Path, *, device: torch.device
    ) -> list[Path]:
        from rnnvision.viz.plots import plot_confusion, plot_gates, plot_image_grid

        class_names = list(dataset.info.class_names)
        written = [plot_confusion(stats["confusion"].cpu().numpy(), class_names, out_dir / "confusion.png")]
        count = min(32, len(dataset))
        images = torch.stack([dataset[i][0] for i in range(count)])
        labels = [int(dataset[i][1]) for i in range(count)]
        model.eval()
        with torch.no_grad():
            predicted = model(images.to(device)).argmax(dim=1).tolist()
        titles = [f"pred {class_names[p]} / true {class_names[t]}" for p, t in zip(predicted, labels)]
        wrong = [p != t for p, t in zip(predicted, labels)]
        written.append(plot_image_grid(images, titles, out_dir / "predictions.png", highlight=wrong))
        if isinstance(model, ReadingClassifier) and model.reading_order == "rows" and model.gate_names():
            with torch.no_grad():
                gates = model.gates(images[:1].to(device))
            first_layer = {name: g[0, 0, 0].cpu() for name, g in gates.items()}  # (T, H) per gate
            title = f"{model.recurrence_name} gates for a test image (true {class_names[labels[0]]})"
            written.append(plot_gates(images[0], first_layer, out_dir / "gates.png", title=title))
        return written

    def prepare_predict(
        self, names: list[str], meta: dict[str, Any], *, topk: int | None = None, **options: Any
    ) -> dict[str, Any]:
        """``topk``: also give the ``topk`` most probable classes (1 to the number of classes)."""
        super().prepare_predict(names, meta, **options)
        if topk is not None and not 1 <= topk <= self.num_classes:
            raise UserError(f"--topk must lie in [1, {self.num_classes}] (the model's classes), got {topk}")
        return {"topk": topk}

    def predict_images(
        self,
        model: nn.Module,
        images: list[Image.Image],
        names: list[str],
        meta: dict[str, Any],
        *,
        device: torch.device,
        topk: int | None = None,
    ) -> list[dict[str, Any]]:
        """Class and probability of each image (resized to the training size), with ``topk``: the
        ``topk`` most probable classes, most probable first."""
        size = tuple(meta["img_size"])
        batch = torch.stack(
            [pil_to_tensor(image, channels=meta["in_chans"], size=size) for image in images]
        )  # (B, C, H, W)
        model.eval()
        with torch.no_grad():
            probs = F.softmax(model(batch.to(device)).float(), dim=1).cpu()  # (B, K)
        class_names = meta["class_names"]
        top_p, top_k = probs.topk(topk or 1, dim=1)  # (B, k) sorted, most probable first
        results = []
        for name, p, k in zip(names, top_p.tolist(), top_k.tolist()):
            result = {"file": name, "class": k[0], "label": class_names[k[0]], "probability": round(p[0], 6)}
            if topk:
                result["top"] = [
                    {"class": c, "label": class_names[c], "probability": round(q, 6)} for c, q in zip(k, p)
                ]
            results.append(result)
        return results

    @staticmethod
    def format_prediction(result: dict[str, Any]) -> str:
        others = "".join(f", {t['label']} ({t['probability']:.3f})" for t in result.get("top", [])[1:])
        return f"{result['file']}: {result['label']} ({result['probability']:.3f}){others}"
