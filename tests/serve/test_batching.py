"""The dynamic batcher: concurrent requests share batches, each gets its own answer, failures stay apart."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'rnnvision[serve]'")

from rnnvision.serve.batching import Batcher  # noqa: E402


def _slow_squares(sizes: list[int], delay: float = 0.05):
    """A batch function that records each batch's size and takes ``delay`` seconds per call."""

    def work(items: list[int]) -> list[int | Exception]:
        sizes.append(len(items))
        time.sleep(delay)
        return [ValueError(f"odd {k}") if k == 13 else k * k for k in items]

    return work


def test_concurrent_items_are_batched_and_each_gets_its_own_outcome():
    sizes: list[int] = []
    batcher = Batcher(_slow_squares(sizes), max_batch=4, max_wait=0.01)

    async def main():
        return await asyncio.gather(*(batcher.submit(k) for k in range(10)), return_exceptions=True)

    assert asyncio.run(main()) == [k * k for k in range(10)]
    assert sum(sizes) == 10 and max(sizes) == 4 and len(sizes) < 10  # batches of up to 4 formed


def test_a_failed_item_fails_alone_and_a_failed_batch_fails_every_item():
    batcher = Batcher(_slow_squares([], delay=0), max_batch=8)

    async def items():
        return await asyncio.gather(*(batcher.submit(k) for k in (12, 13, 14)), return_exceptions=True)

    first, odd, last = asyncio.run(items())
    assert (first, last) == (144, 196) and isinstance(odd, ValueError) and str(odd) == "odd 13"

    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("boom")

    failing = Batcher(broken, max_batch=8)

    async def failed():
        return await asyncio.gather(*(failing.submit(k) for k in range(3)), return_exceptions=True)

    assert [str(e) for e in asyncio.run(failed())] == ["boom"] * 3


def test_a_lone_item_waits_at_most_max_wait():
    batcher = Batcher(_slow_squares([], delay=0), max_batch=16, max_wait=0.05)

    async def main():
        start = time.perf_counter()
        answer = await batcher.submit(3)
        return answer, time.perf_counter() - start

    answer, took = asyncio.run(main())
    assert answer == 9 and 0.05 <= took < 1.0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_batch must be at least 1"):
        Batcher(lambda items: items, max_batch=0)


def test_batches_form_in_the_server_and_answer_like_one_at_a_time(checkpoints, samples):
    """Through the app: 16 concurrent clients, a batch per forward pass, the answers of serial requests."""
    from PIL import Image
    from starlette.testclient import TestClient

    from rnnvision.serve import create_app, load_served
    from tests.serve.compare import assert_same_answer, png_bytes

    served = load_served(str(checkpoints["digits"]), name="digits")
    sizes: list[int] = []

    def record(module, inputs, output) -> None:  # one forward pass of len(inputs[0]) images
        sizes.append(len(inputs[0]))

    served.model.register_forward_hook(record)
    bodies = [png_bytes(Image.open(samples["digit"]).rotate(angle)) for angle in range(-40, 40, 5)]  # 16 digits
    with TestClient(create_app([served], max_batch=16, max_wait=0.05)) as client:
        serial = [
            client.post("/predict/digits", content=b, headers={"content-type": "image/png"}).json() for b in bodies
        ]
        sizes.clear()
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(
                pool.map(
                    lambda b: client.post("/predict/digits", content=b, headers={"content-type": "image/png"}), bodies
                )
            )
    assert [a.status_code for a in answers] == [200] * 16
    assert sum(sizes) == 16 and max(sizes) > 1  # fewer forward passes than requests
    for alone, together in zip(serial, answers):
        assert_same_answer(alone, together.json())
