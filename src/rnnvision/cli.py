"""``rnnvision`` command line: a thin layer that parses arguments and calls the Python API.

Bad input (missing files, unknown names, wrong types) prints one line on stderr and exits with
status 2; nothing the user saved is overwritten half-way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rnnvision import __version__
from rnnvision.errors import UserError


def _cmd_demo(args: argparse.Namespace) -> int:
    from rnnvision.demo import run_demo

    result = run_demo(out_dir=args.out, quiet=args.quiet)
    print(f"test accuracy {result.test_metrics['accuracy']:.4f} on {result.test_metrics['n']} digits")
    print(f"wrote {result.out_dir}/: metrics.jsonl, curves.png, confusion.png, predictions.png, gates.png, best.pt")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from rnnvision.config import load_config
    from rnnvision.engine import train

    config = load_config(args.config, args.set or [], stage=args.stage)
    if args.stage > 1 and not config.train.init_from and not args.resume:
        raise UserError(
            f"stage {args.stage} of {args.config} continues from stage {args.stage - 1}: add "
            f"--set train.init_from=RUN/best.pt (benchmarks/train_stages.py runs the stages one after another)"
        )
    if args.out:
        out = Path(args.out)
    elif args.resume:
        out = Path(args.resume).parent
    else:
        out = Path("runs") / (Path(args.config).stem + (f"_stage{args.stage}" if args.stage > 1 else ""))
    result = train(
        config, out_dir=out, data_dir=args.data_dir, download=args.download, resume=args.resume, quiet=args.quiet
    )
    if _is_main_process():
        shown = {k: v for k, v in result.test_metrics.items() if isinstance(v, (int, float))}
        print(f"best epoch {result.best_epoch}; test " + "  ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
        print(f"run directory: {result.out_dir}  (training {result.train_seconds:.0f} s)")
    return 0


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _cmd_eval(args: argparse.Namespace) -> int:
    from rnnvision.engine.evaluation import evaluate_checkpoint

    metrics = evaluate_checkpoint(
        _model_source(args),
        dataset=args.dataset,
        split=args.split,
        data_dir=args.data_dir,
        download=args.download,
        batch_size=args.batch_size,
        device=args.device,
        out_dir=args.out,
        mirror=args.mirror,
    )
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key}: {_fmt(value)}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from rnnvision.export import export_checkpoint
    from rnnvision.export.quantize import float_convolutions

    path = export_checkpoint(
        _model_source(args),
        out=args.out,
        format=args.format,
        quantize=args.quantize,
        calibrate=args.calibrate,
        data_dir=args.data_dir,
        download=args.download,
    )
    int8 = (", int8 weights and convolutions" if args.calibrate else ", int8 weights") if args.quantize else ""
    print(f"wrote {path} ({args.format}{int8}, {path.stat().st_size / 1e6:.2f} MB)")
    if args.quantize and not args.calibrate and args.format == "onnx" and float_convolutions(path):
        print("its convolutions stay float32: --calibrate 64 --data-dir D quantizes them too (docs/deploy.md)")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from rnnvision.engine.prediction import TABLE_SUFFIXES, predict_inputs, write_results
    from rnnvision.outputs import check_output_file

    tables = [out for out in args.out or [] if Path(out).suffix.lower() in TABLE_SUFFIXES]
    folders = [out for out in args.out or [] if out not in tables]
    if len(tables) > 1 or len(folders) > 1:
        raise UserError("--out takes at most one results table (.jsonl, .csv) and one folder (per-image pictures)")
    if tables:
        check_output_file(tables[0])
    options: dict[str, Any] = {
        "out_dir": folders[0] if folders else None,
        "explain": args.explain,
        "topk": args.topk,
        "preprocess": args.preprocess,
    }
    if args.beam_width or args.lexicon:  # recognition decoding
        options.update(beam_width=args.beam_width, lexicon=args.lexicon)
    source, inputs = _source_and_images(args)
    progress = _ProgressBar("predict") if sys.stderr.isatty() and not args.quiet else None

    def failed(name: str, reason: str) -> None:
        line = f"rnnvision: error: {reason} (skipped)"
        if progress is not None:
            progress.write(line)
        else:
            print(line, file=sys.stderr, flush=True)

    try:
        run = predict_inputs(
            source,
            inputs,
            device=args.device,
            batch_size=args.batch_size,
            on_failure=failed,
            on_batch=progress,
            **options,
        )
    finally:
        if progress is not None:
            progress.close()
    predictions, failures = run.predictions, run.failures
    if tables:
        write_results(tables[0], run.results)
    if args.json:
        print(json.dumps({"predictions": predictions, "failures": failures}))
    elif tables:
        print(f"wrote {tables[0]}: {len(predictions)} images predicted, {len(failures)} failed")
    else:
        for result in predictions:
            print(run.task.format_prediction(result))
    if run.explained is not None and not args.json:
        print(f"wrote {run.explained}", file=sys.stderr)
    return 2 if failures else 0


class _ProgressBar:
    """A tqdm bar on stderr, created on the first batch (when the count of images is known)."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False)
        self.bar.update(done - self.bar.n)

    def write(self, line: str) -> None:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _requests_as_user_errors() -> Iterator[None]:
    """A model refuses a request it cannot serve (``--n 0``, ``--method incremental`` on a model without
    recurrent state) with ``ValueError``; here, at the CLI, that becomes the one-line user error."""
    try:
        yield
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _cmd_generate(args: argparse.Namespace) -> int:
    from rnnvision.tasks.generate import generate_to_file

    size = tuple(args.size) if args.size else None
    with _requests_as_user_errors():
        path = generate_to_file(
            _model_source(args),
            n=args.n,
            out=args.out,
            seed=args.seed,
            method=args.method,
            size=size,
            device=args.device,
        )
    print(f"wrote {args.n} samples to {path}")
    return 0


