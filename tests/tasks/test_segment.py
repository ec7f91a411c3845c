"""Segmentation metrics, loss and batching: IoU by hand, the ignore label, sums that add up."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rnnvision.data.segmentation import IGNORE_INDEX
from rnnvision.engine.prediction import predict
from rnnvision.errors import UserError
from rnnvision.tasks import make_task
from rnnvision.tasks.segment import (
    MirrorAveraged,
    SegmentationTask,
    class_frequencies,
    confusion_matrix,
    foreground_iou,
    iou_metrics,
    median_frequency_weights,
    segment_full,
)


def test_iou_metrics_match_a_hand_computed_example():
    # rows true, columns predicted; class 2 never occurs in labels or predictions
    confusion = torch.tensor([[5, 1, 0], [2, 2, 0], [0, 0, 0]])
    metrics = iou_metrics(confusion)
    assert metrics["pixel_accuracy"] == pytest.approx(7 / 10)
    assert metrics["per_class_iou"][0] == pytest.approx(5 / (6 + 7 - 5))
    assert metrics["per_class_iou"][1] == pytest.approx(2 / (4 + 3 - 2))
    assert metrics["per_class_iou"][2] is None
    assert metrics["mean_iou"] == pytest.approx((5 / 8 + 2 / 5) / 2)


def test_confusion_skips_ignored_pixels_and_rejects_labels_beyond_the_classes():
    labels = torch.tensor([[0, 1, IGNORE_INDEX], [2, 2, IGNORE_INDEX]])
    predicted = torch.tensor([[0, 2, 1], [2, 1, 0]])
    confusion = confusion_matrix(labels, predicted, 3)
    assert int(confusion.sum()) == 4
    assert confusion.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    with pytest.raises(UserError, match="holds label 3, but the model has 3 classes"):
        confusion_matrix(torch.tensor([3]), torch.tensor([0]), 3)


class _Constant(nn.Module):
    """Returns fixed logits, whatever the images."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits)

    def forward(self, images):
        return self.logits[: len(images)]


def test_eval_stats_add_up_over_batches_and_the_loss_ignores_void():
    torch.manual_seed(0)
    task = make_task("segment", {"class_names": ["a", "b", "c"]})
    logits = torch.randn(4, 3, 5, 6)
    masks = torch.randint(0, 3, (4, 5, 6))
    masks[0, :2] = IGNORE_INDEX
    model = _Constant(logits)
    whole = task.eval_stats(model, (torch.zeros(4, 1, 5, 6), masks))
    halves = [
        task.eval_stats(_Constant(logits[i : i + 2]), (torch.zeros(2, 1, 5, 6), masks[i : i + 2])) for i in (0, 2)
    ]
    assert torch.equal(whole["confusion"], halves[0]["confusion"] + halves[1]["confusion"])
    metrics = task.finalize(whole)
    assert set(metrics) == {"pixel_accuracy", "mean_iou", "per_class_iou", "n"} and metrics["n"] == 4
    assert int(whole["confusion"].sum()) == 4 * 30 - 12

    images = torch.zeros(4, 1, 5, 6)
    loss = task.training_loss(model, (images, masks))
    changed = logits.clone()
    changed[0, :, :2] += 100.0  # only ignored pixels change
    assert torch.allclose(task.training_loss(_Constant(changed), (images, masks)), loss)
    everything_ignored = torch.full_like(masks, IGNORE_INDEX)
    assert task.training_loss(model, (images, everything_ignored)).item() == 0.0


def test_collate_refuses_mixed_sizes_with_a_hint():
    task = make_task("segment", {"class_names": ["a", "b"]})
    items = [
        (torch.zeros(1, 4, 4), torch.zeros(4, 4, dtype=torch.long)),
        (torch.zeros(1, 5, 4), torch.zeros(5, 4, dtype=torch.long)),
    ]
    with pytest.raises(UserError, match="differ in size.*data.img_size"):
        task.collate(items)


def test_median_frequency_weights_match_a_hand_computation():
    masks = [
        np.array([[0, 0, 1], [0, IGNORE_INDEX, 1]], dtype=np.uint8),  # 5 labelled: class 0 x3, class 1 x2
        np.array([[2, 2], [2, 0]], dtype=np.uint8),  # 4 labelled: class 2 x3, class 0 x1
    ]
    pixels, image_pixels = class_frequencies(masks, 4)
    assert pixels.tolist() == [4, 2, 3, 0] and image_pixels.tolist() == [9, 5, 4, 0]
    # freq = 4/9, 2/5, 3/4 (class 3 absent); median 4/9
    weights = median_frequency_weights(pixels, image_pixels)
    assert weights == pytest.approx([1.0, (4 / 9) / (2 / 5), (4 / 9) / (3 / 4), 0.0])
    with pytest.raises(UserError, match="holds label 5, but there are 4 classes"):
        class_frequencies([np.array([[5]], dtype=np.uint8)], 4)


