"""bfloat16 autocast (``train.bf16``): every registered model, tiny, stays close to its float32 self.

Training and evaluation run the forward pass under the trainer's ``autocast`` (bfloat16). bfloat16
has an 8-bit significand (a relative rounding of up to 2**-8, about 4e-3 per operation), so a tiny model's
outputs and gradients differ from float32 by a few 1e-3 of their norm (measured: at most 1e-2 for
the outputs, 1.1e-2 for the gradients, on the tiny sizes and seeds below). The tolerances, 3e-2 and 4e-2
of the norm, leave room for other CPUs. At these sizes (tens of steps) a state carried in bfloat16
stays within them; ``tests/ops/test_scan.py`` checks the float32 accumulation of the scans on a
long sequence with long memory, where it matters.
"""

from __future__ import annotations

import pytest
import torch

from rnnvision.engine.distributed import autocast
from rnnvision.models import create_model, get_model_entry, list_models


def _run(name: str, *, bf16: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Outputs (as float32) and parameter gradients of the tiny model on its seeded example inputs."""
    torch.manual_seed(0)
    model = create_model(name, **get_model_entry(name).tiny).eval()
    torch.manual_seed(1)
    inputs = model.example_inputs(batch_size=2)
    with autocast(torch.device("cpu"), bf16):  # the context training and evaluation use
        output = model(*inputs)
    outputs = [o.float() for o in (output if isinstance(output, (tuple, list)) else (output,))]
    sum(o.square().mean() for o in outputs).backward()
    grads = [p.grad.float() for p in model.parameters() if p.grad is not None]
    return outputs, grads


def _relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Norm of the difference over the norm of ``b``, over all tensors together."""
    diff = torch.cat([(x - y).detach().flatten() for x, y in zip(a, b)])
    return float(diff.norm() / torch.cat([y.detach().flatten() for y in b]).norm())


@pytest.mark.parametrize("name", list_models())
def test_bf16_autocast_stays_within_its_tolerance_of_float32(name):
    outputs, grads = _run(name, bf16=False)
    low_outputs, low_grads = _run(name, bf16=True)
    assert len(low_grads) == len(grads) and all(torch.isfinite(g).all() for g in low_grads)
    error = _relative(low_outputs, outputs)
    assert 0 < error < 3e-2, f"{name}: outputs differ by {error:.2e} of their norm"  # 0: autocast did nothing
    assert _relative(low_grads, grads) < 4e-2, name
