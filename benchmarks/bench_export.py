"""Exported models against torch eager, in one process on the same inputs: speed, and accuracy after int8.

    python benchmarks/bench_export.py speed [--runs /work/runs-weights] [--threads 2] [--clock cpu] [--data-dir ...]
    python benchmarks/bench_export.py accuracy [--runs /work/runs-weights] [--data-dir /work/alldata] [--recipes ...]
    python benchmarks/bench_export.py sampling [--runs /work/runs-weights] [--threads 1] [--rounds 3]
    python benchmarks/bench_export.py profile --recipes digit_scenes_mdlstm --batch-size 32 --threads 1 --rounds 5

``speed`` times one forward pass of ``crnn`` small (digit_strings_crnn), ``row_bilstm``
(mnist_row_bilstm) and ``mdlstm_seg`` (digit_scenes_mdlstm) at batch 1 and 32: torch eager
(``torch.inference_mode``), onnxruntime on the float32 export, onnxruntime on the int8 export.
Each model is the recipe's trained ``<runs>/<recipe>/best.pt`` when present, else the shipped weights
of that name (``rnnvision list-weights``), else a freshly initialised model of the recipe's size (the
``source`` column says which). torch and onnxruntime
use the same number of intra-op threads (``--threads``). With ``--data-dir`` a trained recipe also
gets the int8 export whose convolutions are quantized statically, calibrated on its first 64 training images.

``accuracy`` evaluates the recipes of ``ACCURACY_RECIPES`` (their trained checkpoints, else their
shipped weights, as for ``speed``) on their test split (or its first ``--limit`` items) four ways: torch, onnxruntime float32, onnxruntime int8,
and onnxruntime int8 with the convolutions quantized statically (calibrated on 64 training images).
``sampling`` samples 16 images with the PixelRNN recipes (``SAMPLING_RECIPES``, trained or freshly
initialised as for ``speed``): torch's incremental stepping against onnxruntime running the
exported sampling graphs (:mod:`rnnvision.export.sampling`), interleaved rounds.
``profile`` says where the time of one forward pass of the ``speed`` recipes goes, at ``--batch-size``:
onnxruntime's own per-operator profile (``SessionOptions.enable_profiling``; the nodes inside a
``Scan`` body are listed as well as the ``Scan`` itself; the profile cannot start later than the
session, so it covers the two warm-up runs too) against torch's profiler for eager over ``--rounds``
runs after two.
All print markdown tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.utils.data import Subset

from rnnvision.data import build_dataset
from rnnvision.engine import evaluate, load_model
from rnnvision.export import export_model
from rnnvision.export.calibration import calibration_batches
from rnnvision.export.onnx import load_onnx
from rnnvision.models import create_model
from rnnvision.tasks import make_task
from rnnvision.weights import get_weights, list_weights, resolve

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# recipe -> (model options the data would fill in, input shape (C, H, W), task)
SPEED_RECIPES = {
    "digit_strings_crnn": ({"num_classes": 11, "img_height": 32}, (1, 32, 160), "recognize"),
    "mnist_row_bilstm": ({"num_classes": 10, "img_size": 28}, (1, 28, 28), "classify"),
    "digit_scenes_mdlstm": ({"num_classes": 11}, (1, 48, 48), "segment"),
}
SAMPLING_RECIPES = {
    "binarized_mnist_pixelrnn_diag": ({"in_chans": 1, "levels": 2, "img_size": 28}, (1, 28, 28), "generate"),
    "binarized_mnist_pixelrnn_row": ({"in_chans": 1, "levels": 2, "img_size": 28}, (1, 28, 28), "generate"),
}
ACCURACY_RECIPES = (
    "mnist_row_lstm",
    "mnist_row_bilstm",
    "fashion_mnist_row_bilstm",
    "digit_strings_crnn",
    "digit_scenes_mdlstm",
)
METRICS = {"classify": "accuracy", "recognize": "word_accuracy", "segment": "mean_iou"}


def recipe_model(recipe: str, runs: Path) -> tuple[nn.Module, dict, str]:
    """(model, state, source): the trained checkpoint when present, else the shipped weights of the recipe's
    name, else the recipe's model freshly initialised."""
    checkpoint = runs / recipe / "best.pt"
    if checkpoint.is_file():
        model, state = load_model(checkpoint)
        return model, state, f"trained ({checkpoint})"
    if recipe in list_weights():
        model, state = resolve(recipe)
        return model, state, f"shipped weights ({recipe}, {get_weights(recipe).dtype})"
    options, _, task = {**SPEED_RECIPES, **SAMPLING_RECIPES}[recipe]
    section = dict(yaml.safe_load((CONFIGS / f"{recipe}.yaml").read_text())["model"])
    torch.manual_seed(0)
    model = create_model(section.pop("name"), **{**options, **section}).eval()
    meta = {
        "name": recipe,
        "task": task,
        "in_chans": 1,
        "img_size": None,
        "class_names": [str(k) for k in range(11)],
        "charset": "0123456789",
    }
    return model, {"task": task, "meta": meta}, "freshly initialised"


