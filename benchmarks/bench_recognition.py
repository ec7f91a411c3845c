"""Text recognition: test-set accuracy of a trained checkpoint, and CRNN inference latency.

    python benchmarks/bench_recognition.py accuracy CKPT [--data-dir ../shared/data] [--beam-width 10]
    python benchmarks/bench_recognition.py latency [--sizes small medium base] [--checkpoint CKPT]
    python benchmarks/bench_recognition.py errors CKPT [--data-dir ../shared/data] [--limit 3000]

``accuracy`` scores the checkpoint on the test split of the data it was trained on (all of it:
3,000 IIIT5K words, or the 10,000 digit lines of the recipe), lexicon-free, with greedy
decoding and, with ``--beam-width``, prefix beam search too. ``latency`` times 32x100 word
images through CRNN and greedy decoding at batch 1 and 32 (per-image ratios in one process).
``errors`` sorts the wrong greedy readings of the first ``--limit`` test items by kind (a
character misread with the length right, characters lost, characters gained) and by text length.
Results: ``recognition_<what>.md`` / ``.csv`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import torch

from rnnvision.bench import write_csv, write_markdown
from rnnvision.bench.recognition import bench_crnn_latency
from rnnvision.bench.timing import machine_summary
from rnnvision.data import build_dataset
from rnnvision.engine import evaluate, load_model
from rnnvision.files import atomic_write_text
from rnnvision.tasks import RecognitionTask


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    accuracy = sub.add_parser("accuracy", help="score a checkpoint on its test split")
    accuracy.add_argument("checkpoint")
    accuracy.add_argument("--data-dir", default=None)
    accuracy.add_argument("--beam-width", type=int, default=0, help="also decode with prefix beam search")
    accuracy.add_argument("--batch-size", type=int, default=64)
    latency = sub.add_parser("latency", help="CRNN inference time per word image")
    latency.add_argument("--sizes", nargs="+", default=["small", "medium", "base"])
    latency.add_argument("--checkpoint", help="time this trained model instead of fresh ones")
    errors = sub.add_parser("errors", help="the wrong readings of a checkpoint, by kind and text length")
    errors.add_argument("checkpoint")
    errors.add_argument("--data-dir", default=None)
    errors.add_argument("--limit", type=int, default=3000)
    for p in (accuracy, latency, errors):
        p.add_argument("--out", default="benchmarks/results")
    return parser


def accuracy(args: argparse.Namespace) -> None:
    model, state = load_model(args.checkpoint)
    data_options = dict(state["config"]["data"])
    name = data_options.pop("name")
    test = build_dataset(name, split="test", root=args.data_dir, **data_options)
    command = f"python benchmarks/bench_recognition.py accuracy {args.checkpoint}"
    command += (f" --data-dir {args.data_dir}" if args.data_dir else "") + (
        f" --beam-width {args.beam_width}" if args.beam_width else ""
    )
    lines = [
        f"### {name} test set, lexicon-free ({len(test)} images)\n",
        f"Checkpoint: `{args.checkpoint}` ({state['model_name']}, {state['num_params']:,} parameters)  ",
        f"Command: `{command}`  ",
        f"Machine: {machine_summary()}\n",
        "| decoding | word accuracy | sequence accuracy | CER | WER | n | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    results = {}
    for label, beam in [("greedy", 0)] + ([(f"beam {args.beam_width}", args.beam_width)] if args.beam_width else []):
        task = RecognitionTask(state["meta"]["charset"], beam_width=beam)
        started = time.perf_counter()
        metrics, _ = evaluate(model, test, task, batch_size=args.batch_size, device=torch.device("cpu"))
        seconds = time.perf_counter() - started
        results[label] = metrics
        lines.append(
            f"| {label} | {100 * metrics['word_accuracy']:.2f} % | {100 * metrics['sequence_accuracy']:.2f} % | "
            f"{100 * metrics['cer']:.2f} % | {100 * metrics['wer']:.2f} % | {metrics['n']} | {seconds:.0f} |"
        )
    out = Path(args.out)
    atomic_write_text(out / f"recognition_accuracy_{name}.md", "\n".join(lines) + "\n")
    atomic_write_text(out / f"recognition_accuracy_{name}.json", json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


def errors(args: argparse.Namespace) -> None:
    model, state = load_model(args.checkpoint)
    data_options = dict(state["config"]["data"])
    name = data_options.pop("name")
    test = build_dataset(name, split="test", root=args.data_dir, **data_options)
    task = RecognitionTask(state["meta"]["charset"])
    kinds, wrong, total, examples = Counter(), Counter(), Counter(), []
    count = min(args.limit, len(test))
    with torch.no_grad():
        for start in range(0, count, 64):
            batch = task.collate([test[i] for i in range(start, min(count, start + 64))])
            for truth, read in zip(batch["texts"], task.decode(*task.log_probs(model, batch))):  # width-sorted
                total[len(truth)] += 1
                if read != truth:
                    wrong[len(truth)] += 1
                    kinds["misread" if len(read) == len(truth) else "lost" if len(read) < len(truth) else "gained"] += 1
                    examples.append(f"{truth} -> {read}")
    lines = [
        f"### Wrong readings of `{args.checkpoint}` on the first {count} {name} test items (greedy)\n",
        f"Command: `python benchmarks/bench_recognition.py errors {args.checkpoint}"
        + (f" --data-dir {args.data_dir}" if args.data_dir else "") + f" --limit {args.limit}`\n",
        f"{sum(wrong.values())} wrong: {kinds['misread']} with the length right (characters misread), "
        f"{kinds['lost']} with characters lost, {kinds['gained']} with characters gained.\n",
        "| text length | wrong / items |",
        "|---:|---:|",
        *(f"| {n} | {wrong[n]} / {total[n]} |" for n in sorted(total)),
        "",
        "First wrong readings (truth -> read): " + ", ".join(examples[:20]),
    ]
    atomic_write_text(Path(args.out) / f"recognition_errors_{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def latency(args: argparse.Namespace) -> None:
    rows = []
    if args.checkpoint:
        model, state = load_model(args.checkpoint)
        rows += bench_crnn_latency(size=state["config"]["model"].get("size", "?"), model=model, height=model.img_height)
    else:
        for size in args.sizes:
            rows += bench_crnn_latency(size=size)
    out = Path(args.out)
    command = "python benchmarks/bench_recognition.py latency " + (
        f"--checkpoint {args.checkpoint}" if args.checkpoint else "--sizes " + " ".join(args.sizes)
    )
    write_csv(rows, out / "recognition_latency.csv")
    title = "CRNN latency per 32x100 word image (greedy decoding)"
    write_markdown(rows, out / "recognition_latency.md", title=title, command=command)
    print((out / "recognition_latency.md").read_text())
    for row in rows:
        print(f"{row.name}: {row.note}")


if __name__ == "__main__":
    arguments = get_args_parser().parse_args()
    {"accuracy": accuracy, "latency": latency, "errors": errors}[arguments.what](arguments)
