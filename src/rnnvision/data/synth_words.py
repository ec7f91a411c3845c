"""Printed words rendered on the fly: synthetic data to pretrain recognizers (no network needed).

Fonts: the TrueType fonts matplotlib ships (the DejaVu, STIX and Computer Modern families) and
any ``*.ttf`` / ``*.otf`` system fonts matplotlib's font manager finds, keeping those whose
glyphs cover the charset (symbol-only fonts are skipped). Words: 70 % from a vocabulary, 10 %
random numbers, 20 % random strings of the charset; written in lower case, Title case or UPPER
case. The default vocabulary is every word of two or more letters in the English text that
ships with Python (``pydoc_data``) and scikit-learn (its dataset descriptions) — about 3,900
words, none taken from any test set; ``vocab_file`` (one word per line) replaces it.

Each image: random font and size, text and background colours with a minimum contrast, plain,
gradient or noise backgrounds, sometimes an outline or a shadow, sometimes extra letter spacing;
then the word-crop jitter of :func:`rnnvision.data.text.augment_word` (crop/pad, shear,
rotation, stretch, blur, contrast, inversion) and pixel noise. Val and test image ``i`` depend
only on ``(seed, split, i)``; train images are drawn afresh on every read from torch's global
RNG, which the trainer seeds per epoch.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from torch import Tensor

from rnnvision.data.base import DatasetInfo, InfoDataset, read_utf8
from rnnvision.data.registry import register_dataset
from rnnvision.data.text import ALNUM, LOWER_ALNUM, augment_word, check_texts, item_rng, text_info, word_tensor
from rnnvision.errors import UserError

_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_SYMBOL_FONTS = ("LastResort", "cmex", "cmsy", "STIXSiz", "STIXNonUni")  # no letters, or boxes for every glyph


def _font_files() -> list[Path]:
    import matplotlib
    from matplotlib import font_manager

    bundled = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    found = {p.name: p for p in sorted(bundled.glob("*.ttf"))}
    for name in sorted(font_manager.findSystemFonts()):
        path = Path(name)
        if path.suffix.lower() in (".ttf", ".otf"):
            found.setdefault(path.name, path)
    return [found[name] for name in sorted(found) if not name.startswith(_SYMBOL_FONTS)]


def _covers(path: Path, charset: str) -> bool:
    """Every character has a glyph, and the glyphs differ (a font of empty boxes fails)."""
    from matplotlib.ft2font import FT2Font

    try:
        face = FT2Font(str(path))
        if any(face.get_char_index(ord(c)) == 0 for c in charset):
            return False
        font = ImageFont.truetype(str(path), 24)
    except (OSError, RuntimeError, ValueError):
        return False
    shapes = {bytes(font.getmask(c)) for c in charset}  # (the core image iterates over its pixels)
    return len(shapes) >= 0.9 * len(charset)


@functools.lru_cache(maxsize=8)
def available_fonts(charset: str) -> tuple[Path, ...]:
    """Font files (bundled with matplotlib, and system fonts) that can render ``charset``."""
    fonts = tuple(p for p in _font_files() if _covers(p, charset))
    if not fonts:
        raise UserError(f"synth-words: no font found that renders every character of {charset!r}")
    return fonts


@functools.lru_cache(maxsize=1)
def default_vocabulary() -> tuple[str, ...]:
    """Words of two or more letters from the English text bundled with Python and scikit-learn."""
    import pydoc_data.topics

    import sklearn

    texts = list(pydoc_data.topics.topics.values())
    texts += [
        f.read_text(encoding="utf-8")
        for f in sorted((Path(sklearn.__file__).parent / "datasets" / "descr").glob("*.rst"))
    ]
    return tuple(sorted({w.lower() for w in re.findall(r"[A-Za-z]{2,}", " ".join(texts))}))


def random_text(rng: np.random.Generator, vocabulary: tuple[str, ...], *, max_length: int) -> str:
    """A word, a number or a random alphanumeric string, in a random case."""
    kind = rng.random()
    if kind < 0.7:
        text = vocabulary[int(rng.integers(len(vocabulary)))]
    elif kind < 0.8:
        text = "".join(rng.choice(list("0123456789"), size=int(rng.integers(1, 7))))
    else:
        text = "".join(rng.choice(list(LOWER_ALNUM), size=int(rng.integers(1, 11))))
    case = rng.random()
    text = text.upper() if case < 0.3 else text.capitalize() if case < 0.6 else text
    return text[:max_length]


def _colours(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(text RGB, background RGB) whose grey levels differ by at least 70."""
    background = rng.integers(0, 256, size=3)
    grey = background @ np.array([0.299, 0.587, 0.114])
    target = rng.uniform(0, max(grey - 70, 0)) if (grey > 128) else rng.uniform(min(grey + 70, 255), 255)
    text = np.clip(target + rng.normal(0, 40, size=3), 0, 255)
    text += target - text @ np.array([0.299, 0.587, 0.114])  # put its grey level back on target
    return tuple(int(v) for v in np.clip(text, 0, 255)), tuple(int(v) for v in background)


