"""LRU training step (forward + backward) at T = 784: the complex chunked scan vs its reference loop vs torch.nn.LSTM.

One process, the same inputs (B, T, I): the scan and the loop must agree (outputs and input
gradients, ``allclose``) before anything is timed; torch.nn.LSTM gets the hidden size that gives it
the LRU's parameter count. The step is ``(out * w).sum().backward()``.

    OMP_NUM_THREADS=1 python benchmarks/bench_lru.py --batch 32 --steps 784
"""

from __future__ import annotations

import argparse
import math
import platform

import torch
from torch import nn

from rnnvision.bench.timing import time_call
from rnnvision.layers.lru import LRU


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _lstm_matching(input_size: int, target: int) -> nn.LSTM:
    """torch.nn.LSTM(I, H) with 4H(I + H) + 8H parameters closest to ``target``."""
    linear = 4 * input_size + 8  # 4H^2 + (4I + 8)H = target
    hidden = round((-linear + math.sqrt(linear**2 + 16 * target)) / 8)
    return nn.LSTM(input_size, hidden, batch_first=True)


def _step(module: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> None:
    x.grad = None
    module.zero_grad(set_to_none=True)
    out = module(x)[0]
    (out * weight[..., : out.shape[-1]]).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=784)
    parser.add_argument("--input", type=int, default=128, help="I, the LRU's input and output width")
    parser.add_argument("--state", type=int, default=128, help="N, complex states")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3, help="at least this many timed calls (the median is reported)")
    args = parser.parse_args()
    torch.manual_seed(0)
    lru = LRU(args.input, args.state, r_min=0.9, r_max=0.999, max_phase=math.pi)
    lstm = _lstm_matching(args.input, _params(lru))
    x = torch.randn(args.batch, args.steps, args.input, requires_grad=True)
    weight = torch.randn(args.batch, args.steps, args.input)

    results = {}
    for impl in ("scan", "reference"):
        lru.impl = impl
        _step(lru, x, weight)
        results[impl] = (lru(x)[0].detach(), x.grad.clone())
    torch.testing.assert_close(results["scan"][0], results["reference"][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(results["scan"][1], results["reference"][1], rtol=1e-4, atol=1e-4)

    times = {}
    for name, module, impl in (("LRU scan", lru, "scan"), ("LRU reference loop", lru, "reference"), ("torch.nn.LSTM", lstm, None)):
        if impl:
            module.impl = impl
        times[name] = time_call(lambda m=module: _step(m, x, weight), warmup=1, min_seconds=args.min_seconds,
                                min_repeats=args.repeats)
    print(f"machine: {platform.processor() or platform.machine()}; torch {torch.__version__}; "
          f"threads {torch.get_num_threads()}; B {args.batch} T {args.steps} I {args.input} N {args.state}")
    print(f"parameters: LRU {_params(lru):,}, torch.nn.LSTM(hidden {lstm.hidden_size}) {_params(lstm):,}")
    print("| implementation | fwd+bwd ms | LRU scan speed-up |")
    print("|---|---:|---:|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {seconds / times['LRU scan']:.1f}x |")


if __name__ == "__main__":
    main()
