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
from pathlib import Path

from rnnvision.bench.recognition import bench_crnn_latency, checkpoint_test_split, decoding_accuracy, reading_errors
from rnnvision.bench.timing import machine_summary, write_tables
from rnnvision.engine import load_model
from rnnvision.files import atomic_write_text


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
    name, test = checkpoint_test_split(state, data_dir=args.data_dir)
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
    measured = decoding_accuracy(
        model, state["meta"]["charset"], test, beam_width=args.beam_width, batch_size=args.batch_size
    )
    for label, (metrics, seconds) in measured.items():
        lines.append(
            f"| {label} | {100 * metrics['word_accuracy']:.2f} % | {100 * metrics['sequence_accuracy']:.2f} % | "
            f"{100 * metrics['cer']:.2f} % | {100 * metrics['wer']:.2f} % | {metrics['n']} | {seconds:.0f} |"
        )
    out = Path(args.out)
    atomic_write_text(out / f"recognition_accuracy_{name}.md", "\n".join(lines) + "\n")
    results = {label: metrics for label, (metrics, _) in measured.items()}
    atomic_write_text(out / f"recognition_accuracy_{name}.json", json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


def errors(args: argparse.Namespace) -> None:
    model, state = load_model(args.checkpoint)
    name, test = checkpoint_test_split(state, data_dir=args.data_dir)
    found = reading_errors(model, state["meta"]["charset"], test, limit=args.limit)
    kinds, wrong, total = found.kinds, found.wrong, found.total
    lines = [
        f"### Wrong readings of `{args.checkpoint}` on the first {found.count} {name} test items (greedy)\n",
        f"Command: `python benchmarks/bench_recognition.py errors {args.checkpoint}"
        + (f" --data-dir {args.data_dir}" if args.data_dir else "")
        + f" --limit {args.limit}`\n",
        f"{sum(wrong.values())} wrong: {kinds['misread']} with the length right (characters misread), "
        f"{kinds['lost']} with characters lost, {kinds['gained']} with characters gained.\n",
        "| text length | wrong / items |",
        "|---:|---:|",
        *(f"| {n} | {wrong[n]} / {total[n]} |" for n in sorted(total)),
        "",
        "First wrong readings (truth -> read): " + ", ".join(found.examples[:20]),
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
    command = "python benchmarks/bench_recognition.py latency " + (
        f"--checkpoint {args.checkpoint}" if args.checkpoint else "--sizes " + " ".join(args.sizes)
    )
    title = "CRNN latency per 32x100 word image (greedy decoding)"
    print(write_tables(rows, args.out, "recognition_latency", title=title, command=command))
    for row in rows:
        print(f"{row.name}: {row.note}")


if __name__ == "__main__":
    arguments = get_args_parser().parse_args()
    {"accuracy": accuracy, "latency": latency, "errors": errors}[arguments.what](arguments)
