"""Every command with a table of bad inputs: exit status 2, exactly one line on stderr, no traceback,
and no file outside the run directory changed.

Checkpoints come from tiny one-epoch runs through the CLI; forged ones are rewritten with a valid
digest (the digest catches corruption, not a deliberate edit). The count of cases is in the issue-16
closing note: ``len(CASES)`` rows, each run once.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnnvision.cli import main
from rnnvision.engine.checkpoint import payload_digest
from tests.conftest import SHARED_DATA

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY_CLASSIFY = ["model.hidden_size=8", "model.head_hidden=8", "train.epochs=1", "train.batch_size=64"]
TINY_GENERATE = ["model.hidden=4", "model.layers=1", "model.out_hidden=8", "train.epochs=1"]


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def _bomb(path: Path) -> None:
    """A 20000 x 20000 1-bit PNG of a few kilobytes (the header is what is refused)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * (2501 * 200), 9)
    header = struct.pack(">IIBBBBB", 20000, 20000, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def _forge(source: Path, target: Path, edit) -> None:
    raw = torch.load(source, weights_only=True)
    edit(raw["body"])
    raw["sha256"] = payload_digest(raw["body"])
    torch.save(raw, target)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Two tiny checkpoints and a folder of bad inputs; tests write only under their own out/ folder."""
    root = tmp_path_factory.mktemp("bad")
    assert (
        main(
            [
                "train",
                str(CONFIGS / "digits_row_lstm.yaml"),
                "--out",
                str(root / "cls"),
                "--quiet",
                *_sets(TINY_CLASSIFY),
            ]
        )
        == 0
    )
    gen_args = ["train", str(CONFIGS / "digits_pixelrnn_row.yaml"), "--out", str(root / "gen"), "--quiet"]
    assert main(gen_args + _sets(TINY_GENERATE)) == 0
    cls = root / "cls" / "best.pt"
    _forge(cls, root / "huge.pt", lambda b: b["config"]["model"].update(hidden_size=10**6))
    _forge(cls, root / "nostate.pt", lambda b: b.pop("state_dict"))
    _forge(cls, root / "badmeta.pt", lambda b: b.update(meta=["not", "a", "mapping"]))
    data = cls.read_bytes()
    (root / "truncated.pt").write_bytes(data[: len(data) // 3])
    _bomb(root / "bomb.png")
    (root / "text.png").write_text("not a picture")
    (root / "results.jsonl").write_text('{"a table": "the user wrote"}\n')
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "digit.png")
    (root / "latin1.yaml").write_bytes("model:\n  name: row_lstm  # caf\xe9\n".encode("latin-1"))
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")
    ]
    (root / "aliasbomb.yaml").write_text("\n".join(lines) + "\n")
    (root / "string_section.yaml").write_text("model: row_lstm\ndata:\n  name: digits\n")
    (root / "list_section.yaml").write_text("model:\n  name: row_lstm\ndata:\n  name: digits\ntrain: [1, 2]\n")
    (root / "toplist.yaml").write_text("- model\n- data\n")
    for name, line in (("escape", "../outside.png\tab"), ("absolute", f"{root / 'digit.png'}\tab")):
        folder = root / name
        folder.mkdir()
        Image.new("L", (16, 8)).save(folder / "a.png")
        (folder / "labels.tsv").write_text(f"a.png\tab\n{line}\n")
    Image.new("L", (16, 8)).save(root / "outside.png")
    (root / "latin1_labels").mkdir()
    Image.new("L", (16, 8)).save(root / "latin1_labels" / "a.png")
    (root / "latin1_labels" / "labels.tsv").write_bytes("a.png\tcaf\xe9\n".encode("latin-1"))
    for name in ("escape", "absolute", "latin1_labels"):
        (root / f"text_{name}.yaml").write_text(
            f"model: {{name: crnn, size: tiny}}\ndata: {{name: text-folder, path: '{root / name}'}}\n"
            "train: {epochs: 1, batch_size: 2, device: cpu}\n"
        )
    (root / "masks200.yaml").write_text(
        f"model: {{name: reseg}}\ndata: {{name: mask-folder, path: '{root / 'masks200'}'}}\ntrain: {{epochs: 1, batch_size: 2, device: cpu}}\n"
    )
    masks = root / "masks200"
    (masks / "images").mkdir(parents=True)
    (masks / "masks").mkdir()
    for i in range(4):
        Image.new("RGB", (6, 6)).save(masks / "images" / f"{i}.png")
        label = np.zeros((6, 6), np.uint8)
        label[0, 0] = 200 if i == 0 else 1
        Image.fromarray(label).save(masks / "masks" / f"{i}.png")
    bombs = root / "bombfolder"
    for klass in ("a", "b"):
        (bombs / klass).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8)).save(bombs / klass / f"{i}.png")
    _bomb(bombs / "a" / "9.png")
    return root


def _cuda_missing() -> bool:
    return not torch.cuda.is_available()


ROW = str(CONFIGS / "digits_row_lstm.yaml")
SEG = str(CONFIGS / "digit_scenes_reseg.yaml")
# (command line with {root}/{out} placeholders, a piece of the expected message); a train run goes in
# {out}/run, since other cases may leave their own results in {out} (a predict that fails on some inputs)
CASES = [
    (["train", "{root}/latin1.yaml"], "not UTF-8"),
    (["train", "{root}/aliasbomb.yaml"], "aliases are not allowed"),
    (["train", "{root}/string_section.yaml"], "section model must be a mapping"),
    (["train", "{root}/list_section.yaml"], "section train must be a mapping"),
    (["train", "{root}/toplist.yaml"], "must be a YAML mapping"),
    (["train", ROW, "--set", "train.lr=-1"], "train.lr must be a finite number"),
    (["train", ROW, "--set", "train.lr=.nan"], "train.lr must be a finite number"),
    (["train", ROW, "--set", "train.weight_decay=-0.1"], "train.weight_decay"),
    (["train", ROW, "--set", "train.min_lr_ratio=2"], "train.min_lr_ratio"),
    (["train", ROW, "--set", "train.warmup_epochs=-1"], "train.warmup_epochs"),
    (["train", ROW, "--set", "train.grad_clip=.nan"], "train.grad_clip"),
    (["train", ROW, "--set", "train.num_workers=-1"], "train.num_workers"),
    (["train", ROW, "--set", "train.eval_batch_size=0"], "train.eval_batch_size"),
    (["train", ROW, "--set", "data.name=mnist", "--set", "data.max_shift=-2"], "data.max_shift"),
    (["train", ROW, "--set", "model.img_size=-8"], "model.img_size"),
    (["train", ROW, "--set", "model.dropout=.inf"], "model.dropout"),
    (["train", SEG, "--set", "model.stem_chans=[8,-3]"], "stem_chans must be at least 1"),
    (["train", SEG, "--set", "model.decoder_chans=-1"], "decoder_chans must be at least 1"),
    (["train", ROW, "--set", "model.head_hidden=-1"], "model 'row_lstm': head_hidden must be at least 0"),
    (["train", ROW, "--set", "model.hidden_size=0"], "model 'row_lstm': hidden_size must be at least 1"),
    (["train", ROW, "--set", "train.device=banana", "--out", "{out}/run"], "unknown device"),
    (["train", ROW, "--set", "train.device=cuda", "--out", "{out}/run"], "no CUDA"),
    (["train", "{root}/text_escape.yaml", "--out", "{out}/run"], "outside the dataset"),
    (["train", "{root}/text_absolute.yaml", "--out", "{out}/run"], "outside the dataset"),
    (["train", "{root}/text_latin1_labels.yaml", "--out", "{out}/run"], "not UTF-8"),
    (["train", "{root}/masks200.yaml", "--out", "{out}/run"], "never seen"),
    (
        [
            "train",
            ROW,
            "--set",
            "data.name=image-folder",
            "--set",
            "data.path={root}/bombfolder",
            "--set",
            "data.img_size=8",
            "--set",
            "data.val_fraction=0.34",
            "--set",
            "data.test_fraction=0.34",
            "--set",
            "train.epochs=1",
            "--quiet",
            "--out",
            "{out}/run",
        ],
        "too large",
    ),
    (["train", str(CONFIGS / "iiit5k_crnn.yaml"), "--out", "{out}/run", "--data-dir", "{out}"], "iiit5k_crnn_synth"),
    (["predict", "{root}/cls/best.pt", "{root}/bomb.png"], "too large"),
    (["predict", "{root}/cls/best.pt", "{root}/text.png"], "not an image"),
    (["predict", "{root}/cls/best.pt", "{root}/digit.png", "--device", "banana"], "unknown device"),
    (["predict", "{root}/cls/best.pt", "{root}/digit.png", "--device", "cuda"], "no CUDA"),
    (["predict", "{root}/huge.pt", "{root}/digit.png"], "weights do not fit"),
    (["predict", "{root}/nostate.pt", "{root}/digit.png"], "'state_dict' is missing"),
    (["predict", "{root}/badmeta.pt", "{root}/digit.png"], "'meta'"),
    (["predict", "{root}/truncated.pt", "{root}/digit.png"], "not a readable checkpoint"),
    (["predict", "{root}/cls/best.pt", "{root}/no-such-folder"], "no such file or folder"),
    (["predict", "{root}/cls/best.pt", "{root}/escape/*.jpg"], "matches no image file"),
    (["predict", "{root}/cls/best.pt", "{root}/latin1_labels/*.tsv", "--out", "{out}/r.csv"], "matches no image file"),
    (["predict", "{root}/cls/best.pt", "{root}/digit.png", "--topk", "11"], "--topk must lie in [1, 10]"),
    (["predict", "{root}/cls/best.pt", "{root}/digit.png", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["predict", "{root}/cls/best.pt", "{root}/digit.png", "--out", "{out}/pictures"], "writes no per-image pictures"),
    (
        [
            "predict",
            "{root}/cls/best.pt",
            "{root}/digit.png",
            "--out",
            "{root}/bombfolder/r.jsonl",
            "--out",
            "{out}/r.csv",
        ],
        "at most one results table",
    ),
    (["predict", "{root}/gen/best.pt", "{root}/digit.png", "--topk", "2"], "takes no --topk option"),
    (["eval", "{root}/cls/best.pt", "--batch-size", "0"], "--batch-size"),
    (["eval", "{root}/cls/best.pt", "--device", "banana"], "unknown device"),
    (
        ["eval", "{root}/cls/best.pt", "--dataset", "mnist", "--data-dir", str(SHARED_DATA)],
        "28x28 images, the model was trained on 8x8",
    ),
    (["list-models", "--task", "colourise"], "unknown task"),
    (["complete", "{root}/gen/best.pt", "{root}/digit.png", "--samples", "0", "--out", "{out}/c.png"], "--samples"),
    (["complete", "{root}/gen/best.pt", "{root}/digit.png", "--known-rows", "0", "--out", "{out}/c.png"], "known rows"),
    (["complete", "{root}/gen/best.pt", "{root}/bomb.png", "--out", "{out}/c.png"], "too large"),
    (["complete", "{root}/cls/best.pt", "{root}/digit.png", "--out", "{out}/c.png"], "need a generate model"),
    (["generate", "{root}/gen/best.pt", "--device", "banana", "--out", "{out}/g.png"], "unknown device"),
    (["generate", "{root}/huge.pt", "--out", "{out}/g.png"], "weights do not fit"),
    (["eval", "--weights", "digits_row_lstn"], "no shipped weights named 'digits_row_lstn'; known: "),
    (["eval", "digits_row_lstn"], "no shipped weights named 'digits_row_lstn'"),
    (["predict", "--weights", "nope", "{root}/digit.png"], "no shipped weights named 'nope'"),
    (["generate", "--weights", "nope", "--out", "{out}/g.png"], "no shipped weights named 'nope'"),
    (["train", ROW, "--set", "train.init_from=nope", "--out", "{out}/run"], "no shipped weights named 'nope'"),
    (["eval", "{root}/cls/best.pt", "--weights", "digits_row_lstm"], "not both"),
    (["eval"], "give a checkpoint, or --weights NAME"),
    (["predict", "{root}/cls/best.pt"], "give one or more image files"),
    (["predict", "--weights", "digits_row_lstm"], "give one or more image files"),
    (["complete", "--weights", "digits_row_lstm", "{root}/digit.png", "--out", "{out}/c.png"], "need a generate model"),
    # an existing file is never overwritten
    (["generate", "{root}/gen/best.pt", "--out", "{root}/digit.png"], "digit.png already exists"),
    (["complete", "{root}/gen/best.pt", "{root}/digit.png", "--out", "{root}/text.png"], "text.png already exists"),
    (["predict", "{root}/cls/best.pt", "{root}/digit.png", "--out", "{root}/results.jsonl"], "already exists"),
    (["gradflow", "{root}/cls/best.pt", "--out", "{root}/digit.png"], "digit.png already exists"),
    (["export", "{root}/cls/best.pt", "--format", "onnx", "--out", "{root}/digit.png"], "digit.png already exists"),
]


def _snapshot(root: Path, skip: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and skip not in p.parents
    }


@pytest.mark.slow
@pytest.mark.parametrize("args,message", CASES, ids=[f"{i:02d}-{c[0][0]}" for i, c in enumerate(CASES)])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(inputs, args, message, capsys, monkeypatch):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the case is about a build without it")
    if "mnist" in args and not (SHARED_DATA / "mnist").is_dir():
        pytest.skip("real mnist data not found")
    out = inputs / "out"
    monkeypatch.chdir(inputs / "cls")  # commands that default to a relative path write in a run directory
    before = _snapshot(inputs, out)
    code = main([a.format(root=inputs, out=out) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("rnnvision: error: ") and "Traceback" not in err, err
    assert message in err, err
    assert _snapshot(inputs, out) == before
