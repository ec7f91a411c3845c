"""The 2D-recurrence models: segmenters keep any input size, the ReNet classifier checks its size."""

from __future__ import annotations

import pytest
import torch

from rnnvision.errors import UserError
from rnnvision.models import create_model, list_models
from tests.conftest import assert_close_scaled


def test_the_2d_models_are_registered_for_their_tasks():
    assert "renet" in list_models("classify")
    assert {"reseg", "mdlstm_seg"} <= set(list_models("segment"))


@pytest.mark.parametrize(
    "name,options",
    [
        ("reseg", {"hidden_sizes": (4, 4), "decoder_chans": 5}),
        ("reseg", {"hidden_sizes": (3,), "patch_sizes": (3,), "decoder_chans": 4, "input_skip": False, "cell": "gru"}),
        ("reseg", {"hidden_sizes": (3, 4), "decoder_chans": 4, "stem_chans": (5, 6)}),
        ("reseg", {"hidden_sizes": (3, 4), "decoder_chans": 4, "stem_chans": (5,), "pooled_chans": (6, 7)}),
        ("reseg", {"hidden_sizes": (3,), "patch_sizes": (1,), "decoder_chans": 4, "pooled_chans": (5,)}),
        ("mdlstm_seg", {"hidden_sizes": (3, 4), "patch_size": 2}),
        (
            "mdlstm_seg",
            {"hidden_sizes": (3,), "patch_size": 1, "directions": 2, "merge": "concat", "input_skip": False},
        ),
    ],
)
@pytest.mark.parametrize("size", [(1, 9), (9, 1), (5, 7), (8, 8)])
def test_segmenters_return_logits_at_the_input_resolution(name, options, size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=6, in_chans=3, **options)
    assert model(torch.rand(2, 3, *size)).shape == (2, 6, *size)


def test_segmenters_label_each_image_of_a_batch_on_its_own():
    """Each image of a batch is labelled as if it were alone (no mixing across the batch)."""
    torch.manual_seed(1)
    model = create_model("reseg", num_classes=3, hidden_sizes=(4, 4), decoder_chans=4).eval()
    images = torch.rand(3, 1, 10, 6)
    with torch.no_grad():
        together = model(images)
        alone = torch.cat([model(images[i : i + 1]) for i in range(3)])
    assert_close_scaled(together, alone, atol=1e-5)


def test_reseg_front_end_feeds_the_encoder_and_the_skip():
    """With ``stem_chans`` the ReNet layers and the pixel classifier read the front end's channels, not the pixels."""
    model = create_model("reseg", num_classes=4, in_chans=3, hidden_sizes=(4, 4), decoder_chans=5, stem_chans=(6, 7))
    convs = [m for m in model.stem if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(3, 6, (3, 3)), (6, 7, (3, 3))]
    assert model.encoder[0].in_chans == 7
    assert model.classifier.layers[0].in_channels == 5 + 7
    plain = create_model("reseg", num_classes=4, in_chans=3, hidden_sizes=(4, 4), decoder_chans=5)
    assert len(plain.stem) == 0 and plain.classifier.layers[0].in_channels == 5 + 3


def test_reseg_pooled_stage_halves_what_the_encoder_reads_and_the_skip_stays_at_full_resolution():
    """``pooled_chans``: 2x2 max-pool then 3x3 convolutions feed the encoder; one more 2x upsampling; skip unchanged."""
    model = create_model(
        "reseg", num_classes=4, in_chans=3, hidden_sizes=(4, 4), decoder_chans=5, stem_chans=(6,), pooled_chans=(7, 8)
    )
    assert isinstance(model.pooled[0], torch.nn.MaxPool2d) and model.stride == 2 * 2 * 2
    assert model.encoder[0].in_chans == 8
    assert model.classifier.layers[0].in_channels == 5 + 6
    assert len([m for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)]) == 3
    seen = []
    model.encoder.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape))
    assert model(torch.rand(2, 3, 9, 17)).shape == (2, 4, 9, 17)
    assert seen == [(2, 8, 16 // 2, 24 // 2)]  # padded to multiples of 8, then pooled


def test_renet_classifier_needs_a_size_its_patches_divide():
    model = create_model("renet", num_classes=7, img_size=(12, 8), hidden_sizes=(4, 5), head_hidden=6)
    assert model(torch.rand(3, 1, 12, 8)).shape == (3, 7)
    with pytest.raises(UserError, match="multiple of the product of patch_sizes"):
        create_model("renet", img_size=30)
    with pytest.raises(UserError, match="equally long"):
        create_model("renet", hidden_sizes=(4, 4), patch_sizes=(2,))


@pytest.mark.parametrize(
    "name,options,steps,lr",
    [
        ("reseg", {"hidden_sizes": (8, 8), "decoder_chans": 8}, 300, 1e-2),
        ("mdlstm_seg", {"hidden_sizes": (8, 8), "head_chans": 8}, 400, 2e-2),
    ],
)
def test_segmenters_learn_to_label_a_few_digit_scenes(name, options, steps, lr):
    """Both segmenters fit 8 small canvases well beyond labelling everything background (mean IoU 0.13)."""
    from rnnvision.data import build_dataset
    from rnnvision.tasks.segment import confusion_matrix, iou_metrics

    scenes = build_dataset("digit-scenes", split="train", train_images=8, canvas_size=32, min_digits=1, max_digits=2)
    images, masks = scenes.images.float() / 255, scenes.masks.long()  # (8, 1, 32, 32), (8, 32, 32)
    torch.manual_seed(0)
    model = create_model(name, num_classes=11, **options)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        metrics = iou_metrics(confusion_matrix(masks, model(images).argmax(dim=1), 11))
    assert metrics["mean_iou"] > 0.5, metrics