def _cmd_complete(args: argparse.Namespace) -> int:
    from rnnvision.tasks.generate import complete_to_file

    source, images = _source_and_images(args)
    with _requests_as_user_errors():
        path = complete_to_file(
            source,
            images,
            out=args.out,
            known_rows=args.known_rows,
            samples=args.samples,
            seed=args.seed,
            method=args.method,
            device=args.device,
        )
    print(f"wrote {path}: per image the occluded input, {args.samples} completions, the original")
    return 0


def _cmd_gradflow(args: argparse.Namespace) -> int:
    from rnnvision.engine.gradflow import gradient_flow
    from rnnvision.outputs import check_output_file
    from rnnvision.viz.plots import plot_gradient_flow

    check_output_file(args.out)  # before the gradients are computed
    flow = gradient_flow(_model_source(args), data_dir=args.data_dir, split=args.split, n=args.n, device=args.device)
    norm = flow.grad_norm
    title = f"{flow.model_name}: loss gradient reaching each step ({flow.n} {args.split} examples)"
    plot_gradient_flow(norm, flow.gates, args.out, title=title)
    tenth = max(1, len(norm) // 10)
    print(
        f"mean ||dL/dx_t|| over the first {tenth} steps {norm[:tenth].mean():.3e}, over the last {tenth} "
        f"{norm[-tenth:].mean():.3e}; "
        + "".join(f"mean {k} gate {v.mean():.3f}; " for k, v in flow.gates.items())
        + f"wrote {args.out}"
    )
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from rnnvision.serve import serve
    except ImportError as exc:
        raise UserError(
            f"rnnvision serve needs the serve extra ({exc.name} cannot be imported): pip install 'rnnvision[serve]'"
        ) from None
    serve(_serve_sources(args), host=args.host, port=args.port)
    return 0


def _model_source(args: argparse.Namespace) -> str:
    """The checkpoint path, or the shipped weights name of ``--weights`` (checked: a typo lists the names)."""
    if args.weights and args.checkpoint:
        raise UserError(f"give a checkpoint or --weights {args.weights}, not both")
    if args.weights:
        from rnnvision.weights import get_weights

        return get_weights(args.weights).name
    if not args.checkpoint:
        raise UserError("give a checkpoint, or --weights NAME for shipped weights (rnnvision list-weights)")
    return args.checkpoint


def _source_and_images(args: argparse.Namespace) -> tuple[str, list[str]]:
    """``CKPT INPUT...`` or ``--weights NAME INPUT...`` (where the first positional is an input)."""
    if args.weights and args.checkpoint:
        args = argparse.Namespace(**{**vars(args), "checkpoint": None, "images": [args.checkpoint, *args.images]})
    source = _model_source(args)
    if not args.images:
        raise UserError("give one or more image files")
    return source, args.images


def _serve_sources(args: argparse.Namespace) -> list[str]:
    """Checkpoints and ``--weights`` names to serve; with neither, every shipped entry."""
    from rnnvision.weights import get_weights, list_weights

    names = [get_weights(name).name for name in args.weights or []]
    if not args.checkpoints and not names:
        names = list_weights()
    return [*args.checkpoints, *names]


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].replace("``", "") if doc else ""