def _background(rng: np.random.Generator, size: tuple[int, int], colour: tuple[int, ...]) -> Image.Image:
    w, h = size
    base = np.ones((h, w, 3), np.float32) * np.array(colour, np.float32)
    kind = rng.random()
    if kind < 0.3:  # linear gradient
        ramp = np.linspace(-1, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
        ramp = ramp[None, :, None] if len(ramp) == w else ramp[:, None, None]
        base = base + ramp * rng.uniform(10, 50)
    elif kind < 0.6:  # blurred noise texture
        texture = Image.fromarray(rng.normal(128, 60, size=(h, w)).clip(0, 255).astype(np.uint8))
        noise = np.asarray(texture.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3))), np.float32) - 128
        base = base + noise[..., None] * rng.uniform(0.2, 0.6)
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


def render_word(text: str, font_path: Path, rng: np.random.Generator) -> Image.Image:
    """One RGB image of ``text`` (before resizing to the dataset height)."""
    size = int(rng.integers(28, 49))
    font = ImageFont.truetype(str(font_path), size)
    fg, bg = _colours(rng)
    stroke = int(rng.integers(1, 3)) if rng.random() < 0.15 else 0
    spacing = rng.uniform(0.02, 0.25) * size if rng.random() < 0.25 else 0.0
    ascent, descent = font.getmetrics()
    advances = [font.getlength(c) + spacing for c in text] if spacing else [font.getlength(text)]
    margin_x, margin_y = (int(v) for v in rng.integers(1, max(2, size // 3), size=2))
    width = int(sum(advances)) + 2 * margin_x + 2 * stroke + 2
    height = ascent + descent + 2 * margin_y + 2 * stroke
    canvas = _background(rng, (width, height), bg)
    draw = ImageDraw.Draw(canvas)
    stroke_fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
    if rng.random() < 0.1:  # shadow
        offset = int(rng.integers(1, 3))
        shade = tuple(int(v * 0.5) for v in bg)
        draw.text((margin_x + stroke + offset, margin_y + stroke + offset), text, font=font, fill=shade)
    pieces = list(text) if spacing else [text]
    x: float = margin_x + stroke
    for piece, advance in zip(pieces, advances):
        draw.text((x, margin_y + stroke), piece, font=font, fill=fg, stroke_width=stroke, stroke_fill=stroke_fill)
        x += advance
    image = augment_word(canvas, rng)
    noisy = np.asarray(image, np.float32) + rng.normal(0, rng.uniform(0, 12), size=(image.size[1], image.size[0], 3))
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


class SynthWordsDataset(InfoDataset):
    """Items ``(image, text)`` rendered on demand; see the module docstring."""

    def __init__(
        self,
        info: DatasetInfo,
        *,
        size: int,
        split: str,
        seed: int,
        fonts: tuple[Path, ...],
        vocabulary: tuple[str, ...],
        case_sensitive: bool,
        max_length: int,
    ) -> None:
        self.info, self.size, self.split, self.seed = info, size, split, seed
        self.fonts, self.vocabulary, self.case_sensitive, self.max_length = (
            fonts,
            vocabulary,
            case_sensitive,
            max_length,
        )

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[Tensor, str]:
        if not 0 <= index < self.size:
            raise IndexError(index)
        rng = (
            item_rng() if self.split == "train" else np.random.default_rng([self.seed, _SPLIT_CODE[self.split], index])
        )
        text = random_text(rng, self.vocabulary, max_length=self.max_length)
        image = render_word(text, self.fonts[int(rng.integers(len(self.fonts)))], rng)
        assert self.info.img_size is not None  # set in __init__
        height, max_width = self.info.img_size
        label = text if self.case_sensitive else text.lower()
        return word_tensor(image, channels=self.info.in_chans, height=height, max_width=max_width), label


@register_dataset("synth-words", task="recognize")
def synth_words(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    case_sensitive: bool = False,
    vocab_file: str = "",
    max_length: int = 16,
    train_size: int = 20000,
    val_size: int = 1000,
    test_size: int = 1000,
    height: int = 32,
    max_width: int = 320,
    in_chans: int = 1,
    seed: int = 0,
) -> SynthWordsDataset:
    """Printed words rendered with random fonts, colours, backgrounds and distortions."""
    charset = ALNUM if case_sensitive else LOWER_ALNUM
    if vocab_file:
        path = Path(vocab_file).expanduser()
        if not path.is_file():
            raise UserError(f"synth-words: vocab_file {path} not found")
        vocabulary = tuple(w.strip() for w in read_utf8(path).splitlines() if w.strip())
        check_texts(vocabulary if case_sensitive else (w.lower() for w in vocabulary), charset, source=str(path))
    else:
        vocabulary = default_vocabulary()
    size = {"train": train_size, "val": val_size, "test": test_size}[split]
    info = text_info("synth-words", charset, in_chans=in_chans, height=height, max_width=max_width)
    return SynthWordsDataset(
        info,
        size=size,
        split=split,
        seed=seed,
        fonts=available_fonts(ALNUM),
        vocabulary=vocabulary,
        case_sensitive=case_sensitive,
        max_length=max_length,
    )