def recipe_calibration(state: dict, data_dir: str | None) -> list[dict] | None:
    """64 training images of the recipe (None for a freshly initialised model, which has no data, or
    without a data root)."""
    if "config" not in state or data_dir is None:
        return None
    return calibration_batches(state, data_dir, items=64)


def exports(
    model: nn.Module, state: dict, folder: Path, threads: int, calibration: list[dict] | None
) -> dict[str, nn.Module]:
    """{"onnxruntime fp32": ..., "onnxruntime int8": ...[, "onnxruntime int8 + static conv": ...]} run by
    onnxruntime with ``threads`` threads; the last when ``calibration`` is given."""
    variants = {"fp32": (None, None), "int8": ("int8", None)}
    if calibration is not None:
        variants["int8 + static conv"] = ("int8", calibration)
    runners = {}
    for name, (quantize, batches) in variants.items():
        path = export_model(
            model,
            state,
            out=folder / f"{id(model)}-{name.replace(' ', '')}.onnx",
            quantize=quantize,
            calibration=batches,
        )
        runners[f"onnxruntime {name}"] = load_onnx(path, threads=threads)[0]
    return runners


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def interleaved_times(calls: list, *, rounds: int, warmup: int = 2, clock: str = "wall") -> list[list[float]]:
    """Seconds of each call in each round; the calls alternate within a round, so a machine whose load
    changes (other work beside) slows all of them alike rather than whichever ran during a busy spell.
    ``clock="cpu"`` counts this process's CPU seconds instead of wall seconds: on cores shared with
    other work it leaves out the time spent waiting for a core (with 1 thread, what the kernels took)."""
    now = CLOCKS[clock]
    for _ in range(warmup):
        for call in calls:
            call()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for k, call in enumerate(calls):
            started = now()
            call()
            times[k].append(now() - started)
    return times