def _cmd_list_models(args: argparse.Namespace) -> int:
    from rnnvision.model_listing import model_listings

    for model in model_listings(args.task):  # read from the source: no torch import
        print(f"{model.name:<18} {model.task:<10} {model.summary.replace('``', '')}")
    return 0


def _cmd_list_weights(args: argparse.Namespace) -> int:
    from rnnvision.weights import get_weights, list_weights
    from rnnvision.weights.catalogue import format_metric

    entries = [get_weights(name) for name in list_weights()]
    if args.json:
        print(
            json.dumps(
                {
                    "weights": [
                        {k: v for k, v in e.to_json().items() if k not in ("config", "meta")}
                        | {"preprocessing": e.preprocessing}
                        for e in entries
                    ]
                }
            )
        )
        return 0
    for e in entries:
        print(
            f"{e.name:<30} {e.model:<14} {e.dataset:<16} {format_metric(e.metric, e.value):<22} "
            f"{e.bytes / 1e6:.2f} MB {e.dtype}"
        )
    return 0


def _cmd_list_datasets(args: argparse.Namespace) -> int:
    from rnnvision.data import get_dataset_entry, list_datasets

    for name in list_datasets():
        entry = get_dataset_entry(name)
        summary = _first_line(entry.builder.__doc__)
        print(f"{name:<18} {entry.task:<10} {summary}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from rnnvision.bench.report import check_suite_request, measure, suite_files
    from rnnvision.outputs import check_output_file

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.out:  # refused before minutes of measuring, not after
        check_suite_request(args.suite, args.device)
        for path in suite_files(args.out, args.device):
            check_output_file(path)
    result = measure(args.suite, quick=args.quick, device=args.device, progress=None if args.json else progress)
    command = " ".join(
        ["rnnvision bench"]
        + ["--quick"] * args.quick
        + [f"--suite {name}" for name in args.suite or []]
        + ([f"--device {args.device}"] if args.device != "cpu" else [])
    )
    if args.out:
        result.write(args.out, command=command)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(result.markdown(command=command), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnvision", description="Recurrent neural networks on images.")
    parser.add_argument("--version", action="version", version=f"rnnvision {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="train a row LSTM on the bundled 8x8 digits (under a minute) and draw it")
    demo.add_argument(
        "--out", default="runs/demo", help="run directory: new, empty or an earlier demo's (default runs/demo)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress output")
    demo.set_defaults(func=_cmd_demo)

    train = sub.add_parser("train", help="train a model from a YAML recipe")
    train.add_argument("config", help="YAML recipe, e.g. configs/mnist_row_lstm.yaml")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key, e.g. train.lr=1e-3")
    train.add_argument(
        "--out", help="run directory: new or empty (default runs/<recipe name>; with --resume, the checkpoint's)"
    )
    train.add_argument(
        "--resume", metavar="CKPT", help="continue from a last.pt with its own settings, same schedule and step count"
    )
    train.add_argument(
        "--stage",
        type=int,
        default=1,
        metavar="K",
        help="for a recipe trained in stages (its stages: list), train stage K (default 1: the recipe itself)",
    )
    _add_data_args(train)
    train.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("eval", help="evaluate a checkpoint on a dataset split")
    _add_model_args(evaluate)
    evaluate.add_argument("--dataset", help="dataset name (default: the one it was trained on)")
    evaluate.add_argument("--split", default="test", choices=("train", "val", "test"))
    evaluate.add_argument("--batch-size", type=int, default=256)
    evaluate.add_argument("--json", action="store_true", help="print exactly one JSON object")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument(
        "--out", metavar="DIR", help="also write the task's pictures here (segmentation: confusion, IoU per class)"
    )
    evaluate.add_argument(
        "--mirror",
        action="store_true",
        help="segmentation models trained with data.hflip: average each image's logits with its mirror image's "
        "(test-time flip; twice the time)",
    )
    _add_data_args(evaluate)
    evaluate.set_defaults(func=_cmd_eval)

    predict = sub.add_parser("predict", help="predict images (files, folders, globs) with a checkpoint, in batches")
    _add_model_args(predict, help="a checkpoint, or an exported .onnx file (run by onnxruntime)")
    predict.add_argument(
        "images",
        nargs="*",
        metavar="INPUT",
        help="image files, folders (searched recursively for image suffixes) and globs ('scans/**/*.png')",
    )
    predict.add_argument("--json", action="store_true", help="print exactly one JSON object: predictions and failures")
    predict.add_argument(
        "--out",
        action="append",
        metavar="FILE|DIR",
        help="results.jsonl or results.csv: one row per image; any other name: a folder for per-image "
        "pictures (segmentation masks and overlays); may be given once of each",
    )
    predict.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per batch (default 64)")
    predict.add_argument("--topk", type=int, metavar="K", help="classification: also the K most probable classes")
    predict.add_argument(
        "--preprocess",
        choices=("none", "mnist"),
        default="none",
        help="mnist: frame a photo of one digit as MNIST's were (invert light paper, crop to the ink, "
        "fit 20x20, centre of mass in the middle) for a digit classifier",
    )
    predict.add_argument(
        "--explain",
        metavar="PNG",
        help="recognition: a picture of the first 16 images with each character's box and the CTC alignment",
    )
    predict.add_argument("--beam-width", type=int, default=0, metavar="N", help="recognition: CTC beam search, N beams")
    predict.add_argument("--lexicon", metavar="FILE", help="recognition: answer only words of FILE (one per line)")
    predict.add_argument("--device", default="auto")
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    predict.set_defaults(func=_cmd_predict)

    export = sub.add_parser("export", help="export a checkpoint as ONNX or TorchScript, for runtimes without rnnvision")
    _add_model_args(export)
    export.add_argument("--format", default="onnx", choices=("onnx", "torchscript"))
    export.add_argument("--out", metavar="FILE", help="file to write (default: beside the checkpoint, .onnx / .ts.pt)")
    export.add_argument(
        "--quantize", choices=("int8",), help="int8 dynamic quantization of the recurrent and linear weights"
    )
    export.add_argument(
        "--calibrate",
        type=int,
        default=0,
        metavar="N",
        help="with --quantize int8: quantize the convolutions too, calibrated on the first N training images",
    )
    _add_data_args(export)
    export.set_defaults(func=_cmd_export)

    generate = sub.add_parser("generate", help="sample new images from a generative checkpoint into a PNG grid")
    _add_model_args(generate)
    generate.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    generate.add_argument(
        "--out", default="samples.png", help="image grid to write, format by suffix (default samples.png)"
    )
    generate.add_argument(
        "--size", type=int, nargs=2, metavar=("H", "W"), help="image size (default: the training size)"
    )
    _add_sampling_args(generate)
    generate.set_defaults(func=_cmd_generate)

    complete = sub.add_parser("complete", help="fill in the bottom of images with a generative checkpoint")
    _add_model_args(complete)
    complete.add_argument("images", nargs="*", metavar="IMAGE")
    complete.add_argument(
        "--out", default="completed.png", help="image grid to write, format by suffix (default completed.png)"
    )
    complete.add_argument("--known-rows", type=int, help="rows kept from the top of each image (default: half)")
    complete.add_argument("--samples", type=int, default=4, help="completions per image (default 4)")
    _add_sampling_args(complete)
    complete.set_defaults(func=_cmd_complete)

    gradflow = sub.add_parser("gradflow", help="plot how far back the loss gradient reaches in a sequence model")
    _add_model_args(gradflow)
    gradflow.add_argument("--out", default="grad.png", help="PNG to write (default grad.png)")
    gradflow.add_argument("--n", type=int, default=64, help="examples of the split to average over (default 64)")
    gradflow.add_argument("--split", default="test", choices=("train", "val", "test"))
    gradflow.add_argument("--device", default="auto")
    gradflow.add_argument("--data-dir", help="data root (default $RNNVISION_DATA or ~/.cache/rnnvision)")
    gradflow.set_defaults(func=_cmd_gradflow)

    serve = sub.add_parser("serve", help="serve checkpoints on a web page (draw, upload, watch) and a JSON API")
    serve.add_argument("checkpoints", nargs="*", metavar="CKPT", help="checkpoints to serve (one page panel per task)")
    serve.add_argument(
        "--weights",
        action="append",
        metavar="NAME",
        help="shipped weights to serve (repeatable); with no CKPT and no --weights, all of them",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(func=_cmd_serve)

    models = sub.add_parser("list-models", help="list the registered models")
    models.add_argument("--task", help="only models of this task (classify, recognize, segment, generate)")
    models.set_defaults(func=_cmd_list_models)

    weights = sub.add_parser("list-weights", help="list the pretrained weights shipped with rnnvision")
    weights.add_argument("--json", action="store_true", help="print exactly one JSON object (with the preprocessing)")
    weights.set_defaults(func=_cmd_list_weights)

    datasets = sub.add_parser("list-datasets", help="list the registered datasets")
    datasets.set_defaults(func=_cmd_list_datasets)

    bench = sub.add_parser("bench", help="time every layer against its reference and torch.nn, in one process")
    bench.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    bench.add_argument("--json", action="store_true", help="print exactly one JSON object")
    bench.add_argument("--suite", action="append", metavar="NAME", help="only this family (repeatable; default all)")
    bench.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    bench.add_argument("--out", metavar="DIR", help="also write suite_<device>.csv and .md here")
    bench.set_defaults(func=_cmd_bench)
    return parser


def _add_model_args(parser: argparse.ArgumentParser, *, help: str = "a checkpoint (best.pt)") -> None:
    parser.add_argument("checkpoint", nargs="?", metavar="CKPT", help=help + "; or a shipped weights name")
    parser.add_argument(
        "--weights", metavar="NAME", help="shipped pretrained weights instead of a checkpoint (rnnvision list-weights)"
    )


def _add_sampling_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed of the samples (default 0)")
    parser.add_argument(
        "--method",
        default="auto",
        choices=("auto", "incremental", "naive"),
        help="incremental carries the recurrent state; naive reruns the network per pixel",
    )
    parser.add_argument("--device", default="auto")


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", help="data root holding one folder per dataset (default $RNNVISION_DATA or ~/.cache/rnnvision)"
    )
    parser.add_argument("--download", action="store_true", help="download missing dataset files")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"rnnvision: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnvision: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
