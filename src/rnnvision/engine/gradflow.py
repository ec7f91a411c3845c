"""How far back the loss gradient reaches in a trained sequence model: ``rnnvision gradflow``.

For a batch of test examples, the norm of d(loss)/d(x_t) at every step t of the sequence the model
reads (pixels, rows, the steps of an ``adding`` or ``copy-memory`` sequence), averaged over the
batch: the picture of vanishing gradients (Bengio et al. 1994; Hochreiter & Schmidhuber 1997). The
loss is the task's own training loss of each example (cross-entropy of the class, squared error
of the value, mean cross-entropy over the steps of a tagged sequence), summed over the batch. For
LSTM and GRU layers also the mean forget (LSTM) or update (GRU, its keep gate) activation per step:
a keep gate near 1 is what lets the gradient through. A sequence model is one that offers
``to_sequence(inputs) -> (B, T, F)`` and ``forward_sequence(seq)`` (the pixel and row classifiers,
``sequence_regressor``, ``sequence_tagger``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeGuard

import torch
from torch import Tensor, nn

from rnnvision.data import build_dataset
from rnnvision.engine.distributed import pick_device
from rnnvision.errors import UserError
from rnnvision.models.interface import HasGates
from rnnvision.tasks import make_task
from rnnvision.weights.loading import resolve

KEEP_GATES = {"forget": "LSTM forget gate", "update": "GRU update gate"}


@dataclass
class GradientFlow:
    """``grad_norm`` (T,): mean over the examples of ||dL/dx_t||; ``gates``: name -> (T,) mean activation."""

    model_name: str
    grad_norm: Tensor
    gates: dict[str, Tensor] = field(default_factory=dict)
    n: int = 0


class SequenceModel(Protocol):
    """A model that reads its input as a sequence and exposes it."""

    def to_sequence(self, inputs: Tensor) -> Tensor: ...  # (B, ...) -> (B, T, F)

    def forward_sequence(self, seq: Tensor) -> Tensor: ...  # (B, T, F) -> the model's output


def is_sequence_model(model: nn.Module) -> TypeGuard[SequenceModel]:
    """True for models that read their input as a sequence and expose it (``to_sequence`` + ``forward_sequence``)."""
    return callable(getattr(model, "to_sequence", None)) and callable(getattr(model, "forward_sequence", None))


class _FromSequence(nn.Module):
    """``model`` called on the sequence it reads, so that a task's loss is a function of that sequence."""

    def __init__(self, model: SequenceModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, seq: Tensor) -> Tensor:
        return self.model.forward_sequence(seq)


def gradient_flow(
    path: str | Path, *, data_dir: str | Path | None = None, split: str = "test", n: int = 64, device: str = "auto"
) -> GradientFlow:
    """Per-step input-gradient norms (and keep gates) of a sequence-model checkpoint on ``n`` examples of ``split``."""
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    torch_device = pick_device(device)
    model, state = resolve(path, device=torch_device)
    name = state["config"]["model"]["name"]
    if not is_sequence_model(model):
        raise UserError(
            f"{path}: model {name!r} is not a sequence model; gradflow needs a pixel, row or sequence "
            "model (one with to_sequence and forward_sequence)"
        )
    data_options = dict(state["config"]["data"])
    data = build_dataset(data_options.pop("name"), split=split, root=data_dir, **data_options)
    count = min(n, len(data))
    columns = zip(*(data[i] for i in range(count)))  # inputs, then the targets (and masks) of the task
    inputs, *targets = (torch.stack([torch.as_tensor(v) for v in column]).to(torch_device) for column in columns)

    seq = model.to_sequence(inputs).detach().requires_grad_(True)  # (B, T, F)
    task = make_task(state["task"], state["meta"])
    loss = task.training_loss(_FromSequence(model), (seq, *targets)) * count  # the mean over examples -> their sum
    (grad,) = torch.autograd.grad(loss, seq)
    grad_norm = grad.norm(dim=-1).mean(0).cpu()  # (T,): ||dL_i/dx_t|| averaged over examples
    gates: dict[str, Tensor] = {}
    if isinstance(model, HasGates) and model.gate_names():
        with torch.no_grad():
            all_gates = model.sequence_gates(seq.detach())  # name -> (L, D, B, T, H)
        gates = {g: all_gates[g].mean(dim=(0, 1, 2, 4)).cpu() for g in KEEP_GATES if g in all_gates}
    return GradientFlow(model_name=name, grad_norm=grad_norm, gates=gates, n=count)
