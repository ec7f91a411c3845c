"""Property-based tests: every reader and parser of user files either returns a value or raises the
one-line :class:`UserError`; no other exception escapes, whatever the bytes.

Kept fast (few examples, no deadline: the CPU is shared) and reproducible (derandomized).
"""

from __future__ import annotations

import gzip
import io
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnvision.config import config_from_dict, load_config, parse_override, parse_yaml
from rnnvision.data.idx import read_idx
from rnnvision.data.iiit5k import read_iiit5k_labels
from rnnvision.data.segmentation import read_mask
from rnnvision.data.text_folder import read_labels_tsv
from rnnvision.data.transforms import MAX_PIXELS, load_image, open_image
from rnnvision.engine.checkpoint import check_model_fits, load_checkpoint, payload_digest, save_checkpoint
from rnnvision.errors import UserError

FUZZ = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def one_line_or_value(fn, *args, **kwargs):
    """Call ``fn``; a UserError must be one non-empty line. Returns the value or the error."""
    try:
        return fn(*args, **kwargs)
    except UserError as error:
        text = str(error)
        assert text and "\n" not in text, repr(text)
        return error


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="rnnvision-fuzz-"))


def _png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG")
    return buffer.getvalue()


# -- IDX --------------------------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=200), st.booleans())
def test_idx_reader_never_crashes(data, compress):
    path = _scratch() / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(data) if compress else data)
    result = one_line_or_value(read_idx, path)
    if isinstance(result, np.ndarray):
        assert result.dtype == np.uint8


@FUZZ
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4), st.binary(max_size=64))
def test_idx_header_promising_more_than_it_holds_is_refused(shape, body):
    data = struct.pack(">HBB", 0, 8, len(shape)) + struct.pack(f">{len(shape)}I", *shape) + body
    path = _scratch() / "x.gz"
    path.write_bytes(gzip.compress(data))
    result = one_line_or_value(read_idx, path)
    assert isinstance(result, UserError) or result.shape == tuple(shape)


# -- images -----------------------------------------------------------------------------------------
MODES = {
    "L": np.uint8,
    "RGB": np.uint8,
    "RGBA": np.uint8,
    "LA": np.uint8,
    "I;16": np.uint16,
    "I": np.int32,
    "F": np.float32,
}


@FUZZ
@given(
    st.sampled_from(sorted(MODES)),
    st.integers(1, 12),
    st.integers(1, 12),
    st.sampled_from(["PNG", "TIFF", "JPEG", "BMP", "GIF"]),
    st.integers(0, 2**31 - 1),
)
def test_any_image_file_reads_as_8bit_grey_or_rgb_in_range(mode, height, width, fmt, seed):
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "LA": 2}.get(mode, 1)
    dtype = MODES[mode]
    high = 2.0 if dtype == np.float32 else np.iinfo(dtype).max
    array = (
        (rng.random((height, width, channels)) * high).astype(dtype).squeeze(-1)
        if channels == 1
        else (rng.integers(0, 256, (height, width, channels), dtype=np.uint8))
    )
    image = Image.fromarray(array, "LA") if mode == "LA" else Image.fromarray(array)
    path = _scratch() / f"x.{fmt.lower()}"
    try:
        image.save(path, fmt)
    except (OSError, KeyError, ValueError):
        return  # this format cannot hold this mode; nothing to read
    for channels_out in (1, 3):
        result = one_line_or_value(load_image, path, channels=channels_out, size=(7, 5))
        if not isinstance(result, UserError):
            assert result.shape == (channels_out, 7, 5) and result.dtype == torch.float32
            assert float(result.min()) >= 0.0 and float(result.max()) <= 1.0


