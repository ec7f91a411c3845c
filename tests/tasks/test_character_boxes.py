"""Each recognized character's box, from the CTC forced alignment, lies on the digit it names.

The reader is the shipped ``digit_strings_crnn`` weights when ``rnnvision.load`` knows them;
else a small CRNN is trained here on lines of MNIST digits until it reads 40 % of 64 held-out
lines (a few hundred steps, about a minute). Skipped without ../shared/data/mnist, from which both
the training and the test lines are drawn. Only lines it reads right are checked, and at least ten
of 40 must be. Test lines are rendered by digit-strings, which knows each digit's columns, and
scaled by 1.5 so that the image's pixels are not the model's: the boxes must come back in the
image's own pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import rnnvision
from rnnvision.data import build_dataset
from rnnvision.models import create_model
from rnnvision.tasks.recognize import RecognitionTask
from tests.conftest import SHARED_DATA, shared_dataset

LINES = {"source": "mnist", "root": SHARED_DATA, "max_length": 4, "min_gap": 1}
SCALE = 1.5


@pytest.fixture(scope="module")
def reader() -> tuple[torch.nn.Module, dict]:
    """(model, payload) of a CRNN that reads digit lines."""
    shared_dataset("mnist")  # the test lines are MNIST digits, whichever reader reads them
    if "digit_strings_crnn" in rnnvision.list_weights():
        return rnnvision.load("digit_strings_crnn")
    torch.manual_seed(0)  # no weights of that name: train one
    train = build_dataset("digit-strings", split="train", train_size=32 * 800, **LINES)
    val = build_dataset("digit-strings", split="val", val_size=64, **LINES)
    task = RecognitionTask(train.info.charset)
    model = create_model("crnn", size="small", num_classes=len(train.info.charset) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    held_out = task.collate([val[i] for i in range(len(val))])
    for step in range(800):
        model.train()
        loss = task.training_loss(model, task.collate([train[32 * step + i] for i in range(32)]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 49:
            model.eval()
            with torch.no_grad():
                if task.finalize(task.eval_stats(model, held_out))["sequence_accuracy"] >= 0.4:
                    break
    model.eval()
    info = train.info
    return model, {
        "task": "recognize",
        "meta": {"charset": info.charset, "in_chans": 1, "img_size": list(info.img_size)},
    }


@pytest.mark.slow
def test_every_character_box_overlaps_the_digit_it_names(reader):
    test = build_dataset("digit-strings", split="test", test_size=40, **LINES)
    lines = [test.render(i) for i in range(len(test))]
    images = [
        Image.fromarray(canvas).resize((round(canvas.shape[1] * SCALE), round(canvas.shape[0] * SCALE)), Image.BILINEAR)
        for canvas, _, _ in lines
    ]
    results = rnnvision.predict(reader, images)
    read = [(result, spans) for result, (_, text, spans) in zip(results, lines) if result["text"] == text]
    assert len(read) >= 10, f"the reader read only {len(read)} of 40 lines"
    for result, spans in read:
        boxes = [(c["x0"], c["x1"]) for c in result["characters"]]
        assert "".join(c["char"] for c in result["characters"]) == result["text"]
        for (x0, x1), (d0, d1) in zip(boxes, spans):
            assert x0 < d1 * SCALE and d0 * SCALE < x1, (result, spans)  # the box overlaps its digit's columns
        assert all(b[1] <= c[0] for b, c in zip(boxes, boxes[1:]))  # in reading order, disjoint
        assert all(0 < c["probability"] <= 1 for c in result["characters"])


@pytest.mark.slow
def test_boxes_do_not_depend_on_the_batch(reader):
    test = build_dataset("digit-strings", split="test", test_size=12, **LINES)
    images = [Image.fromarray(test.render(i)[0]) for i in range(len(test))]  # widths differ: batches are padded
    alone = rnnvision.predict(reader, images, batch_size=1)
    together = rnnvision.predict(reader, images, batch_size=12)
    assert [r["text"] for r in together] == [r["text"] for r in alone]
    for a, b in zip(alone, together):
        assert [(c["x0"], c["x1"]) for c in a["characters"]] == [(c["x0"], c["x1"]) for c in b["characters"]]
        np.testing.assert_allclose(
            [c["probability"] for c in a["characters"]], [c["probability"] for c in b["characters"]], atol=1e-5
        )
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)
