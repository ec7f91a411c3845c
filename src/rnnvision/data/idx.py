"""MNIST and Fashion-MNIST from their original IDX gzip files.

Splits: ``test`` is the official 10,000-image test set; ``train`` is the official training set
minus a validation hold-out of ``val_size`` images (the last ``val_size`` of the file, as in
Le et al. 2015 and most RNN papers), which form ``val``. ``val_size=0`` trains on all 60,000 and
validates on the test set; say so wherever such a result is reported.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from rnnvision.data.base import ArrayImageDataset, classification_info
from rnnvision.data.registry import register_dataset
from rnnvision.data.root import RemoteFiles
from rnnvision.errors import UserError

MAX_IDX_BYTES = 1 << 28  # 268 MB; the largest real IDX file (MNIST train images) is 47 MB
TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# The validation hold-out of every MNIST classification set (mnist, fashion-mnist, and the digits of
# digit-strings and digit-scenes): the last 5,000 training images, as Le et al. 2015. binarized-mnist
# keeps the generative models' 50,000 / 10,000 split (Larochelle & Murray 2011) as its own default.
VAL_SIZE = 5000

MNIST = RemoteFiles(
    folder="mnist",
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
)
FASHION_MNIST = RemoteFiles(
    folder="fashion-mnist",
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    content_md5={  # the decompressed IDX files (Debian's package re-writes the gzip headers only)
        "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
    },
)
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def read_idx(path: Path) -> np.ndarray:
    """Read a gzip IDX file (unsigned-byte data): magic 0x0000 0x08 ndim, then ndim big-endian sizes."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path} is not a gzip file ({exc.__class__.__name__}); download it again") from None
    if len(data) > MAX_IDX_BYTES:
        raise UserError(f"{path} decompresses to more than {MAX_IDX_BYTES:,} bytes; it is not an MNIST-style IDX file")
    if len(data) < 4:
        raise UserError(f"{path} is not an unsigned-byte IDX file (too short)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4 or len(data) < 4 + 4 * ndim:
        raise UserError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != math.prod(shape):
        raise UserError(f"{path} holds {array.size} values, its header promises {shape}")
    return array.reshape(shape)


def mnist_split(
    folder: Path, split: str, *, val_size: int = VAL_SIZE, empty_val: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The one MNIST train/val cut: images (N, H, W) uint8 and labels (N,) of ``split``.

    ``test`` is the official test file; ``val`` the last ``val_size`` images of the training file
    and ``train`` the rest. ``val_size`` lies in [0, training images), or (0, ...) without ``empty_val``.
    """
    images_file, labels_file = TEST_FILES if split == "test" else TRAIN_FILES
    images, labels = read_idx(folder / images_file), read_idx(folder / labels_file)
    if split != "test":
        if not (0 if empty_val else 1) <= val_size < len(labels):
            raise UserError(f"val_size must lie in {'[' if empty_val else '('}0, {len(labels)}), got {val_size}")
        cut = len(labels) - val_size
        images, labels = (images[:cut], labels[:cut]) if split == "train" else (images[cut:], labels[cut:])
    return images, labels


def _idx_dataset(
    remote: RemoteFiles,
    classes: tuple[str, ...],
    *,
    split: str,
    root: str | Path | None,
    download: bool,
    val_size: int,
    max_shift: int,
) -> ArrayImageDataset:
    folder = remote.fetch(root, download=download)
    images, labels = mnist_split(folder, "test" if split == "val" and val_size == 0 else split, val_size=val_size)
    info = classification_info(remote.folder, classes, in_chans=1, img_size=images.shape[-2:])
    return ArrayImageDataset(images, labels, info, max_shift=max_shift if split == "train" else 0)


@register_dataset("mnist", task="classify")
def mnist(
    *, split: str, root: str | Path | None = None, download: bool = False, val_size: int = VAL_SIZE, max_shift: int = 0
) -> ArrayImageDataset:
    """MNIST digits, 28x28 grey; ``max_shift`` pixels of random translation on the train split."""
    return _idx_dataset(
        MNIST, MNIST_CLASSES, split=split, root=root, download=download, val_size=val_size, max_shift=max_shift
    )


@register_dataset("fashion-mnist", task="classify")
def fashion_mnist(
    *, split: str, root: str | Path | None = None, download: bool = False, val_size: int = VAL_SIZE, max_shift: int = 0
) -> ArrayImageDataset:
    """Fashion-MNIST clothing, 28x28 grey, 10 classes."""
    return _idx_dataset(
        FASHION_MNIST,
        FASHION_CLASSES,
        split=split,
        root=root,
        download=download,
        val_size=val_size,
        max_shift=max_shift,
    )