@FUZZ
@given(st.binary(min_size=1, max_size=400), st.integers(0, 2**31 - 1))
def test_damaged_image_bytes_give_one_line(garbage, seed):
    rng = np.random.default_rng(seed)
    good = bytearray(_png_bytes(rng.integers(0, 256, (9, 7), dtype=np.uint8)))
    cut = int(rng.integers(0, len(good)))
    for data in (bytes(good[:cut]) + garbage, b"\x89PNG\r\n\x1a\n" + garbage, garbage):
        path = _scratch() / "x.png"
        path.write_bytes(data)
        result = one_line_or_value(open_image, path)
        assert isinstance(result, UserError) or result.mode in ("L", "RGB")


def _png_header_only(width: int, height: int, bit_depth: int = 1) -> bytes:
    """A PNG whose header promises width x height pixels and whose data is a few zero bytes."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@FUZZ
@given(st.integers(MAX_PIXELS // 4000 + 1, 2**31 - 1), st.integers(4001, 2**31 - 1))
def test_decompression_bombs_are_refused_before_decoding(width, height):
    path = _scratch() / "bomb.png"
    path.write_bytes(_png_header_only(width, height))
    result = one_line_or_value(open_image, path)
    assert isinstance(result, UserError) and "too large" in str(result)


def test_sixteen_bit_png_is_scaled_by_bit_depth_not_saturated(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "a.png")
    assert open_image(tmp_path / "a.png", keep_mode=True).mode.startswith("I")
    got = load_image(tmp_path / "a.png", channels=1)[0, 0]
    assert torch.allclose(got, torch.tensor([0.0, 1.0, 128.0, 255.0]) / 255.0)


def test_alpha_is_composited_on_a_contrasting_background(tmp_path):
    white_stroke = np.zeros((4, 4, 4), np.uint8)
    white_stroke[1:3, 1:3] = 255  # opaque white square on a transparent (0, 0, 0, 0) field
    Image.fromarray(white_stroke, "RGBA").save(tmp_path / "white.png")
    dark_text = white_stroke.copy()
    dark_text[1:3, 1:3, :3] = 0  # opaque black square
    Image.fromarray(dark_text, "RGBA").save(tmp_path / "dark.png")
    white = load_image(tmp_path / "white.png", channels=1)[0]
    dark = load_image(tmp_path / "dark.png", channels=1)[0]
    assert white[0, 0] == 0.0 and white[1, 1] == 1.0  # MNIST-like: white on black
    assert dark[0, 0] == 1.0 and dark[1, 1] == 0.0  # text-like: black on white
    half = np.full((2, 2, 2), 255, np.uint8)
    half[..., 1] = 128  # grey + alpha: white at half opacity over black
    Image.fromarray(half, "LA").save(tmp_path / "la.png")
    assert abs(float(load_image(tmp_path / "la.png", channels=1).mean()) - 128 / 255) < 1 / 255


def test_palette_and_cmyk_convert_to_their_colours(tmp_path):
    palette = Image.new("P", (2, 2))
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((1, 1), 1)
    palette.save(tmp_path / "p.png")
    rgb = load_image(tmp_path / "p.png", channels=3)
    assert rgb[:, 1, 1].tolist() == [1.0, 0.0, 0.0] and rgb[:, 0, 0].tolist() == [0.0, 0.0, 0.0]
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(tmp_path / "c.tif")  # pure cyan-free: red
    assert load_image(tmp_path / "c.tif", channels=3)[:, 0, 0].tolist() == [1.0, 0.0, 0.0]


# -- masks ------------------------------------------------------------------------------------------
@FUZZ
@given(st.sampled_from(["L", "P", "RGB", "I;16", "1"]), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_mask_reader_takes_class_index_images_only(mode, height, width, seed):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)).convert(mode)
    path = _scratch() / "m.png"
    image.save(path)
    result = one_line_or_value(read_mask, path)
    assert isinstance(result, UserError) or (result.dtype == np.uint8 and result.shape == (height, width))


# -- labels.tsv -------------------------------------------------------------------------------------
NAMES = st.sampled_from(
    ["a.png", "../a.png", "/etc/passwd", "sub/../a.png", "sub/../../a.png", "nul\0.png", "", "missing.png"]
)


@FUZZ
@given(
    st.lists(st.tuples(NAMES, st.text(max_size=8), st.sampled_from(["\t", " ", "\t\t"])), max_size=5),
    st.binary(max_size=20),
)
def test_labels_tsv_never_crashes_and_never_leaves_the_folder(rows, raw_tail):
    root = _scratch()
    folder = root / "data"
    folder.mkdir()
    Image.new("L", (4, 4)).save(folder / "a.png")
    Image.new("L", (4, 4)).save(root / "a.png")  # outside the dataset: must never be listed
    text = "\n".join(f"{name}{sep}{label}" for name, label, sep in rows)
    (folder / "labels.tsv").write_bytes(text.encode("utf-8", "surrogatepass") + raw_tail)
    result = one_line_or_value(read_labels_tsv, folder / "labels.tsv")
    if not isinstance(result, UserError):
        assert all(p.resolve().is_relative_to(folder.resolve()) for p, _ in result)


# -- .mat (IIIT5K) ----------------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=300))
def test_iiit5k_mat_reader_never_crashes(data):
    folder = _scratch()
    (folder / "testCharBound.mat").write_bytes(b"MATLAB 5.0 MAT-file" + data if data[:1] == b"M" else data)
    one_line_or_value(read_iiit5k_labels, folder, "test")


@pytest.mark.parametrize(
    "content",
    [
        {"testCharBound": np.zeros(3)},
        {"other": np.ones(2)},
        {"testCharBound": np.array([[("../x.png", "ab")]], dtype=[("ImgName", "O"), ("chars", "O")])},
    ],
)
def test_iiit5k_mat_of_the_wrong_shape_or_outside_paths_are_refused(tmp_path, content):
    from scipy.io import savemat

    savemat(tmp_path / "testCharBound.mat", content)
    (tmp_path.parent / "x.png").write_bytes(b"")
    with pytest.raises(UserError):
        read_iiit5k_labels(tmp_path, "test")


# -- YAML configs and --set -------------------------------------------------------------------------
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
SECTION = st.dictionaries(
    st.sampled_from(
        ["name", "lr", "epochs", "hidden_size", "img_size", "max_shift", "path", "warmup_epochs", "grad_clip", "x"]
    ),
    YAML_VALUES | st.sampled_from(["row_lstm", "digits", "mnist", "nan", "-1", ".inf"]),
    max_size=4,
)
CONFIG = st.dictionaries(
    st.sampled_from(["model", "data", "train", "task", "other"]), SECTION | YAML_VALUES, max_size=4
)


@FUZZ
@given(CONFIG)
def test_any_config_mapping_is_validated_in_one_line(raw):
    one_line_or_value(config_from_dict, raw)


@FUZZ
@given(st.text(max_size=120) | st.binary(max_size=120))
def test_any_config_file_is_read_or_refused_in_one_line(content):
    path = _scratch() / "c.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    one_line_or_value(load_config, path)


@FUZZ
@given(st.lists(st.text(max_size=30), max_size=3))
def test_any_set_override_is_applied_or_refused_in_one_line(overrides):
    base = {"model": {"name": "row_lstm"}, "data": {"name": "digits"}}
    one_line_or_value(load_config, None, overrides, base=base)
    for text in overrides:
        one_line_or_value(parse_override, text)


def test_yaml_alias_bomb_is_refused_at_once(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")
    ]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    assert (tmp_path / "bomb.yaml").stat().st_size < 600  # 9**9 = 387 million leaves once expanded
    with pytest.raises(UserError, match="aliases are not allowed"):
        load_config(tmp_path / "bomb.yaml")
    base = {"model": {"name": "row_lstm"}, "data": {"name": "digits"}}
    with pytest.raises(UserError, match="aliases are not allowed"):
        parse_yaml("[&a [1], *a]", source="--set value")
    with pytest.raises(UserError, match="must be int"):  # an alias in --set stays text, then fails the type check
        load_config(None, ["train.epochs=[&a [1], *a]"], base=base)


# -- checkpoints ------------------------------------------------------------------------------------
def _tiny_checkpoint(folder: Path) -> Path:
    from rnnvision.config import config_from_dict
    from rnnvision.models import create_model

    config = config_from_dict(
        {"model": {"name": "row_rnn", "hidden_size": 4, "num_classes": 3, "img_size": 4}, "data": {"name": "digits"}}
    )
    model = create_model("row_rnn", **{k: v for k, v in config.model.items() if k != "name"})
    payload = {
        "model_name": "row_rnn",
        "task": "classify",
        "config": config.to_dict(),
        "metrics": {},
        "num_params": 0,
        "meta": {
            "class_names": ["a", "b", "c"],
            "in_chans": 1,
            "img_size": [4, 4],
            "charset": "",
            "name": "x",
            "task": "classify",
        },
        "state_dict": model.state_dict(),
    }
    return save_checkpoint(folder / "c.pt", payload)


def _forge(path: Path, edit) -> None:
    """Rewrite a checkpoint's body with ``edit`` and a freshly computed (so valid) digest."""
    raw = torch.load(path, weights_only=True)
    edit(raw["body"])
    raw["sha256"] = payload_digest(raw["body"])
    torch.save(raw, path)


