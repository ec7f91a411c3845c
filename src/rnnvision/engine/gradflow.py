"""How far back the loss gradient reaches in a trained sequence classifier: ``rnnvision gradflow``.

For a batch of test images, the norm of d(loss)/d(x_t) at every step t of the sequence the model
reads (pixels, rows, ...), averaged over the batch: the picture of vanishing gradients (Bengio et
al. 1994; Hochreiter & Schmidhuber 1997). For LSTM and GRU layers also the mean forget (LSTM) or
update (GRU, its keep gate) activation per step: a keep gate near 1 is what lets the gradient
through. A sequence model is one that offers ``to_sequence(images) -> (B, T, F)`` and
``forward_sequence(seq) -> logits`` (the pixel and row classifiers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnvision.data import build_dataset
from rnnvision.engine.distributed import pick_device
from rnnvision.errors import UserError
from rnnvision.weights.loading import resolve

KEEP_GATES = {"forget": "LSTM forget gate", "update": "GRU update gate"}


@dataclass
class GradientFlow:
    """``grad_norm`` (T,): mean over the images of ||dL/dx_t||; ``gates``: name -> (T,) mean activation."""

    model_name: str
    grad_norm: Tensor
    gates: dict[str, Tensor] = field(default_factory=dict)
    n: int = 0


def is_sequence_model(model: torch.nn.Module) -> bool:
    """True for models that read an image as a sequence and expose it (``to_sequence`` + ``forward_sequence``)."""
    return callable(getattr(model, "to_sequence", None)) and callable(getattr(model, "forward_sequence", None))


def gradient_flow(
    path: str | Path, *, data_dir: str | Path | None = None, split: str = "test", n: int = 64, device: str = "auto"
) -> GradientFlow:
    """Per-step input-gradient norms (and keep gates) of a classification checkpoint on ``n`` images of ``split``."""
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    torch_device = pick_device(device)
    model, state = resolve(path, device=torch_device)
    name = state["config"]["model"]["name"]
    if state["task"] != "classify" or not is_sequence_model(model):
        raise UserError(f"{path}: model {name!r} is not a sequence classifier; gradflow needs a pixel or row model "
                        "(one with to_sequence and forward_sequence)")
    data_options = dict(state["config"]["data"])
    data = build_dataset(data_options.pop("name"), split=split, root=data_dir, **data_options)
    count = min(n, len(data))
    images, labels = zip(*(data[i] for i in range(count)))
    images = torch.stack(images).to(torch_device)
    labels = torch.stack([torch.as_tensor(y) for y in labels]).to(torch_device)

    seq = model.to_sequence(images).detach().requires_grad_(True)  # (B, T, F)
    loss = F.cross_entropy(model.forward_sequence(seq), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, seq)
    grad_norm = grad.norm(dim=-1).mean(0).cpu()  # (T,): ||dL_i/dx_t|| averaged over images
    gates: dict[str, Tensor] = {}
    rnn = getattr(model, "rnn", None)
    if rnn is not None and getattr(rnn, "gate_names", ()):
        with torch.no_grad():
            _, _, all_gates = rnn(seq.detach(), return_gates=True)  # name -> (L, D, B, T, H)
        gates = {g: all_gates[g].mean(dim=(0, 1, 2, 4)).cpu() for g in KEEP_GATES if g in all_gates}
    return GradientFlow(model_name=name, grad_norm=grad_norm, gates=gates, n=count)
