"""Why does ``pixel_lstm`` stay at chance on sequential MNIST? Short experiments (minutes each, 1 thread).

Two measurements, both on real MNIST training digits:

- ``gradient``: at initialisation, the norm of d(loss)/d(x_t) for every pixel step t, averaged over
  a batch, in bins of 98 steps, for float32 and bfloat16 autocast: does the loss gradient reach
  the pixels that carry the digit? Also where the last non-blank pixel of each digit lies.
- ``train``: a few hundred AdamW steps (the recipe's optimiser: weight decay 0.01, linear warm-up,
  gradient clipping) on a subset, printing the training loss; then accuracy on held-out digits.

    OMP_NUM_THREADS=1 python benchmarks/diagnose_pixel_lstm.py gradient --gate-init default
    OMP_NUM_THREADS=1 python benchmarks/diagnose_pixel_lstm.py train --steps 150 --gate-init chrono
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from rnnvision.data.registry import build_dataset
from rnnvision.models.registry import create_model


def _batch(dataset, indices):
    images, labels = zip(*(dataset[i] for i in indices))
    return torch.stack(images), torch.stack([torch.as_tensor(y) for y in labels])


def _model(args):
    torch.manual_seed(args.seed)
    return create_model("pixel_lstm", hidden_size=args.hidden, gate_init=args.gate_init)


def gradient(args, train) -> None:
    model = _model(args)
    images, labels = _batch(train, range(args.batch))
    seq = model.to_sequence(images)  # (B, 784, 1)
    nonzero = (seq[..., 0] > 0).float()
    last = (nonzero * torch.arange(seq.shape[1])).amax(1)  # (B,) last non-blank step
    print(
        f"last non-blank pixel: mean step {last.mean():.0f}, min {last.min():.0f}, max {last.max():.0f} of {seq.shape[1]}"
    )
    fp32_per_step = None
    for bf16 in (False, True):
        x = seq.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            _, (h_n, _) = model.rnn(x)
            loss = F.cross_entropy(model.head(h_n[-1]).float(), labels)
        loss.backward()
        per_step = x.grad[..., 0].abs().mean(0)  # (784,) mean |dL/dx_t| over the batch
        bins = per_step.view(8, -1).mean(1)
        fp32_per_step = per_step if not bf16 else fp32_per_step
        print(
            ("bf16" if bf16 else "fp32")
            + " mean |dL/dx_t| by 98-step bin (first..last): "
            + " ".join(f"{b:.1e}" for b in bins.tolist())
        )
    with torch.no_grad():
        model.rnn.impl = "reference"
        _, _, gates = model.rnn(seq, return_gates=True)
        forget = gates["forget"].mean().item()
    print(f"mean forget gate at init: {forget:.3f} (memory of one step kept after 100 steps ~ {forget**100:.1e})")
    if args.plot:
        from rnnvision.viz.plots import plot_gradient_flow

        per_step_gate = {"forget": gates["forget"].mean(dim=(0, 1, 2, 4))}  # (784,)
        title = f"pixel_lstm at initialisation, gate_init={args.gate_init!r}: |dL/dx_t| (float32, {args.batch} digits)"
        plot_gradient_flow(fp32_per_step, per_step_gate, args.plot, title=title)
        print(f"wrote {args.plot}")


def train(args, train_set) -> None:
    model = _model(args)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr
    )
    warmup = max(1, round(args.warmup * args.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    generator = torch.Generator().manual_seed(args.seed)
    subset = torch.randperm(len(train_set), generator=generator)[: args.subset]
    held_out = torch.randperm(len(train_set), generator=generator)[-args.eval :]
    start = time.perf_counter()
    window = []
    for step in range(args.steps):
        idx = subset[torch.randint(len(subset), (args.batch,), generator=generator)]
        images, labels = _batch(train_set, idx.tolist())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = F.cross_entropy(model(images).float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), args.clip if args.clip > 0 else float("inf"))
        opt.step()
        sched.step()
        window.append(loss.item())
        if (step + 1) % args.every == 0:
            print(
                f"step {step + 1}: loss {sum(window) / len(window):.3f} grad-norm {norm:.2e} "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
            window = []
    model.eval()
    images, labels = _batch(train_set, held_out.tolist())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
        accuracy = (model(images).argmax(1) == labels).float().mean().item()
    print(
        f"held-out accuracy ({args.eval} digits): {accuracy:.3f}; {time.perf_counter() - start:.0f} s, "
        f"{(time.perf_counter() - start) / args.steps:.2f} s/step"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("gradient", "train"))
    parser.add_argument("--data-dir", default="/work/alldata")
    parser.add_argument("--gate-init", choices=("default", "chrono"), default="default")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=float, default=0.1, help="fraction of the steps")
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--subset", type=int, default=10000)
    parser.add_argument("--eval", type=int, default=1000)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", help="gradient mode: also draw |dL/dx_t| and the forget gate per step to this PNG")
    args = parser.parse_args()
    train_set = build_dataset("mnist", split="train", root=args.data_dir)
    (gradient if args.what == "gradient" else train)(args, train_set)


if __name__ == "__main__":
    main()