def test_class_weights_weigh_the_loss_per_true_class():
    logits = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    masks = torch.randint(0, 3, (2, 4, 5))
    masks[0, 0, :3] = IGNORE_INDEX
    weights = [0.5, 2.0, 1.25]
    task = SegmentationTask(["a", "b", "c"], class_weights=weights)
    loss = task.training_loss(_Constant(logits), (torch.zeros(2, 1, 4, 5), masks))
    valid = masks != IGNORE_INDEX
    nll = -logits.log_softmax(dim=1).gather(1, masks.clamp(max=2)[:, None])[:, 0][valid]
    w = torch.tensor(weights, dtype=torch.float64)[masks[valid]]
    assert float(loss.detach()) == pytest.approx(float((w * nll).sum() / w.sum()), rel=1e-9)
    assert (
        make_task("segment", {"class_names": ["a", "b", "c"], "class_weights": weights}).class_weights.tolist()
        == weights
    )


def test_foreground_iou_merges_every_class_but_background():
    # rows true, columns predicted: background, two foreground classes
    confusion = torch.tensor([[10, 1, 2], [3, 4, 5], [0, 6, 7]])
    both, false_pos, false_neg = 4 + 5 + 6 + 7, 1 + 2, 3 + 0
    assert foreground_iou(confusion) == pytest.approx(both / (both + false_pos + false_neg))
    task = SegmentationTask(["background", "horse"])
    metrics = task.finalize({"confusion": torch.tensor([[6, 2], [1, 3]]), "n": torch.tensor(2)})
    assert metrics["foreground_iou"] == pytest.approx(3 / 6) == metrics["per_class_iou"][1]
    assert "foreground_iou" not in SegmentationTask(["Sky", "Road"]).finalize(
        {"confusion": torch.eye(2), "n": torch.tensor(1)}
    )


class _LocalConv(nn.Module):
    """Two 3x3 convolutions (receptive field radius 2) that insist on one input size, like a fixed-size model."""

    def __init__(self, input_size: tuple[int, int] | None) -> None:
        super().__init__()
        self.input_size = input_size
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Tanh(), nn.Conv2d(6, 4, 3, padding=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


@pytest.mark.parametrize("tile", [(16, 16), (20, 13), (33, 47)])
def test_tiles_with_overlap_give_the_one_pass_logits(tile):
    torch.manual_seed(0)
    model = _LocalConv(None).double()
    images = torch.rand(2, 3, 33, 47, dtype=torch.float64)
    whole = segment_full(model, images)
    tiled = segment_full(model, images, tile=tile, overlap=4)  # overlap // 2 = 2 = the receptive radius
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-12)
    if tile != (33, 47):  # too little overlap leaves tile borders in: the check can fail
        assert not torch.allclose(segment_full(model, images, tile=tile, overlap=2), whole, atol=1e-6)


def test_mirror_averaging_is_the_mean_of_both_passes_and_commutes_with_the_mirror():
    """MirrorAveraged(x) = (m(x) + mirror(m(mirror(x)))) / 2, so mirroring the input mirrors its output."""
    torch.manual_seed(0)
    model = _LocalConv(None).double()
    averaged = MirrorAveraged(model)
    images = torch.rand(2, 3, 9, 14, dtype=torch.float64)
    expected = (model(images) + model(images.flip(-1)).flip(-1)) / 2
    torch.testing.assert_close(averaged(images), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(averaged(images.flip(-1)), averaged(images).flip(-1), rtol=0, atol=1e-12)
    assert not torch.allclose(model(images.flip(-1)), model(images).flip(-1), atol=1e-6)  # the model alone does not


def test_predict_tiles_a_fixed_size_model_and_passes_any_size_models_whole(tmp_path):
    from PIL import Image

    torch.manual_seed(0)
    Image.fromarray((np.random.default_rng(0).random((30, 41, 3)) * 255).astype(np.uint8)).save(tmp_path / "x.png")
    meta = {"class_names": ["a", "b", "c", "d"], "in_chans": 3, "img_size": None}
    free, fixed = _LocalConv(None), _LocalConv((16, 16))
    fixed.load_state_dict(free.state_dict())
    calls = []
    fixed.register_forward_hook(lambda module, args, out: calls.append(tuple(args[0].shape[-2:])))
    results = [predict((m, {"task": "segment", "meta": meta}), [tmp_path / "x.png"]) for m in (free, fixed)]
    assert results[0] == results[1] and set(calls) == {(16, 16)} and len(calls) > 4


def test_predict_draws_camvid_in_its_palette_with_a_legend(tmp_path):
    from PIL import Image

    from rnnvision.data.camvid import CLASS_COLOURS, CLASS_NAMES

    Image.fromarray(np.full((12, 16, 3), 128, dtype=np.uint8)).save(tmp_path / "street.png")
    meta = {"name": "camvid", "class_names": list(CLASS_NAMES), "in_chans": 3, "img_size": None}
    logits = torch.zeros(1, 11, 12, 16)
    logits[:, 3, :6], logits[:, 8, 6:] = 1.0, 1.0  # road above, car below
    [result] = predict(
        (_Constant(logits), {"task": "segment", "meta": meta}), [tmp_path / "street.png"], out_dir=str(tmp_path / "out")
    )
    mask = Image.open(result["mask"])
    palette = np.array(mask.getpalette()[:33]).reshape(11, 3)
    assert mask.mode == "P" and palette.tolist() == [list(c) for c in CLASS_COLOURS]
    assert result["classes"] == {"Road": 0.5, "Car": 0.5}
    overlay = np.asarray(Image.open(result["overlay"]))
    assert overlay[0, 0].tolist() == [128, 96, 128]  # grey blended half with road (128, 64, 128)
    assert Image.open(result["legend"]).size[0] > 300
