"""The long-range lab: where each recurrent cell stops remembering (adding and copy-memory, T = 100 ... 1000).

Every cell gets about the same number of parameters (``--params``; the hidden size is the one
that comes closest), the same step budget (``--steps`` AdamW steps of ``--batch`` fresh sequences,
lr ``--lr`` with 5 % linear warm-up and cosine decay, gradient clipping at 1), the same stream of
training sequences (one generator per task and T, seeded with ``--seed``) and the same test set
(``--eval`` sequences of the dataset's test split). Cells: Elman RNN, LSTM (torch's gate biases
and chrono), GRU, minGRU, IndRNN and LRU; the first four as one recurrent layer, IndRNN as two
stacked layers, minGRU and LRU as two residual blocks with a position-wise MLP / GLU (how their
papers stack them; one LRU alone is linear and cannot multiply a value by its marker).

Scores: the test MSE of ``adding`` (remembering nothing scores 1/6 ~ 0.167) and the test accuracy
on the 10 recalled symbols of ``copy-memory`` (remembering nothing scores 1/8); the time per
training step is the wall time of the training loop over the steps. The sweep goes length by
length (both tasks, every cell), so a sweep cut short by ``--minutes`` has every cell at the
lengths it reached. Rows and the plot (``--plot``: score against T, one line per cell) are
written after every run; ``--resume`` keeps every row of ``--out``.csv with the same steps and
batch (whatever its task, T and cell) and runs what the selection adds.

    OMP_NUM_THREADS=1 python benchmarks/long_range.py --steps 300 --batch 16 --minutes 25
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from rnnvision.bench.timing import machine_summary
from rnnvision.data import build_dataset
from rnnvision.data.long_range import MEMORY, adding_inputs, copy_memory_inputs, draw_adding, draw_copy_symbols
from rnnvision.engine.evaluation import evaluate
from rnnvision.engine.trainer import count_parameters, lr_factor
from rnnvision.files import atomic_write_text
from rnnvision.models import create_model
from rnnvision.tasks import make_task

# label -> (cell, gate_init, layers)
CELLS: dict[str, tuple[str, str, int]] = {
    "rnn": ("rnn", "default", 1),
    "lstm": ("lstm", "default", 1),
    "lstm-chrono": ("lstm", "chrono", 1),
    "gru": ("gru", "default", 1),
    "mingru": ("mingru", "default", 2),
    "indrnn": ("indrnn", "default", 2),
    "lru": ("lru", "default", 2),
}
# task -> (dataset, model, the dataset's length option, metric, score of a network that remembers nothing)
TASKS = {
    "adding": ("adding", "sequence_regressor", "length", "mse", 1 / 6),
    "copy-memory": ("copy-memory", "sequence_tagger", "delay", "accuracy", 1 / 8),
}


@dataclass
class Row:
    task: str
    T: int
    cell: str
    hidden: int
    params: int
    steps: int
    batch: int
    metric: str
    score: float
    baseline: float
    final_train_loss: float
    ms_per_step: float
    train_seconds: float


def build(task: str, cell: str, hidden: int, length: int) -> torch.nn.Module:
    _, model_name, _, _, _ = TASKS[task]
    kind, gate_init, layers = CELLS[cell]
    seq_len = length if task == "adding" else length + 2 * MEMORY
    return create_model(
        model_name, cell=kind, gate_init=gate_init, hidden_size=hidden, num_layers=layers, seq_len=seq_len
    )


def matching_hidden(task: str, cell: str, target: int) -> int:
    """The hidden size whose model has the parameter count closest to ``target`` (the count grows with it)."""
    low, high = 1, 1024
    while low < high:  # smallest hidden size with at least ``target`` parameters
        mid = (low + high) // 2
        if count_parameters(build(task, cell, mid, 100)) < target:
            low = mid + 1
        else:
            high = mid
    candidates = [h for h in (low - 1, low) if h >= 1]
    return min(candidates, key=lambda h: abs(count_parameters(build(task, cell, h, 100)) - target))


def batch_of(task: str, n: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """``n`` fresh training sequences, drawn as the datasets draw them."""
    if task == "adding":
        return adding_inputs(*draw_adding(n, length, generator))
    return copy_memory_inputs(draw_copy_symbols(n, generator), length)


def run(task: str, cell: str, hidden: int, length: int, args: argparse.Namespace) -> Row:
    dataset_name, _, option, metric, baseline = TASKS[task]
    torch.manual_seed(args.seed)
    model = build(task, cell, hidden, length)
    test = build_dataset(dataset_name, split="test", seed=args.seed, test_size=args.eval, **{option: length})
    objective = make_task(test.info.task, {})
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup_steps=warmup, total_steps=args.steps, min_ratio=0.01)
    )
    generator = torch.Generator().manual_seed(args.seed * 100_003 + length)  # the same stream for every cell
    losses = []
    model.train()
    started = time.perf_counter()
    for _ in range(args.steps):
        loss = objective.training_loss(model, batch_of(task, args.batch, length, generator))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - started
    metrics, _ = evaluate(model, test, objective, batch_size=args.eval, device=torch.device("cpu"))
    tail = losses[-max(1, args.steps // 10) :]
    return Row(
        task=task,
        T=length,
        cell=cell,
        hidden=hidden,
        params=count_parameters(model),
        steps=args.steps,
        batch=args.batch,
        metric=metric,
        score=metrics[metric],
        baseline=baseline,
        final_train_loss=sum(tail) / len(tail),
        ms_per_step=1e3 * seconds / args.steps,
        train_seconds=seconds,
    )


def read_rows(path: Path) -> list[Row]:
    """The rows of an earlier sweep's CSV (none if it does not exist)."""
    if not path.exists():
        return []
    types = {f.name: f.type for f in fields(Row)}
    convert = {"int": int, "float": float, "str": str}
    with open(path, newline="") as f:
        return [Row(**{k: convert[types[k]](v) for k, v in line.items()}) for line in csv.DictReader(f)]


