"""The weights registry: what each shipped file holds, read from ``shipped/catalogue.json``.

An entry names the model, the recipe (and its stage, for a recipe trained in stages) and run that trained it, the dataset, the test metrics
measured on the stored weights (full test split), the file with its SHA-256, and the ``config``
and ``meta`` a checkpoint carries, so the model is rebuilt from them alone (no pickle anywhere).
Reading the catalogue does not import torch: ``rnnvision list-weights`` stays quick.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rnnvision.errors import UserError

FOLDER = Path(__file__).resolve().parent / "shipped"  # catalogue.json and the .safetensors files it names
CATALOGUE = "catalogue.json"
FORMAT = "rnnvision.weights"
FORMAT_VERSION = 1
NAME = re.compile(r"[a-z0-9][a-z0-9_]*")  # a weights name; anything else given as a source is a path
NORMALIZATION = "float32 pixels / 255 in [0, 1]"  # what every rnnvision model reads (data.transforms.load_image)
# how far a reloaded file's test metric may sit from the catalogue's: 0.1 point of a fraction, 0.2 nats
TOLERANCE = {"nll_nats": 0.2}
DEFAULT_TOLERANCE = 0.001
MAX_FILE_BYTES, MAX_TOTAL_BYTES = 2_000_000, 12_000_000  # what the package may carry: 2 MB a file, 12 MB in all


@dataclass(frozen=True)
class WeightsEntry:
    """One shipped set of weights (see the module docstring); ``dtype`` is how the file stores them."""

    name: str
    model: str
    task: str
    recipe: str
    dataset: str
    metric: str
    test_metrics: dict[str, Any]
    float32_test_metrics: dict[str, Any]
    file: str
    sha256: str
    bytes: int
    dtype: str
    num_params: int
    config: dict[str, Any]
    meta: dict[str, Any]
    url: str | None = None
    stage: int = 1  # which stage of the recipe (its stages: list) trained the weights

    @property
    def value(self) -> float:
        """The headline test metric (the task's own: accuracy, word accuracy, mean IoU, NLL in nats)."""
        return float(self.test_metrics[self.metric])

    @property
    def preprocessing(self) -> dict[str, Any]:
        """What an input must be made into: size, channels, scaling, and the classes or charset read out."""
        meta = self.meta
        out: dict[str, Any] = {
            "img_size": list(meta["img_size"]) if meta.get("img_size") else None,
            "in_chans": meta.get("in_chans", 1),
            "normalization": NORMALIZATION,
        }
        if meta.get("class_names"):
            out["class_names"] = list(meta["class_names"])
        if meta.get("charset"):
            out["charset"] = meta["charset"]
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def metric_tolerance(metric: str) -> float:
    return TOLERANCE.get(metric, DEFAULT_TOLERANCE)


def format_metric(metric: str, value: float) -> str:
    """``accuracy 98.91 %`` for fractions, ``nll_nats 80.12`` for nats."""
    return f"{metric} {value:.2f}" if metric in TOLERANCE else f"{metric} {100 * value:.2f} %"


@functools.lru_cache(maxsize=4)
def _read(folder: Path) -> dict[str, WeightsEntry]:
    path = folder / CATALOGUE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} catalogue of version {FORMAT_VERSION}")
        entries = [WeightsEntry(**item) for item in raw["weights"]]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UserError(
            f"{path} is damaged ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); reinstall rnnvision"
        ) from None
    return {entry.name: entry for entry in entries}


def read_catalogue(folder: Path | None = None) -> dict[str, WeightsEntry]:
    """Every entry of the catalogue in ``folder`` (default: the package's), by name."""
    return _read((folder or FOLDER).resolve())


def list_weights() -> list[str]:
    """Names of the shipped weights, sorted."""
    return sorted(read_catalogue())


def get_weights(name: str) -> WeightsEntry:
    """The entry called ``name``; an unknown name is a one-line error listing the known ones."""
    entries = read_catalogue()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise UserError(f"no shipped weights named {name!r}; known: {known} (rnnvision list-weights)")
    return entries[name]


def is_weights_name(source: str | Path) -> bool:
    """Whether ``source`` is spelled like a weights name (lower-case letters, digits, ``_``), not a path."""
    return isinstance(source, str) and NAME.fullmatch(source) is not None


def write_entry(entry: WeightsEntry, folder: Path) -> Path:
    """Add ``entry`` to the catalogue in ``folder``, replacing one of the same name; atomic; returns the path."""
    from rnnvision.files import atomic_write_text

    entries = dict(read_catalogue(folder))
    entries[entry.name] = entry
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights": [entries[name].to_json() for name in sorted(entries)],
    }
    path = folder / CATALOGUE
    atomic_write_text(path, json.dumps(body, indent=1) + "\n")
    _read.cache_clear()
    return path
