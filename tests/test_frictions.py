"""Issue 16, section 5: small frictions fixed (gate-map order, CTC label length, tiny image folders)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rnnvision.config import load_config
from rnnvision.errors import UserError
from rnnvision.viz.plots import unit_order


def test_units_are_ordered_by_the_step_of_their_largest_change():
    steps, units = 6, 4
    gate = torch.zeros(steps, units)
    gate[4:, 0] = 1.0  # unit 0 switches at step 4
    gate[1:, 1] = 1.0  # unit 1 switches at step 1
    gate[:, 2] = 0.7  # unit 2 never changes
    gate[2:, 3] = 0.5  # unit 3 switches at step 2
    assert unit_order([gate, gate]).tolist() == [1, 3, 0, 2]


def test_ctc_labels_longer_than_the_image_allows_are_refused_by_name(tmp_path):
    from rnnvision.data.text import WordFileDataset, text_info
    from rnnvision.models import create_model
    from rnnvision.tasks import make_task

    Image.new("L", (64, 32)).save(tmp_path / "wide.png")  # 64 px -> 16 CTC columns
    Image.new("L", (16, 32)).save(tmp_path / "narrow.png")  # 16 px -> 4 columns
    info = text_info("t", "ab", in_chans=1, height=32, max_width=256)
    model = create_model("crnn", size="tiny", num_classes=3, in_chans=1, img_height=32)
    task = make_task("recognize", {"charset": "ab"})
    task.check_data(model, WordFileDataset([(tmp_path / "wide.png", "abab")], info))  # fits
    with pytest.raises(UserError, match="narrow.png"):
        task.check_data(
            model, WordFileDataset([(tmp_path / "wide.png", "ab"), (tmp_path / "narrow.png", "aabb")], info)
        )


@pytest.mark.slow
def test_an_image_folder_smaller_than_the_batch_trains(tmp_path):
    from rnnvision.engine import train

    for klass in ("a", "b"):
        (tmp_path / "data" / klass).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 80 * i, np.uint8)).save(tmp_path / "data" / klass / f"{i}.png")
    config = load_config(
        None,
        [
            "data.path=" + str(tmp_path / "data"),
            "data.img_size=8",
            "data.val_fraction=0.34",
            "data.test_fraction=0.34",
            "model.hidden_size=4",
            "model.head_hidden=4",
            "train.epochs=1",
            "train.batch_size=64",
            "train.device=cpu",
        ],
        base={"model": {"name": "row_lstm"}, "data": {"name": "image-folder"}},
    )
    result = train(config, out_dir=tmp_path / "run", quiet=True)
    assert result.best_epoch == 1
    assert "batch_size: 2" in (tmp_path / "run" / "config.yaml").read_text()  # what was used is what is recorded
