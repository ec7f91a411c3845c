"""Load test of ``rnnvision serve``: N concurrent clients against POST /predict for a bounded time.

    PYTHONPATH=src python benchmarks/serve_load.py --checkpoint runs/mnist_row_lstm/best.pt \
        --checkpoint runs/digit_strings_crnn/best.pt --clients 16 --seconds 20 --data-dir ../shared/data

The server runs as its own process on 127.0.0.1 and a free port, started as ``rnnvision serve``
starts it (uvicorn on ``create_app`` of the loaded checkpoints); the clients are threads of this process, each with its own keep-alive connection, sending one
test image of the model's dataset (a single digit for a classifier, a digit line for a
recognizer) again and again. Per model, one after the other: requests, failures (any status
but 200, or a transport error), requests per second, p50 and p99 latency. Target (issue 14): no
failed request at 16 clients and p99 below 100 ms for a single digit on a 2-core CPU.

``--max-batch 1,16`` compares settings of the server's dynamic batching (1: none, 16: the
default): one server per setting, all up at once; ``--rounds R`` alternates between them R times per model and pools each
setting's latencies, so a busy machine's load falls on every setting alike.

``--in-process N`` first times the server's work without the network, in this process and one
thread: N calls of ``rnnvision.serve.inference.predict`` on the same image, then the JSON encoding
of its answer as Starlette's ``JSONResponse`` renders it; per model the median and p99 of each
and the answer's size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import httpx
import numpy as np
from PIL import Image

from rnnvision.data import build_dataset
from rnnvision.engine.checkpoint import load_checkpoint
from rnnvision.serve import load_served, model_names
from rnnvision.serve.inference import decode_upload, predict


def sample_png(checkpoint: str, data_dir: str | None) -> bytes:
    """A PNG of the first test image of the checkpoint's dataset."""
    meta = load_checkpoint(checkpoint)["meta"]
    options = {"test_size": 8} if meta["name"] == "digit-strings" else {}
    item = build_dataset(meta["name"], split="test", root=data_dir, **options)[0]
    image = item[0] if isinstance(item, tuple) else item
    array = (image.numpy().transpose(1, 2, 0).squeeze(-1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def hammer(url: str, body: bytes, *, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads posting ``body`` to ``url`` for ``seconds``; latency figures in ms."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()  # HTTP status or exception name -> count
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    status = http.post(url, content=body, headers={"content-type": "image/png"}).status_code
                    failure = None if status == 200 else f"HTTP {status}"
                except httpx.HTTPError as exc:
                    failure = type(exc).__name__
                elapsed = time.perf_counter() - start
                with lock:
                    if failure is None:
                        latencies.append(elapsed)
                    else:
                        failures[failure] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {"latencies_ms": ms, "failures": failures, "wall": wall}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests, failures, requests per second and p50/p99 latency of pooled :func:`hammer` runs."""
    ms = np.concatenate([r["latencies_ms"] for r in runs])
    failures = sum((r["failures"] for r in runs), Counter())
    return {
        "requests": len(ms) + sum(failures.values()),
        "failed": sum(failures.values()),
        "why": ", ".join(f"{k} x{v}" for k, v in failures.items()) or "-",
        "req_per_s": len(ms) / sum(r["wall"] for r in runs),
        "p50_ms": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        "p99_ms": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
    }


LAUNCH = """
import sys, uvicorn
from rnnvision.serve import create_app, load_served, model_names
port, max_batch, sources = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
models = [load_served(s, name=n) for s, n in zip(sources, model_names(sources))]
uvicorn.run(create_app(models, max_batch=max_batch), host="127.0.0.1", port=port, log_level="warning")
"""


def start_server(checkpoints: list[str], max_batch: int) -> tuple[subprocess.Popen, str]:
    """A server process on 127.0.0.1 and a free port, up and answering; returns it and its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, ["src", os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen([sys.executable, "-c", LAUNCH, str(port), str(max_batch), *checkpoints], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()
            raise SystemExit("the server did not start")
        time.sleep(0.5)


def time_in_process(checkpoint: str, body: bytes, *, repeats: int) -> dict[str, float]:
    """Median and p99 ms of ``predict`` and of the JSON encoding of its answer; the answer's KB."""
    served = load_served(checkpoint, name="timed")
    image = decode_upload(body, max_pixels=10**8)
    for _ in range(3):
        predict(served, image)
    predicting, encoding = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = predict(served, image)
        middle = time.perf_counter()
        text = json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":"))  # as JSONResponse
        predicting.append(middle - start)
        encoding.append(time.perf_counter() - middle)
    ms = {k: np.array(v) * 1000 for k, v in (("predict", predicting), ("json", encoding))}
    return {
        **{f"{k}_{q}": float(np.percentile(v, p)) for k, v in ms.items() for q, p in (("p50", 50), ("p99", 99))},
        "kb": len(text.encode()) / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="a checkpoint to load (repeatable)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="time per model, setting and round (0: only --in-process)"
    )
    parser.add_argument("--max-batch", default="16", help="comma-separated batch limits to compare (1: no batching)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the settings this many times per model")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load per model before measuring")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--in-process",
        type=int,
        default=0,
        metavar="N",
        help="first time N in-process predict calls per model (no server)",
    )
    args = parser.parse_args()
    if args.in_process:
        print("| model | predict p50 ms | predict p99 ms | JSON p50 ms | JSON p99 ms | answer KB |")
        print("|---|---:|---:|---:|---:|---:|")
        for checkpoint, name in zip(args.checkpoint, model_names(args.checkpoint)):
            t = time_in_process(checkpoint, sample_png(checkpoint, args.data_dir), repeats=args.in_process)
            print(
                f"| {name} | {t['predict_p50']:.2f} | {t['predict_p99']:.2f} | {t['json_p50']:.2f} | "
                f"{t['json_p99']:.2f} | {t['kb']:.1f} |",
                flush=True,
            )
    if args.seconds <= 0:
        return
    settings = [int(v) for v in args.max_batch.split(",")]
    servers: dict[int, tuple[subprocess.Popen, str]] = {}
    try:
        for setting in settings:
            servers[setting] = start_server(args.checkpoint, setting)
        print("| model | max batch | clients | seconds | requests | failed | req/s | p50 ms | p99 ms | failures |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for checkpoint, name in zip(args.checkpoint, model_names(args.checkpoint)):
            body = sample_png(checkpoint, args.data_dir)
            runs: dict[int, list[dict[str, Any]]] = {setting: [] for setting in settings}
            for _ in range(args.rounds):
                for setting, (_, base) in servers.items():
                    url = f"{base}/predict/{name}"
                    hammer(url, body, clients=args.clients, seconds=args.warmup)
                    runs[setting].append(hammer(url, body, clients=args.clients, seconds=args.seconds))
            for setting, pooled in runs.items():
                r = summary(pooled)
                print(
                    f"| {name} | {setting} | {args.clients} | {args.seconds * args.rounds:g} | {r['requests']} | {r['failed']} | "
                    f"{r['req_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['why']} |",
                    flush=True,
                )
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
