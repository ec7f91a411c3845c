"""A right-padded batch with lengths on a CPU: packed sequence vs the padded path (``final_state=False``).

    python benchmarks/bench_padded_lengths.py [--batch 16] [--rounds 3]

One process. First checks that both paths give the same outputs and input gradients, then times,
alternating the two paths ``--rounds`` times on the same inputs: (1) a 2-layer bidirectional LSTM,
input 128, hidden 128, over 16 sequences of 10-60 steps, forward + backward; (2) a whole `crnn`
small training step (conv stack, BiLSTM, CTC loss, AdamW) on a batch of digit-string lines (the
bundled sklearn digits, so no data files are needed). Prints a markdown table with the median of
the rounds.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch

from rnnvision.bench.timing import interleaved_times, machine_summary
from rnnvision.data import build_dataset
from rnnvision.data.base import dataset_meta
from rnnvision.layers import LSTM
from rnnvision.models import create_model
from rnnvision.tasks import make_task


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    return parser


def lstm_calls(batch: int) -> dict[str, Callable[[], object]]:
    """fwd+bwd of a 2-layer BiLSTM (128 -> 128) on a padded batch, packed and padded; checked equal first."""
    torch.manual_seed(0)
    layer = LSTM(128, 128, 2, bidirectional=True)
    x = torch.randn(batch, 60, 128)
    lengths = torch.randint(10, 61, (batch,))

    def step(final_state: bool) -> tuple[torch.Tensor, torch.Tensor]:
        xi = x.detach().requires_grad_(True)
        out = layer(xi, lengths=lengths, final_state=final_state)[0]
        out.square().sum().backward()
        return out.detach(), xi.grad

    (out_p, grad_p), (out_q, grad_q) = step(True), step(False)
    torch.testing.assert_close(out_q, out_p, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grad_q, grad_p, atol=1e-4, rtol=1e-4)
    return {"packed": lambda: step(True), "padded": lambda: step(False)}


def crnn_calls(batch: int) -> dict[str, Callable[[], object]]:
    """One `crnn` small training step on digit-string lines, through each path of its BiLSTM."""
    torch.manual_seed(0)
    data = build_dataset("digit-strings", split="test", source="sklearn", test_size=batch)
    task = make_task("recognize", dataset_meta(data.info))
    model = create_model("crnn", variant="small", num_classes=len(data.info.charset) + 1, in_chans=1, img_height=32)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    lines = task.collate([data[i] for i in range(batch)])
    original = model.rnn.forward

    def packed(x, *args, **kwargs):  # what the CRNN ran before it asked for final_state=False
        return original(x, *args, **{**kwargs, "final_state": True})

    def step(pack: bool) -> None:
        if pack:
            model.rnn.forward = packed
        try:
            loss = task.training_loss(model, lines)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        finally:
            if pack:
                del model.rnn.forward

    return {"packed": lambda: step(True), "padded": lambda: step(False)}


def main(args: argparse.Namespace) -> None:
    print(f"Command: `python benchmarks/bench_padded_lengths.py --batch {args.batch} --rounds {args.rounds}`  ")
    print(f"Machine: {machine_summary()}\n")
    print("| what | packed ms | padded ms | packed / padded |\n|---|---:|---:|---:|")
    for label, calls in (
        ("2-layer BiLSTM 128, fwd+bwd", lstm_calls(args.batch)),
        ("`crnn` small training step", crnn_calls(args.batch)),
    ):
        seconds = interleaved_times(calls, rounds=args.rounds)
        packed, padded = (statistics.median(seconds[n]) for n in ("packed", "padded"))
        print(f"| {label}, batch {args.batch} | {packed * 1e3:.1f} | {padded * 1e3:.1f} | {packed / padded:.2f}x |")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
