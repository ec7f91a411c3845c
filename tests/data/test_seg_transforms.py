"""Joint segmentation transforms keep every mask aligned with its image (and void where padded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnvision.data.base import DatasetInfo
from rnnvision.data.seg_transforms import AugmentedSegmentation, SegAugment, photometric_jitter
from rnnvision.data.segmentation import IGNORE_INDEX, ArraySegmentationDataset

# class k is drawn in colour COLOURS[k]: 0 red, 1 green, 2 blue (dominant channel = class), 3 grey
COLOURS = torch.tensor([[0.7, 0.1, 0.1], [0.1, 0.7, 0.1], [0.1, 0.1, 0.7], [0.4, 0.4, 0.4]])


def _pattern(height: int = 63, width: int = 81, block: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocks of random classes (mask) painted in their class colours (image); a void stripe on the left."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 4, size=(height // block + 1, width // block + 1))
    mask = torch.from_numpy(np.kron(blocks, np.ones((block, block), dtype=np.int64))[:height, :width])
    image = COLOURS[mask].permute(2, 0, 1).contiguous()  # (3, H, W)
    mask[:, :3] = IGNORE_INDEX  # void pixels keep their colour but carry no label
    return image, mask


def _decode(image: torch.Tensor) -> torch.Tensor:
    """Class of each pixel from its colour: the dominant channel, or grey (3) when no channel dominates."""
    top2 = image.topk(2, dim=0).values
    return torch.where(top2[0] - top2[1] > 0.15, image.argmax(dim=0), torch.full_like(image[0], 3, dtype=torch.long))


def _aligned(image: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """Share of checked pixels whose decoded colour matches the mask, and how many were checked.

    Checked: labelled pixels whose 3x3 neighbourhood holds one label only (block interiors: there
    bilinear resampling cannot mix two colours), so a mask shifted by 2 pixels or more is caught.
    """
    padded = torch.nn.functional.pad(mask[None, None].float(), (1, 1, 1, 1), value=-1.0)
    patches = padded.unfold(2, 3, 1).unfold(3, 3, 1)[0, 0]  # (H, W, 3, 3)
    uniform = (patches == mask[..., None, None]).all(-1).all(-1) & (mask != IGNORE_INDEX)
    checked = int(uniform.sum())
    agree = (_decode(image) == mask)[uniform]
    return float(agree.float().mean()) if checked else 0.0, checked


TRANSFORMS = {
    "scale down": SegAugment(scale=(0.55, 0.75)),
    "scale up": SegAugment(scale=(1.3, 1.9)),
    "crop": SegAugment(crop=(31, 40)),
    "crop larger than image": SegAugment(crop=(70, 90)),
    "flip": SegAugment(hflip=True),
    "jitter": SegAugment(jitter=0.3),
    "everything": SegAugment(scale=(0.6, 1.6), crop=(40, 48), hflip=True, jitter=0.3),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_mask_stays_aligned_with_image(name):
    augment = TRANSFORMS[name]
    image, mask = _pattern()
    assert _aligned(image, mask) == (1.0, _aligned(image, mask)[1])  # the decoder reads the pattern exactly
    geometric_identity = augment.crop is None and augment.scale == (1.0, 1.0)  # only a flip can move pixels
    flipped = 0
    for draw in range(12):
        out_image, out_mask = augment(image, mask, np.random.default_rng([0, draw]))
        assert out_image.shape[-2:] == out_mask.shape and out_mask.dtype == torch.int64
        assert set(out_mask.unique().tolist()) <= {0, 1, 2, 3, IGNORE_INDEX}  # nearest never invents labels
        share, checked = _aligned(out_image, out_mask)
        assert checked > 100 and share == 1.0, (name, draw, share, checked)
        if augment.crop is not None:
            assert tuple(out_mask.shape) == augment.crop
        if geometric_identity:
            flipped += torch.equal(out_mask, mask.flip(-1))
            assert torch.equal(out_mask, mask) or torch.equal(out_mask, mask.flip(-1))
    if augment.hflip and geometric_identity:
        assert 0 < flipped < 12  # both outcomes happen


def test_the_alignment_check_catches_a_misaligned_mask():
    image, mask = _pattern()
    assert _aligned(image, mask.roll(2, dims=1))[0] < 0.95  # two pixels off is seen (the tests above ask for 1.0)
    assert _aligned(image, mask.roll(-2, dims=0))[0] < 0.95
    assert _aligned(image.flip(-1), mask)[0] < 0.9


def test_padding_is_void_and_void_is_carried():
    image, mask = _pattern(height=20, width=24)
    out_image, out_mask = SegAugment(crop=(30, 30))(image, mask, np.random.default_rng(0))
    assert (out_mask[20:] == IGNORE_INDEX).all() and (out_mask[:, 24:] == IGNORE_INDEX).all()
    assert (out_image[:, 20:] == 0).all() and (out_image[:, :, 24:] == 0).all()
    assert (out_mask[:20, :3] == IGNORE_INDEX).all() and torch.equal(out_mask[:20, :24], mask)
    _, scaled = SegAugment(scale=(2.0, 2.0))(image, mask, np.random.default_rng(0))
    assert (scaled[:, :6] == IGNORE_INDEX).all() and (scaled[:, 6:] != IGNORE_INDEX).all()  # void stripe, twice as wide


def test_jitter_changes_the_image_only_and_stays_in_range():
    image, mask = _pattern()
    out_image, out_mask = SegAugment(jitter=0.4)(image, mask, np.random.default_rng(3))
    assert torch.equal(out_mask, mask) and not torch.allclose(out_image, image)
    assert out_image.min() >= 0 and out_image.max() <= 1
    assert torch.allclose(photometric_jitter(image, 1.0, 1.0, 1.0), image)
    assert torch.allclose(photometric_jitter(image, 1.2, 1.0, 1.0), (image * 1.2).clamp(0, 1))
    grey = photometric_jitter(image, 1.0, 1.0, 0.0)
    assert torch.allclose(grey[0], grey[1]) and torch.allclose(grey[1], grey[2])  # saturation 0 is grey


def test_augmented_dataset_is_seeded_per_sample_and_epoch():
    image, mask = _pattern()
    info = DatasetInfo(name="pattern", task="segment", class_names=("r", "g", "b", "grey"), in_chans=3)
    base = ArraySegmentationDataset(
        (image.numpy() * 255).round().astype(np.uint8)[None].repeat(3, 0),
        mask.numpy().astype(np.uint8)[None].repeat(3, 0),
        info,
    )
    augment = SegAugment(scale=(0.5, 1.5), crop=(24, 24), hflip=True, jitter=0.2)
    data, again = AugmentedSegmentation(base, augment, seed=1), AugmentedSegmentation(base, augment, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(data[0], again[0]))  # same seed, epoch, index: same sample
    assert not torch.equal(data[0][0], data[1][0])  # another index: another draw of the same picture
    first = data[0][0]
    data.set_epoch(1)
    assert not torch.equal(data[0][0], first)
    assert np.array_equal(data.mask(0), mask.numpy().astype(np.uint8))  # class statistics see the raw masks


def test_bad_augment_options_raise():
    with pytest.raises(ValueError, match="scale"):
        SegAugment(scale=(1.5, 1.0))
    with pytest.raises(ValueError, match="crop"):
        SegAugment(crop=(0, 4))
    with pytest.raises(ValueError, match="jitter"):
        SegAugment(jitter=1.5)