def _load_and_check(path: Path):
    body = load_checkpoint(path)
    return check_model_fits(body, path)


def test_a_genuine_checkpoint_passes_the_checks(tmp_path):
    assert _load_and_check(_tiny_checkpoint(tmp_path)).model["hidden_size"] == 4


FORGERIES = {
    "huge hidden size": lambda b: b["config"]["model"].update(hidden_size=10**7),
    "huge image": lambda b: b["config"]["model"].update(img_size=10**6),
    "no state_dict": lambda b: b.pop("state_dict"),
    "state_dict a list": lambda b: b.update(state_dict=[1, 2]),
    "weights renamed": lambda b: b["state_dict"].update({"extra.weight": torch.zeros(2)}),
    "weights reshaped": lambda b: b["state_dict"].update({k: torch.zeros(1) for k in list(b["state_dict"])[:1]}),
    "weights of ints": lambda b: b["state_dict"].update({k: v.long() for k, v in b["state_dict"].items()}),
    "config a string": lambda b: b.update(config="model: x"),
    "no model name": lambda b: b["config"]["model"].pop("name"),
    "meta classes not strings": lambda b: b["meta"].update(class_names=[1, 2]),
    "meta a list": lambda b: b.update(meta=[]),
    "task mismatch": lambda b: b.update(task="segment"),
    "training damaged": lambda b: b.update(training={"epoch": "one"}),
    "format version text": lambda b: b.update(format_version="1"),
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_checkpoints_with_valid_digests_are_refused_before_building(tmp_path, name):
    path = _tiny_checkpoint(tmp_path)
    _forge(path, FORGERIES[name])
    result = one_line_or_value(_load_and_check, path)
    assert isinstance(result, UserError), name


@FUZZ
@given(st.integers(0, 2**31 - 1), st.integers(1, 64))
def test_damaged_checkpoint_bytes_give_one_line(seed, flips):
    folder = _scratch()
    path = _tiny_checkpoint(folder)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for index in rng.integers(0, len(data), flips):
        data[index] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data[: int(rng.integers(len(data) // 2, len(data) + 1))]))
    one_line_or_value(_load_and_check, path)


@FUZZ
@given(YAML_VALUES)
def test_any_body_structure_with_a_valid_digest_gives_one_line(value):
    path = _tiny_checkpoint(_scratch())
    _forge(path, lambda b: b.update(config=value) if isinstance(value, dict) else b.update(meta=value))
    one_line_or_value(_load_and_check, path)
