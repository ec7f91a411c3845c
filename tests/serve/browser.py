"""A served app on a free local port and Debian's Chromium driven by Playwright (tests and screenshots).

Playwright's own browser download cannot be reached here, so the browser is the ``chromium``
package (``apt-get install -y chromium``); ``RNNVISION_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import uvicorn

from rnnvision.serve import ServedModel, create_app

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = "apt-get update && apt-get install -y chromium"


def chromium_path() -> str:
    """The Chromium binary; raises with the install command when there is none (never a skip)."""
    path = os.environ.get("RNNVISION_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"the browser tests need Chromium at {path}; install it with: {INSTALL}")
    return path


@contextmanager
def running_server(models: Sequence[ServedModel], **options) -> Iterator[str]:
    """Serve ``models`` with uvicorn in a thread on 127.0.0.1 and a free port; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(models, **options), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def launch(playwright):
    """Headless Chromium from Debian (no network, no sandbox: it runs as root in CI containers)."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


def stroke(page, selector: str, points: Sequence[tuple[float, float]], *, steps: int = 6) -> None:
    """Drag the mouse through ``points`` given as fractions (x, y) of the element's box."""
    box = page.locator(selector).bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


# A "7" and a line of strokes, as fractions of the drawing area.
SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]