def write_rows(rows: list[Row], out: Path, command: str, *, resumed: bool) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(Row)])
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    atomic_write_text(out.with_suffix(".csv"), buffer.getvalue())
    lines = [
        "### Long-range lab: adding (test MSE, lower is better) and copy-memory (recall accuracy)\n",
        f"Command{' (the last of a resumed sweep; it kept the rows it did not run)' if resumed else ''}: `{command}`  ",
        f"Machine: {machine_summary()}\n",
        "| task | T | cell | hidden | params | steps x batch | score | remembering nothing | final train loss | ms / step |",
        "|---|---:|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.task} | {r.T} | {r.cell} | {r.hidden} | {r.params:,} | {r.steps} x {r.batch} | "
            f"{r.metric} {r.score:.4f} | {r.baseline:.4f} | {r.final_train_loss:.4f} | {r.ms_per_step:.1f} |"
        )
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnvision.viz.plots import save_figure

    tasks = [t for t in TASKS if any(r.task == t for r in rows)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        mine = [r for r in rows if r.task == task]
        for cell in CELLS:
            points = sorted((r.T, r.score) for r in mine if r.cell == cell)
            if points:
                ax.plot(*zip(*points), marker="o", label=cell)
        ax.axhline(mine[0].baseline, color="gray", ls="--", lw=1, label="remembers nothing")
        ax.set_xscale("log")
        lengths = sorted({r.T for r in mine})
        ax.set_xticks(lengths, [str(t) for t in lengths])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        params = round(sum(r.params for r in mine) / len(mine), -3)
        ax.set(
            xlabel="T (sequence length / delay)",
            ylabel=f"test {mine[0].metric}",
            title=f"{task}: {mine[0].steps} steps x batch {mine[0].batch}, ~{params:,.0f} parameters per cell",
        )
        if mine[0].metric == "mse":
            ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _ordered(rows: dict[tuple[str, int, str], Row]) -> list[Row]:
    """Rows by T, then task, then cell, in the order of TASKS and CELLS."""
    return sorted(rows.values(), key=lambda r: (r.T, list(TASKS).index(r.task), list(CELLS).index(r.cell)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--lengths", nargs="+", type=int, default=[100, 250, 500, 1000])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--params", type=int, default=10_000, help="parameter count every cell is matched to")
    parser.add_argument("--eval", type=int, default=256, help="test sequences per task and T")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/long_range"))
    parser.add_argument("--plot", type=Path, default=Path("docs/images/long_range.png"))
    parser.add_argument("--minutes", type=float, default=25.0, help="start no new run after this many minutes")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows of --out.csv with the same steps and batch; run what is missing",
    )
    args = parser.parse_args(argv)
    command = "python benchmarks/long_range.py " + " ".join(argv if argv is not None else sys.argv[1:])
    done = {
        (r.task, r.T, r.cell): r
        for r in read_rows(args.out.with_suffix(".csv"))
        if args.resume and (r.steps, r.batch) == (args.steps, args.batch)
    }
    hidden = {(task, cell): matching_hidden(task, cell, args.params) for task in args.tasks for cell in args.cells}
    started, skipped = time.perf_counter(), []
    for length in args.lengths:
        for task in args.tasks:
            for cell in args.cells:
                if (task, length, cell) in done:
                    continue
                if time.perf_counter() - started > 60 * args.minutes:
                    skipped.append(f"{task} T={length} {cell}")
                    continue
                row = done[task, length, cell] = run(task, cell, hidden[task, cell], length, args)
                rows = _ordered(done)
                write_rows(rows, args.out, command, resumed=args.resume)
                plot(rows, args.plot)
                print(
                    f"{task} T={length} {cell} (hidden {row.hidden}, {row.params:,} params): {row.metric} "
                    f"{row.score:.4f}, train loss {row.final_train_loss:.4f}, {row.ms_per_step:.1f} ms/step",
                    flush=True,
                )
    if done:  # also redraws the plot of a finished sweep (--resume with nothing left to run)
        plot(_ordered(done), args.plot)
    if skipped:
        print(f"not run (past --minutes {args.minutes}): {', '.join(skipped)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
