"""The serve API with an in-process client: every endpoint, every error status, concurrency, bombs."""

from __future__ import annotations

import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'rnnvision[serve]'")
from starlette.testclient import TestClient  # noqa: E402

from rnnvision.engine.prediction import predict  # noqa: E402
from rnnvision.errors import UserError  # noqa: E402
from rnnvision.serve import create_app, load_served, model_names  # noqa: E402
from rnnvision.serve.inference import decode_picture, prepare_digit  # noqa: E402
from tests.serve.compare import assert_same_answer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def served(checkpoints):
    return {name: load_served(str(path), name=name) for name, path in checkpoints.items()}


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(list(served.values()), max_upload_bytes=200_000, max_pixels=1_000_000)) as c:
        yield c


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _post(client, path, data: bytes, content_type="image/png"):
    return client.post(path, content=data, headers={"content-type": content_type})


def test_health_and_models_describe_every_model(client):
    assert client.get("/health").json() == {"status": "ok", "models": ["digits", "strings", "scenes", "pixels"]}
    cards = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert {n: c["task"] for n, c in cards.items()} == {
        "digits": "classify",
        "strings": "recognize",
        "scenes": "segment",
        "pixels": "generate",
    }
    assert cards["digits"]["classes"] == [str(k) for k in range(10)] and cards["digits"]["input_size"] == [8, 8]
    assert cards["digits"]["gates"] is True and 0 < cards["digits"]["metrics"]["test"]["accuracy"] <= 1
    assert cards["strings"]["charset"] == "0123456789" and cards["strings"]["input_size"][0] == 32
    assert len(cards["scenes"]["colors"]) == len(cards["scenes"]["classes"]) == 11


def test_the_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text and client.get(asset).status_code == 200
    assert "http://" not in page.text.replace("http://www.w3.org", "") and "https://" not in page.text  # no CDN


def test_predict_classify_matches_predict_json_and_gives_the_gates(client, checkpoints, samples):
    response = client.post(
        "/predict/digits", files={"image": ("digit.png", samples["digit"].read_bytes(), "image/png")}
    )
    assert response.status_code == 200
    result = response.json()
    expected = predict(checkpoints["digits"], [samples["digit"]], device="cpu")
    assert {k: result[k] for k in expected[0]} == {**expected[0], "file": "digit.png"}
    probs = np.array(result["probabilities"])
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1, abs=1e-3) and probs.argmax() == result["class"]
    assert set(result["gates"]) == {"input", "forget", "cell", "output"}
    assert decode_picture(result["gates"]["forget"]).shape == (8, 32)  # (image rows, hidden units)
    assert np.array(result["row_probabilities"]).shape == (8, 10)
    np.testing.assert_allclose(result["row_probabilities"][-1], probs, atol=2e-4)  # the last row is the answer
    assert decode_picture(result["input"]).shape == (8, 8)


def test_a_drawn_digit_is_framed_like_the_training_digits():
    drawn = Image.new("RGB", (300, 200), "white")  # black ink on white paper, off centre
    ImageDraw.Draw(drawn).line([(40, 30), (40, 150)], fill="black", width=12)
    framed = np.asarray(prepare_digit(drawn, (28, 28)), dtype=np.float64)
    rows, cols = np.nonzero(framed > 25)
    assert framed.shape == (28, 28) and framed[0].max() == 0  # white ink on black
    assert rows.max() - rows.min() + 1 == 20  # MNIST: the ink fits a 20-pixel box
    centre = (framed.sum(0) * np.arange(28)).sum() / framed.sum()
    assert abs(centre - 14) <= 0.5  # centred by mass where MNIST's lies (pixel 14: data/digit_frame.py)
    small = np.asarray(prepare_digit(drawn, (8, 8)), dtype=np.float64)
    assert (small > 25).any(axis=1).sum() == 8  # the 8x8 digits fill the height


def test_predict_recognize_gives_text_boxes_and_alignment(client, checkpoints, samples):
    result = _post(client, "/predict/strings", samples["line"].read_bytes()).json()
    expected = predict(checkpoints["strings"], [samples["line"]], device="cpu")
    assert {k: result[k] for k in expected[0]} == {**expected[0], "file": "upload"}
    columns = result["columns"]
    assert len(columns["alignment"]) == len(columns["best"]) == len(columns["blank"])
    assert "".join(c["char"] for c in result["characters"]) == result["text"]
    width = Image.open(samples["line"]).width
    assert result["image_width"] == width  # the boxes are in the image's pixels, as predict --json gives them
    for box in result["characters"]:
        assert 0 <= box["x0"] < box["x1"] <= width and 0 < box["probability"] <= 1


def test_predict_segment_gives_mask_confidence_and_legend(client, samples):
    result = _post(client, "/predict/scenes", samples["scene"].read_bytes()).json()
    assert result["size"] == [48, 48] and result["legend"][0]["class"] == "background"
    mask = Image.open(io.BytesIO(__import__("base64").b64decode(result["mask_png"].split(",")[1])))
    assert mask.mode == "P" and mask.size == (48, 48)
    shares = np.bincount(np.asarray(mask).reshape(-1), minlength=11) / 48**2
    names = [entry["class"] for entry in result["legend"]]
    assert {names[k]: round(float(s), 6) for k, s in enumerate(shares) if s} == result["classes"]