def speed(args: argparse.Namespace) -> None:
    print(
        f"threads: {args.threads} (torch.set_num_threads and onnxruntime intra_op_num_threads); {args.clock} clock; {args.rounds} "
        "interleaved rounds; ms as median (fastest round); speed-ups as the median of the per-round ratios "
        "(ratio of the fastest rounds); int8 + static conv: calibrated on 64 training images"
    )
    print(
        "| model | source | batch | torch eager ms | ORT fp32 ms | ORT int8 ms | ORT int8 + static conv ms | "
        "ORT fp32 vs eager | int8 vs fp32 | int8 + static conv vs fp32 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in SPEED_RECIPES:
            if args.recipes and recipe not in args.recipes:
                continue
            model, state, source = recipe_model(recipe, Path(args.runs))
            runners = exports(model, state, Path(tmp), args.threads, recipe_calibration(state, args.data_dir))
            for batch in (1, 32):
                inputs = speed_inputs(recipe, batch)

                def eager() -> None:
                    with torch.inference_mode():
                        model(*inputs)

                calls = [eager, *(lambda r=r: r(*inputs) for r in runners.values())]
                rounds = args.rounds if batch == 1 else max(3, args.rounds // 4)
                eager_t, fp32_t, *int8_ts = interleaved_times(calls, rounds=rounds, clock=args.clock)
                ms = [f"{1e3 * statistics.median(t):.1f} ({1e3 * min(t):.1f})" for t in (eager_t, fp32_t, *int8_ts)]
                gains = [_gain(eager_t, fp32_t), *(_gain(fp32_t, t) for t in int8_ts)]
                cells = ms[:3] + [ms[3] if len(ms) > 3 else "-"] + gains[:2] + [gains[2] if len(gains) > 2 else "-"]
                print(f"| {recipe} ({model.model_name}) | {source} | {batch} | {' | '.join(cells)} |", flush=True)


def speed_inputs(recipe: str, batch: int) -> tuple[torch.Tensor, ...]:
    """The fixed random inputs a ``speed`` recipe is timed on: images, and widths for a recognizer."""
    _, shape, task = SPEED_RECIPES[recipe]
    images = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(0))
    return (images, torch.full((batch,), shape[-1])) if task == "recognize" else (images,)


def profile(args: argparse.Namespace) -> None:
    import onnxruntime as ort
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    runs = args.rounds
    print(
        f"threads: {args.threads}; batch {args.batch_size}; ms per run (onnxruntime: over {2 + runs} runs, torch: {runs})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in SPEED_RECIPES:
            if args.recipes and recipe not in args.recipes:
                continue
            model, state, source = recipe_model(recipe, Path(args.runs))
            inputs = speed_inputs(recipe, args.batch_size)
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
            options.enable_profiling, options.profile_file_prefix = True, str(Path(tmp) / recipe)
            session = ort.InferenceSession(
                str(export_model(model, state, out=Path(tmp) / f"{recipe}.onnx")),
                options,
                providers=["CPUExecutionProvider"],
            )
            feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)}
            for _ in range(2 + runs):
                session.run(None, feed)
            per_op: dict[str, list[float]] = {}  # op type -> [microseconds, calls] over all 2 + runs runs
            for event in json.loads(Path(session.end_profiling()).read_text()):
                if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                    entry = per_op.setdefault(event["args"]["op_name"], [0.0, 0])
                    entry[0], entry[1] = entry[0] + event["dur"], entry[1] + 1
            print(f"\n{recipe} ({model.model_name}, {source})\n")
            print("| onnxruntime operator | ms per run | calls per run |")
            print("|---|---:|---:|")
            for op, (micros, calls) in sorted(per_op.items(), key=lambda item: -item[1][0])[:12]:
                print(f"| {op} | {micros / 1e3 / (2 + runs):.2f} | {calls / (2 + runs):.0f} |")
            with torch.inference_mode():
                for _ in range(2):
                    model(*inputs)
                with torch_profile(activities=[ProfilerActivity.CPU]) as trace:
                    for _ in range(runs):
                        model(*inputs)
            print("\n| torch operator (self time) | ms per run | calls per run |")
            print("|---|---:|---:|")
            for event in sorted(trace.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]:
                print(f"| {event.key} | {event.self_cpu_time_total / 1e3 / runs:.2f} | {event.count / runs:.0f} |")


def _gain(before: list[float], after: list[float]) -> str:
    """Median of the per-round ratios (ratio of the fastest rounds)."""
    median = statistics.median(b / a for b, a in zip(before, after))
    return f"{median:.2f}x ({min(before) / min(after):.2f}x)"


