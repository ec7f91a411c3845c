"""What one /predict computes: one forward pass for the answer and the pictures, the pictures equal
to a second pass's (the slow reference), batches equal to one image at a time, pictures in bytes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from rnnvision.data.text import word_tensor
from rnnvision.data.transforms import pil_to_tensor
from rnnvision.errors import UserError
from rnnvision.ops.ctc import collapse_path
from rnnvision.serve import load_served
from rnnvision.serve.inference import decode_picture, decode_upload, encode_picture, predict, predict_batch
from tests.serve.compare import QUANTUM, assert_same_answer


@pytest.fixture(scope="module")
def served(checkpoints):
    return {name: load_served(str(path), name=name) for name, path in checkpoints.items()}


@pytest.fixture(scope="module")
def images(samples):
    return {name: decode_upload(path.read_bytes(), max_pixels=10**6) for name, path in samples.items()}


def _forward_calls(model: torch.nn.Module) -> tuple[list[int], object]:
    calls: list[int] = []
    return calls, model.register_forward_hook(lambda *_: calls.append(1))


@pytest.mark.parametrize(("model", "image"), [("digits", "digit"), ("strings", "line"), ("scenes", "scene")])
def test_a_request_runs_the_model_forward_exactly_once(served, images, model, image):
    calls, hook = _forward_calls(served[model].model)
    try:
        predict(served[model], images[image])
    finally:
        hook.remove()
    assert len(calls) == 1


def test_classify_pictures_equal_a_second_pass_through_the_reference_loop(served, images):
    model = served["digits"].model
    result = predict(served["digits"], images["digit"])
    x = pil_to_tensor(images["digit"], channels=1, size=(8, 8))[None]  # (1, 1, 8, 8)
    with torch.no_grad():
        outputs, _, gates = model.rnn(model.to_sequence(x), return_gates=True)  # the reference loop
        rows = F.softmax(model.forward_head(outputs[0]), dim=-1)  # (T, K)
    for name, expected in gates.items():
        low = -1.0 if name == "cell" else 0.0
        np.testing.assert_allclose(
            decode_picture(result["gates"][name]),
            expected[0, 0, 0].numpy(),
            atol=(1 - low) * QUANTUM + 1e-5,
            err_msg=name,
        )
    np.testing.assert_allclose(result["row_probabilities"], rows.numpy(), atol=1e-4)
    np.testing.assert_allclose(decode_picture(result["input"]), x[0, 0].numpy(), atol=QUANTUM + 1e-6)
    np.testing.assert_allclose(result["probabilities"], rows[-1].numpy(), atol=1e-4)


def test_recognize_columns_equal_a_second_pass(served, images):
    strings = served["strings"]
    result = predict(strings, images["line"])
    height, max_width = strings.meta["img_size"]
    x = word_tensor(images["line"], channels=strings.meta["in_chans"], height=height, max_width=max_width)
    with torch.no_grad():
        batch = strings.task.collate([(x, "")])
        log_probs, lengths = strings.task.log_probs(strings.model, batch)
    lp = log_probs[0, : int(lengths[0])]  # (T, K)
    symbols = [""] + list(strings.meta["charset"])
    assert result["columns"]["best"] == [symbols[k] for k in lp.argmax(-1).tolist()]
    np.testing.assert_allclose(result["columns"]["blank"], lp[:, 0].exp().numpy(), atol=1e-4)
    np.testing.assert_allclose(decode_picture(result["input"]), x.mean(0).numpy(), atol=QUANTUM + 1e-6)
    path = [symbols.index(s) for s in result["columns"]["alignment"]]
    assert strings.task.decode_labels(collapse_path(path)) == result["text"]  # the alignment reads the text


def test_segment_confidence_equals_a_second_pass(served, images):
    scenes = served["scenes"]
    result = predict(scenes, images["scene"])
    with torch.no_grad():
        probs = F.softmax(scenes.model(pil_to_tensor(images["scene"], channels=scenes.meta["in_chans"])[None]), dim=1)
    assert result["mean_confidence"] == pytest.approx(float(probs.max(dim=1).values.mean()), abs=1e-5)


def test_a_segmenter_run_in_tiles_is_refused_in_one_line(checkpoints, images):
    tiled = load_served(str(checkpoints["scenes"]), name="tiled")
    tiled.model.input_size = (16, 16)  # predict_images then runs it on overlapping 16 x 16 tiles
    with pytest.raises(UserError, match="runs in tiles"):
        predict(tiled, images["scene"])


@pytest.mark.parametrize(
    ("model", "image", "prepare"),
    [("digits", "digit", "digit"), ("strings", "line", "line"), ("scenes", "scene", "none")],
)
def test_a_batch_gives_the_answers_of_one_image_at_a_time(served, images, model, image, prepare):
    base = images[image].convert("L")
    variants = [base, base.rotate(10), base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), base.rotate(-20)]
    modes = [prepare, "none", prepare, "none"]
    names = [f"image{k}.png" for k in range(4)]
    alone = [predict(served[model], v, filename=n, prepare=m) for v, n, m in zip(variants, names, modes)]
    together = predict_batch(served[model], variants, filenames=names, prepare=modes)
    for a, b in zip(alone, together):
        assert_same_answer(a, b)


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (-1.0, 1.0)])
def test_a_picture_is_one_byte_per_value_and_decodes_to_within_a_quantum(low, high):
    values = torch.rand(7, 5, generator=torch.Generator().manual_seed(0)) * (high - low) + low
    values[0, 0], values[0, 1] = low, high
    picture = encode_picture(values, low=low, high=high)
    assert picture["shape"] == [7, 5] and len(picture["uint8"]) == 48  # 35 bytes in base64
    decoded = decode_picture(picture)
    np.testing.assert_allclose(decoded, values.numpy(), atol=(high - low) * QUANTUM + 1e-7)
    assert decoded[0, 0] == low and decoded[0, 1] == high