def test_complete_keeps_the_known_rows_and_gives_probabilities(client, samples):
    digit = Image.open(samples["digit"])
    result = _post(client, "/complete/pixels?known_rows=3&samples=2&seed=1", _png(digit)).json()
    known = (np.asarray(digit, dtype=np.float64) / 255 >= 0.5).astype(float)  # binarized like training
    assert result["known_rows"] == 3 and len(result["samples"]) == 2
    for sample in result["samples"]:
        image, prob = decode_picture(sample["image"]), decode_picture(sample["probability"])
        assert image.shape == prob.shape == (8, 8) and set(np.unique(image)) <= {0.0, 1.0}
        np.testing.assert_array_equal(image[:3], known[:3])
        assert ((prob >= 0) & (prob <= 1)).all() and sample["nll_nats"] > 0
    again = _post(client, "/complete/pixels?known_rows=3&samples=2&seed=1", _png(digit)).json()
    assert again["samples"] == result["samples"]  # a seed gives the same completions


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/predict/nope", "digit", 404, "no model named 'nope'"),
        ("/complete/nope", "digit", 404, "no model named"),
        ("/predict/digits", b"this is not an image", 415, "not an image"),
        ("/predict/digits", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 415, "not an image"),
        ("/predict/digits", b"", 400, "holds no image"),
        ("/predict/digits", b"x" * 200_001, 413, "more than the limit of 200,000 bytes"),
        ("/predict/digits?prepare=magic", "digit", 400, "prepare must be one of"),
        ("/predict/pixels", "digit", 400, "POST /complete/pixels"),
        ("/complete/digits", "digit", 400, "complete needs a generate model"),
        ("/complete/pixels?known_rows=8", "digit", 400, "known_rows must lie in [1, 7]"),
        ("/complete/pixels?samples=two", "digit", 400, "samples must be a whole number"),
        ("/nothing-here", "digit", 404, "no such page"),
    ],
)
def test_errors_are_one_line_json_with_the_right_status(client, samples, path, body, status, words):
    data = samples["digit"].read_bytes() if body == "digit" else body
    response = _post(client, path, data)
    assert response.status_code == status
    message = response.json()["error"]
    assert words in message and "\n" not in message


@pytest.mark.parametrize(
    ("width", "height", "words"),
    [
        (20_000, 20_000, "400000000 pixels"),  # PIL's own guard, at open
        (2_000, 1_000, "2000x1000 pixels, more than the limit of 1,000,000"),  # the server's limit
    ],
)
def test_a_decompression_bomb_is_refused_from_its_header(client, width, height, words):
    # a real 1-bit PNG: kilobytes on the wire, megapixels once decoded
    raw = zlib.compress(b"".join(b"\0" + bytes(width // 8) for _ in range(height)), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    bomb += chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    assert len(bomb) < 200_000
    response = _post(client, "/predict/digits", bomb)
    assert response.status_code == 413 and words in response.json()["error"]
    assert client.get("/health").status_code == 200


def test_a_model_failure_is_a_500_and_the_server_keeps_serving(served, samples):
    class Broken(torch.nn.Module):
        def forward(self, images):
            raise RuntimeError("boom")

    model = load_served(served["digits"].source, name="broken")
    model.model = Broken()
    with TestClient(create_app([model, served["digits"]])) as c:
        response = _post(c, "/predict/broken", samples["digit"].read_bytes())
        assert response.status_code == 500 and response.json()["error"] == "inference failed: RuntimeError: boom"
        assert _post(c, "/predict/digits", samples["digit"].read_bytes()).status_code == 200


def test_concurrent_requests_get_the_answers_of_serial_ones(client, samples):
    digits = [Image.open(samples["digit"]).rotate(angle) for angle in (0, 15, -15, 30)]
    bodies = [_png(d) for d in digits] * 4
    serial = [_post(client, "/predict/digits", b).json() for b in bodies[:4]]

    def ask(body: bytes) -> dict:
        return _post(client, "/predict/digits", body).json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, bodies))
        lines = list(
            pool.map(lambda _: _post(client, "/predict/strings", samples["line"].read_bytes()).json(), range(4))
        )
    for alone, together in zip(serial * 4, answers):  # the batcher may have answered several in one pass
        assert_same_answer(alone, together)
    for line in lines:
        assert_same_answer(lines[0], line)


def test_a_bad_upload_in_a_batch_fails_alone(client, samples):
    bodies = [samples["digit"].read_bytes(), b"not an image", samples["digit"].read_bytes()] * 3
    with ThreadPoolExecutor(max_workers=9) as pool:
        statuses = list(pool.map(lambda b: _post(client, "/predict/digits", b).status_code, bodies))
    assert statuses == [200, 415, 200] * 3


def test_model_names_come_from_run_directories():
    assert model_names(["runs/mnist/best.pt", "other/mnist/best.pt", "x/model.pt", "a b/best.pt"]) == [
        "mnist",
        "mnist-2",
        "model",
        "a-b",
    ]


def test_a_chunked_upload_is_cut_off_at_the_limit(client):
    response = client.post("/predict/digits", content=iter([b"x" * 100_000] * 3), headers={"content-type": "image/png"})
    assert response.status_code == 413 and "more than the limit of 200,000 bytes" in response.json()["error"]


def test_serve_refuses_an_onnx_file_in_one_line(tmp_path):
    with pytest.raises(UserError, match="serve needs a checkpoint"):
        load_served(str(tmp_path / "model.onnx"), name="exported")
