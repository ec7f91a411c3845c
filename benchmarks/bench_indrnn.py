"""IndRNN training step (forward + backward): the fused loop against its autograd reference, and what each keeps.

One process, the same weights and inputs (B, T, I); the two must agree (outputs and input
gradients, ``allclose``) before anything is timed. Memory: the bytes of the distinct storages the
forward keeps for the backward, counted with ``torch.autograd.graph.saved_tensors_hooks``.

    OMP_NUM_THREADS=1 python benchmarks/bench_indrnn.py --batch 16 --steps 1000 --hidden 98 --layers 2
"""

from __future__ import annotations

import argparse

import torch

from rnnvision.bench.timing import machine_summary, saved_for_backward, time_call
from rnnvision.layers.indrnn import IndRNN


def _step(model: IndRNN, x: torch.Tensor) -> None:
    x.grad = None
    model.zero_grad(set_to_none=True)
    model(x)[0].sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--input", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=98)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    fused = IndRNN(args.input, args.hidden, args.layers, impl="fused")
    reference = IndRNN(args.input, args.hidden, args.layers, impl="reference")
    reference.load_state_dict(fused.state_dict())
    x = torch.randn(args.batch, args.steps, args.input, requires_grad=True)
    results = []
    for model in (fused, reference):
        _step(model, x)
        results.append((model(x)[0].detach(), x.grad.clone()))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

    print(f"machine: {machine_summary()}; B {args.batch} T {args.steps} I {args.input} H {args.hidden} L {args.layers}")
    print("| implementation | fwd+bwd ms | kept for backward | tensors kept |")
    print("|---|---:|---:|---:|")
    for name, model in (("fused", fused), ("reference", reference)):
        seconds = time_call(lambda m=model: _step(m, x), warmup=1, min_seconds=args.min_seconds)
        size, count = saved_for_backward(lambda m=model: m(x))
        print(f"| {name} | {seconds * 1e3:.1f} | {size / 2**20:.1f} MiB | {count:,} |")


if __name__ == "__main__":
    main()