def accuracy(args: argparse.Namespace) -> None:
    print(
        "| recipe | metric | torch | ORT fp32 | ORT int8 | int8 change (points) | ORT int8 + static conv | its change "
        "(points) | eval seconds torch / fp32 / int8 / int8 + static conv |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes or ACCURACY_RECIPES:
            model, state, source = recipe_model(recipe, Path(args.runs))
            if "config" not in state:  # freshly initialised: no data to score it on
                print(f"| {recipe} | no checkpoint at {Path(args.runs) / recipe} nor shipped weights |", flush=True)
                continue
            options = dict(state["config"]["data"])
            data = build_dataset(options.pop("name"), split="test", root=args.data_dir, **options)
            if args.limit:
                data = Subset(data, range(min(args.limit, len(data))))
            task = make_task(state["task"], state["meta"])
            key = METRICS[state["task"]]
            scores, seconds = [], []
            calibration = recipe_calibration(state, args.data_dir)
            for runner in (model, *exports(model, state, Path(tmp), args.threads, calibration).values()):
                started = time.perf_counter()
                metrics, _ = evaluate(runner, data, task, batch_size=args.batch_size, device=cpu)
                seconds.append(time.perf_counter() - started)
                scores.append(100 * metrics[key])
            static = f"{scores[3]:.2f} | {scores[3] - scores[0]:+.2f}" if len(scores) > 3 else "- | -"
            print(
                f"| {recipe} ({source}) | {key} (%) | {scores[0]:.2f} | {scores[1]:.2f} | {scores[2]:.2f} | "
                f"{scores[2] - scores[0]:+.2f} | {static} | {' / '.join(f'{s:.0f}' for s in seconds)} |",
                flush=True,
            )


def sampling(args: argparse.Namespace) -> None:
    from rnnvision.export.sampling import OnnxSampler

    print(f"threads: {args.threads}; 16 samples; {args.rounds} interleaved rounds; s as median (fastest round)")
    print("| recipe | source | torch incremental s | ORT sampling graphs s | ORT vs torch |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in SAMPLING_RECIPES:
            model, state, source = recipe_model(recipe, Path(args.runs))
            sampler = OnnxSampler(export_model(model, state, out=Path(tmp) / f"{recipe}.onnx"), threads=args.threads)
            calls = [lambda: model.sample(16, method="incremental"), lambda: sampler.sample(16)]
            torch_t, ort_t = interleaved_times(calls, rounds=args.rounds, warmup=1)
            gain = statistics.median(t / o for t, o in zip(torch_t, ort_t)), min(torch_t) / min(ort_t)
            print(
                f"| {recipe} | {source} | {statistics.median(torch_t):.2f} ({min(torch_t):.2f}) | "
                f"{statistics.median(ort_t):.2f} ({min(ort_t):.2f}) | {gain[0]:.2f}x ({gain[1]:.2f}x) |",
                flush=True,
            )


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("speed", "accuracy", "sampling", "profile"))
    parser.add_argument("--runs", default="/work/runs-weights", help="folder of <recipe>/best.pt (read only)")
    parser.add_argument("--data-dir", default=None, help="data root for the test splits and the calibration images")
    parser.add_argument(
        "--recipes",
        nargs="+",
        choices=sorted({*ACCURACY_RECIPES, *SPEED_RECIPES}),
        help="accuracy, speed, profile: only these recipes",
    )
    parser.add_argument("--limit", type=int, default=0, help="accuracy: only the first N test items (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of torch and onnxruntime")
    parser.add_argument(
        "--batch-size", type=int, default=256, help="evaluation batch size (accuracy); the profiled batch (profile)"
    )
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="speed: wall seconds, or this process's CPU seconds (on a loaded machine)",
    )
    parser.add_argument(
        "--rounds", type=int, default=40, help="interleaved timing rounds at batch 1 (a quarter at 32); profiled runs"
    )
    return parser


if __name__ == "__main__":
    arguments = get_args_parser().parse_args()
    torch.set_num_threads(arguments.threads)
    {"speed": speed, "accuracy": accuracy, "sampling": sampling, "profile": profile}[arguments.what](arguments)
