"""The web application of ``rnnvision serve``: a JSON API and one page, on Starlette.

Starlette alone (not FastAPI on top of it): five routes whose inputs are an image body and a
few query numbers need no request models, and the upload is read by hand anyway to enforce the
size limit while streaming. That keeps the ``serve`` extra to starlette, uvicorn and
python-multipart (no pydantic).

Routes: ``GET /`` (the page), ``GET /static/...``, ``GET /health``, ``GET /models``,
``POST /predict/{model}``, ``POST /complete/{model}``. An image is the request body (any image
content type) or the first file of a multipart form. Every error is JSON ``{"error": "..."}``
with one line: 400 bad option, 404 unknown model or route, 413 too many bytes or pixels, 415 not
an image, 500 a failure inside the model (logged; the server keeps serving). Inference runs in
Starlette's thread pool, one batch per model at a time (a lock per model): concurrent
``/predict`` requests for one model are gathered into one forward pass (:mod:`.batching`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, overload

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from rnnvision.errors import UserError
from rnnvision.serve.batching import Batcher
from rnnvision.serve.inference import (
    ServedModel,
    Upload,
    UploadError,
    check_predict,
    complete,
    decode_upload,
    model_card,
    predict_uploads,
)

STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 25_000_000
log = logging.getLogger("rnnvision.serve")


def create_app(
    models: Sequence[ServedModel],
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_batch: int = 16,
    max_wait: float = 0.002,
) -> Starlette:
    """The application serving ``models`` (loaded once, by :func:`~rnnvision.serve.inference.load_served`).

    Args:
        models: the models, names unique.
        max_upload_bytes: larger request bodies get 413 (default 5 MB).
        max_pixels: images with more pixels get 413, read from the header before decoding.
        max_batch: the most ``/predict`` requests of one model answered by one forward pass
            (1: one at a time).
        max_wait: seconds a batch that is not full waits for more requests (default 2 ms).
    """
    by_name = {m.name: m for m in models}
    if len(by_name) != len(models):
        raise ValueError("model names must be unique")
    cards = [model_card(m) for m in models]
    batchers: dict[str, Batcher[Upload, dict[str, Any]]] = {
        m.name: Batcher(partial(predict_uploads, m, max_pixels=max_pixels), max_batch=max_batch, max_wait=max_wait)
        for m in models
        if m.state["task"] != "generate"
    }

    def served(request: Request) -> ServedModel:
        name = request.path_params["model"]
        if name not in by_name:
            raise UploadError(404, f"no model named {name!r}; GET /models lists {', '.join(by_name) or 'none'}")
        return by_name[name]

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "models": list(by_name)})

    async def list_models(request: Request) -> Response:
        return JSONResponse({"models": cards})

    async def predict_route(request: Request) -> Response:
        model = served(request)
        prepare = request.query_params.get("prepare", "none")
        check_predict(model, prepare)
        body, filename = await _read_body(request, max_upload_bytes)
        return JSONResponse(await _answer(batchers[model.name].submit((body, filename, prepare))))

    async def complete_route(request: Request) -> Response:
        model = served(request)
        body, _ = await _read_body(request, max_upload_bytes)
        query = request.query_params
        known_rows = _int_option(query, "known_rows", None)
        samples, seed = _int_option(query, "samples", 4), _int_option(query, "seed", 0)
        prepare = query.get("prepare", "none")

        def work() -> dict[str, Any]:
            image = decode_upload(body, max_pixels=max_pixels)
            return complete(model, image, known_rows=known_rows, samples=samples, seed=seed, prepare=prepare)

        return JSONResponse(await _answer(run_in_threadpool(work)))

    routes = [
        Route("/", page),
        Route("/health", health),
        Route("/models", list_models),
        Route("/predict/{model}", predict_route, methods=["POST"]),
        Route("/complete/{model}", complete_route, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {UploadError: _upload_error, HTTPException: _http_error}
    return Starlette(routes=routes, exception_handlers=handlers)


async def _answer(inference: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """Await inference (run in the thread pool); a failure inside becomes a one-line 500, never a crash."""
    try:
        return await inference
    except (UploadError, HTTPException):
        raise
    except UserError as exc:
        raise UploadError(400, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the server must outlive any one request
        log.exception("inference failed")
        raise UploadError(
            500, f"inference failed: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None


async def _read_body(request: Request, max_bytes: int) -> tuple[bytes, str]:
    """The uploaded file's bytes and name; 413 past ``max_bytes`` (read in chunks, so a huge
    body is refused without being held in memory). Decoding is left to the inference thread."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise UploadError(413, f"the upload is {int(declared):,} bytes, more than the limit of {max_bytes:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise UploadError(413, f"the upload is more than the limit of {max_bytes:,} bytes")
        chunks.append(chunk)
    body, filename = b"".join(chunks), "upload"
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        body, filename = await _multipart_file(request, body)
    return body, filename


async def _multipart_file(request: Request, body: bytes) -> tuple[bytes, str]:
    """The first file of a multipart body already read (replayed to Starlette's form parser)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
    except (HTTPException, ValueError, KeyError) as exc:
        raise UploadError(400, f"the multipart form could not be read: {getattr(exc, 'detail', exc)}") from None
    for value in form.values():
        if isinstance(value, UploadFile):
            return await value.read(), value.filename or "upload"
    raise UploadError(400, "the multipart form holds no file; send the image as a file field")


@overload
def _int_option(query: QueryParams, key: str, default: int) -> int: ...
@overload
def _int_option(query: QueryParams, key: str, default: None) -> int | None: ...
def _int_option(query: QueryParams, key: str, default: int | None) -> int | None:
    value = query.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UploadError(400, f"{key} must be a whole number, got {value!r}") from None


async def _upload_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UploadError)
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "no such page; the API is GET /models, POST /predict/{model}, POST /complete/{model}, GET /health"
    return JSONResponse({"error": message if exc.status_code == 404 else str(exc.detail)}, status_code=exc.status_code)


def model_names(sources: Sequence[str]) -> list[str]:
    """One URL-safe name per source: a checkpoint's run directory (``runs/mnist/best.pt`` ->
    ``mnist``), with ``-2``, ``-3`` ... after repeats."""
    names: list[str] = []
    for source in sources:
        path = Path(source)
        stem = path.parent.name if path.name in ("best.pt", "last.pt") and path.parent.name else path.stem
        base = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip("-.") or "model"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def serve(sources: Sequence[str], *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Load ``sources`` once and serve them until interrupted (``rnnvision serve``)."""
    import socket

    import uvicorn

    from rnnvision.serve.inference import load_served

    if not sources:
        raise UserError("give one or more checkpoints to serve, e.g. rnnvision serve runs/mnist_row_lstm/best.pt")
    with socket.socket() as probe:  # a clear message instead of uvicorn's exit when the port is taken
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port") from None
    models = [load_served(s, name=n) for s, n in zip(sources, model_names(sources))]
    for m in models:
        print(f"serving {m.name} ({m.state['task']}, {m.state.get('model_name')}) from {m.source}")
    print(f"open http://{host}:{port}/ in a browser")
    uvicorn.run(create_app(models), host=host, port=port, log_level="warning")
