"""Datasets: one file each, one registry. Importing this package registers them all."""

from rnnvision.data import binarized, digits, idx, image_folder  # noqa: F401  (registers the datasets)
from rnnvision.data import digit_strings, iiit5k, synth_words, text_folder  # noqa: F401  (recognition sets)
from rnnvision.data import camvid, digit_scenes, mask_folder, weizmann_horse  # noqa: F401  (segmentation sets)
from rnnvision.data import long_range  # noqa: F401  (adding, copy-memory: synthetic long-range sequences)
from rnnvision.data.base import ArrayImageDataset, DatasetInfo
from rnnvision.data.registry import build_dataset, get_dataset_entry, list_datasets, register_dataset
from rnnvision.data.root import RemoteFiles, data_root

__all__ = [
    "ArrayImageDataset",
    "DatasetInfo",
    "RemoteFiles",
    "build_dataset",
    "data_root",
    "get_dataset_entry",
    "list_datasets",
    "register_dataset",
]
