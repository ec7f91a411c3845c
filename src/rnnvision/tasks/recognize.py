"""Text recognition with CTC: variable-width batches, CTC loss, decoding, text metrics, predict.

Batches (:meth:`RecognitionTask.collate`) are dicts, items sorted by decreasing width::

    images          (B, C, H, W_max)  right-padded with zeros
    widths          (B,)              each image's true width
    targets         (sum of L_b,)     the texts as class indices (blank = 0, charset[i] = i + 1)
    target_lengths  (B,)
    texts           list of B strings
    order           (B,)              position of each item in the list given to collate

Because the items are sorted by width, the loss and the evaluation run a batch as micro-batches
of ``MICRO_BATCH`` neighbours, each padded only to its own widest image: with widths spread
over 20-250 pixels this skips about a third of the padded columns a whole batch would compute.
The loss is the size-weighted mean over the micro-batches, the same mean over the batch.

The model maps (images, widths) to (B, T, K) scores and says how many of the T columns each
image fills (``output_lengths``); the CTC loss and the decoders respect those lengths.
Decoding is greedy by default; ``beam_width`` > 0 selects CTC prefix beam search and a
``lexicon`` restricts the output to its words (see :mod:`rnnvision.ops.ctc`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from rnnvision.data.base import InfoDataset, read_utf8
from rnnvision.data.text import MIN_WIDTH, word_tensor
from rnnvision.data.transforms import image_size
from rnnvision.errors import UserError
from rnnvision.ops.ctc import (
    ctc_beam_search,
    ctc_character_spans,
    ctc_forced_align,
    ctc_greedy_decode,
    ctc_lexicon_decode,
    ctc_log_likelihoods,
)
from rnnvision.outputs import check_output_file
from rnnvision.tasks.base import Batch, Task, register_task, to_device
from rnnvision.tasks.text_metrics import text_counts, text_metrics

BLANK = 0
MICRO_BATCH = 16


class LineReader(Protocol):
    """What decoding needs of a recognition model besides its forward pass (CRNN has it)."""

    def output_lengths(self, widths: Tensor) -> Tensor: ...  # (B,) image widths -> (B,) output columns


def _unwrap(model: nn.Module) -> LineReader:
    return cast(LineReader, getattr(model, "module", model))  # DistributedDataParallel keeps the model in .module


@register_task
class RecognitionTask(Task):
    """CTC training and decoding over a charset (class ``i + 1`` is ``charset[i]``, 0 the blank).

    Args:
        charset: the characters, in class order.
        beam_width: 0 decodes greedily; more runs prefix beam search with that many beams.
        lexicon: if given, every prediction is a word of it.
        lexicon_method: ``"ctc"`` (highest CTC probability) or ``"edit"`` (nearest to the greedy
            reading by edit distance).
    """

    name = "recognize"
    metric = "word_accuracy"
    higher_is_better = True

    def __init__(
        self,
        charset: str,
        *,
        beam_width: int = 0,
        lexicon: Sequence[str] | None = None,
        lexicon_method: Literal["ctc", "edit"] = "ctc",
    ) -> None:
        if not charset:
            raise UserError("a recognition model needs a charset (the dataset provides it)")
        self.charset = charset
        self.index = {c: i + 1 for i, c in enumerate(charset)}
        if beam_width < 0:
            raise UserError(f"beam width must be 0 (greedy) or more, got {beam_width}")
        self.beam_width = beam_width
        self.lexicon = list(lexicon) if lexicon is not None else None
        self.lexicon_labels = [self.encode(w, source="the lexicon") for w in self.lexicon] if self.lexicon else None
        if self.lexicon is not None and not self.lexicon:
            raise UserError("the lexicon is empty")
        if lexicon_method not in ("ctc", "edit"):
            raise UserError(f"lexicon_method must be 'ctc' or 'edit', got {lexicon_method!r}")
        self.lexicon_method = lexicon_method

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> RecognitionTask:
        return cls(charset=meta["charset"])

    # -- text <-> classes -----------------------------------------------------------------------
    def encode(self, text: str, *, source: str = "a label") -> list[int]:
        """Text -> class indices; characters outside the charset raise :class:`UserError`."""
        try:
            return [self.index[c] for c in text]
        except KeyError:
            unknown = sorted(set(text) - set(self.index))
            raise UserError(
                f"{source} {text!r} has character(s) {' '.join(map(repr, unknown))} outside the model's charset "
                f"{self.charset!r}"
            ) from None

    def decode_labels(self, labels: Sequence[int]) -> str:
        return "".join(self.charset[k - 1] for k in labels)

    # -- batches --------------------------------------------------------------------------------
    def collate(self, items: list[tuple[Tensor, str]]) -> dict[str, Any]:
        order = sorted(range(len(items)), key=lambda i: -items[i][0].shape[-1])
        images, texts = zip(*(items[i] for i in order))
        channels, height = images[0].shape[:2]
        if any(img.shape[:2] != (channels, height) for img in images):
            raise ValueError("images of a recognition batch must share channels and height")
        widths = torch.tensor([img.shape[-1] for img in images], dtype=torch.long)
        batch = images[0].new_zeros(len(images), channels, height, int(widths.max()))  # (B, C, H, W_max)
        for i, img in enumerate(images):
            batch[i, :, :, : img.shape[-1]] = img
        encoded = [self.encode(t) for t in texts]
        return {
            "images": batch,
            "widths": widths,
            "targets": torch.tensor([k for e in encoded for k in e], dtype=torch.long),
            "target_lengths": torch.tensor([len(e) for e in encoded], dtype=torch.long),
            "texts": list(texts),
            "order": torch.tensor(order, dtype=torch.long),
        }

    @staticmethod
    def micro_batches(batch: Batch) -> list[Batch]:
        """Split a width-sorted batch into runs of ``MICRO_BATCH`` items, each cut to its widest image."""
        size = len(batch["widths"])
        if size < 2 * MICRO_BATCH:
            return [batch]
        offsets = [0] + torch.cumsum(batch["target_lengths"], 0).tolist()
        parts = []
        for start in range(0, size, MICRO_BATCH):
            end = min(size, start + MICRO_BATCH)
            width = int(batch["widths"][start:end].max())
            parts.append(
                {
                    "images": batch["images"][start:end, :, :, :width],  # (b, C, H, w)
                    "widths": batch["widths"][start:end],
                    "targets": batch["targets"][offsets[start] : offsets[end]],
                    "target_lengths": batch["target_lengths"][start:end],
                    "texts": batch["texts"][start:end],
                }
            )
        return parts

    def log_probs(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
        """(B, T, K) float32 log-probabilities and (B,) valid column counts."""
        logits = model(batch["images"], batch["widths"])  # (B, T, K)
        lengths = _unwrap(model).output_lengths(batch["widths"])
        return F.log_softmax(logits.float(), dim=-1), lengths

    def _ctc(self, log_probs: Tensor, lengths: Tensor, batch: Batch, reduction: str) -> Tensor:
        return F.ctc_loss(
            log_probs.transpose(0, 1),
            batch["targets"],
            lengths,
            batch["target_lengths"],  # (T, B, K)
            blank=BLANK,
            reduction=reduction,
            zero_infinity=True,
        )

    def training_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        total: Tensor | None = None
        for part in self.micro_batches(batch):  # at least one
            log_probs, lengths = self.log_probs(model, part)
            loss = self._ctc(log_probs, lengths, part, "mean") * len(part["widths"])
            total = loss if total is None else total + loss
        assert total is not None
        return total / len(batch["widths"])

    # -- decoding -------------------------------------------------------------------------------
    def decode(self, log_probs: Tensor, lengths: Tensor) -> list[str]:
        """Texts of a batch of (B, T, K) log-probabilities with the task's decoder."""
        if self.lexicon_labels is None and self.beam_width == 0:
            return [self.decode_labels(lab) for lab in ctc_greedy_decode(log_probs, lengths, blank=BLANK)]
        texts = []
        for b in range(log_probs.shape[0]):
            lp = log_probs[b, : int(lengths[b])]  # (T_b, K)
            if self.lexicon is not None and self.lexicon_labels is not None:  # set together
                index, _ = ctc_lexicon_decode(lp, self.lexicon_labels, method=self.lexicon_method, blank=BLANK)
                texts.append(self.lexicon[index])
            else:
                texts.append(self.decode_labels(ctc_beam_search(lp, beam_width=self.beam_width, blank=BLANK)[0][0]))
        return texts

    def eval_stats(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        stats: dict[str, Tensor] = {}
        for part in self.micro_batches(batch):
            log_probs, lengths = self.log_probs(model, part)
            per_item = self._ctc(log_probs, lengths, part, "none") / part["target_lengths"].clamp(min=1)
            counts = text_counts(self.decode(log_probs, lengths), part["texts"])
            for key, value in {**counts, "loss": per_item.double().sum().item()}.items():
                stats[key] = stats.get(key, 0) + torch.tensor(
                    value, dtype=torch.float64 if key == "loss" else torch.long
                )
        return stats

    def finalize(self, stats: dict[str, Tensor]) -> dict[str, Any]:
        metrics = text_metrics({k: float(v) for k, v in stats.items()})
        metrics["loss"] = float(stats["loss"]) / max(metrics["n"], 1)
        return metrics

    # -- pictures and files ---------------------------------------------------------------------
    def _explain(self, log_probs: Tensor, lengths: Tensor, texts: list[str]) -> list[dict[str, Any]]:
        """Per image: best class and blank probability per column, the CTC alignment of the text (None
        if a lexicon word is too long for the image), p(text | image), and each character's columns
        and probability."""
        labellings = [self.encode(text) for text in texts]
        aligned = ctc_forced_align(log_probs, lengths, labellings, blank=BLANK)
        out = []
        for b, (labels, alignment) in enumerate(zip(labellings, aligned)):
            lp = log_probs[b, : int(lengths[b])]  # (T_b, K)
            path = alignment[0] if alignment is not None else None
            out.append(
                {
                    "best": lp.argmax(dim=-1).tolist(),
                    "blank": lp[:, BLANK].exp().tolist(),
                    "alignment": path,
                    "probability": float(ctc_log_likelihoods(lp, [labels], blank=BLANK)[0].exp()),
                    "spans": ctc_character_spans(lp, path, blank=BLANK) if path is not None else [],
                }
            )
        return out

    def write_report(
        self, model: nn.Module, dataset: InfoDataset, stats: dict[str, Tensor], out_dir: Path, *, device: torch.device
    ) -> list[Path]:
        from rnnvision.viz.recognition import plot_ctc_explanation, plot_text_predictions

        count = min(16, len(dataset))
        batch = self.collate([dataset[i] for i in range(count)])
        model.eval()
        with torch.no_grad():
            log_probs, lengths = self.log_probs(model, to_device(batch, device))
        log_probs, lengths = log_probs.cpu(), lengths.cpu()
        predicted = self.decode(log_probs, lengths)
        images = [batch["images"][i, :, :, : int(w)] for i, w in enumerate(batch["widths"])]
        written = [plot_text_predictions(images, predicted, batch["texts"], out_dir / "predictions.png")]
        shown = min(4, count)
        details = self._explain(log_probs[:shown], lengths[:shown], predicted[:shown])
        written.append(
            plot_ctc_explanation(images[:shown], predicted[:shown], details, self.charset, out_dir / "alignment.png")
        )
        return written

    def prepare_predict(
        self,
        names: list[str],
        meta: dict[str, Any],
        *,
        out_dir: str | None = None,
        explain: str | None = None,
        beam_width: int | None = None,
        lexicon: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """``beam_width`` > 0 decodes with prefix beam search; ``lexicon`` (a file, one word per line)
        restricts the output to its words; ``explain`` (a PNG) is checked to be writable."""
        if out_dir:
            raise UserError(
                "recognition predict writes no per-image files; --out takes a results.jsonl or results.csv, "
                "--explain PNG draws a picture"
            )
        super().prepare_predict(names, meta, **options)
        if explain:
            check_output_file(explain, option="--explain")
        words = self.read_lexicon(lexicon) if lexicon else None
        return {"decoder": type(self)(self.charset, beam_width=beam_width or 0, lexicon=words)}

    def _read_lines(
        self,
        model: nn.Module,
        images: list[Image.Image],
        meta: dict[str, Any],
        device: torch.device,
        decoder: RecognitionTask,
    ) -> tuple[list[Tensor], list[str], list[dict[str, Any]]]:
        """The model inputs (C, height, W_b), the texts and :meth:`_explain`'s details of a batch of images."""
        height, max_width = meta["img_size"]
        inputs = [word_tensor(image, channels=meta["in_chans"], height=height, max_width=max_width) for image in images]
        batch = decoder.collate([(image, "") for image in inputs])  # sorted by width, right-padded
        model.eval()
        with torch.no_grad():
            log_probs, lengths = decoder.log_probs(model, to_device(batch, device))
        unsort = torch.argsort(batch["order"])
        log_probs, lengths = log_probs.cpu()[unsort], lengths.cpu()[unsort]  # back in the order of ``images``
        texts = decoder.decode(log_probs, lengths)
        return inputs, texts, decoder._explain(log_probs, lengths, texts)

    def predict_images(
        self,
        model: nn.Module,
        images: list[Image.Image],
        names: list[str],
        meta: dict[str, Any],
        *,
        device: torch.device,
        decoder: RecognitionTask | None = None,
    ) -> list[dict[str, Any]]:
        """Per image: the text, its confidence (the CTC probability of that text) and its characters.

        Each character has its x-range ``[x0, x1)`` in the image's own pixels and a probability,
        from the CTC forced alignment of the text (:func:`~rnnvision.ops.ctc.ctc_forced_align`):
        its columns with half the blanks beside them (:func:`~rnnvision.ops.ctc.ctc_character_spans`)
        of the model's T output columns, column t covering ``[t * w / T, (t + 1) * w / T)`` of an
        image ``w`` pixels wide. Images are batched padded to the widest, the padding masked
        (:meth:`collate`), which gives the results of one image at a time.
        """
        return self.read_images(model, images, names, meta, device=device, decoder=decoder)[0]

    def read_images(
        self,
        model: nn.Module,
        images: list[Image.Image],
        names: list[str],
        meta: dict[str, Any],
        *,
        device: torch.device,
        decoder: RecognitionTask | None = None,
    ) -> tuple[list[dict[str, Any]], list[Tensor], list[dict[str, Any]]]:
        """:meth:`predict_images`'s results and, from the same forward pass, what explains them
        (``rnnvision serve`` draws it): each image's model input (C, height, W_b) and its details
        (best class, blank probability and the aligned class of every output column; see :meth:`_explain`)."""
        inputs, texts, details = self._read_lines(model, images, meta, device, decoder or self)
        results = []
        for name, image, text, detail in zip(names, images, texts, details):
            stride = image.width / len(detail["best"])  # image pixels per output column
            characters = [
                {
                    "char": char,
                    "x0": round(start * stride, 2),
                    "x1": round(stop * stride, 2),
                    "probability": round(p, 6),
                }
                for char, (start, stop, p) in zip(text, detail["spans"])
            ]
            results.append(
                {"file": name, "text": text, "confidence": round(detail["probability"], 6), "characters": characters}
            )
        return results, inputs, details

    def explain(
        self,
        model: nn.Module,
        images: list[Image.Image],
        names: list[str],
        meta: dict[str, Any],
        path: Path,
        *,
        device: torch.device,
        decoder: RecognitionTask | None = None,
    ) -> Path:
        """Each model input with its characters' boxes, the best class per column and the CTC alignment."""
        from rnnvision.viz.recognition import plot_ctc_explanation

        inputs, texts, details = self._read_lines(model, images, meta, device, decoder or self)
        return plot_ctc_explanation(inputs, texts, details, self.charset, Path(path), titles=names)

    def check_data(self, model: nn.Module, dataset: InfoDataset) -> None:
        """Refuse labels longer than the model can emit for their image's width (CTC needs one column per
        character, plus a blank between repeated ones), naming the files; only for file-backed datasets."""
        samples = getattr(dataset, "samples", None)
        lengths = getattr(model, "output_lengths", None)
        if not samples or lengths is None or not isinstance(samples[0][0], (str, Path)):
            return
        if dataset.info.img_size is None:
            return
        height, max_width = dataset.info.img_size
        too_long = []
        for path, text in samples:
            w, h = image_size(path)
            width = min(max(int(round(w * height / max(h, 1))), MIN_WIDTH), max_width)
            needed = len(text) + sum(a == b for a, b in zip(text, text[1:]))
            if needed > int(lengths(torch.tensor([width]))[0]):
                too_long.append(f"{Path(path).name} ({text!r}, {width} px wide)")
        if too_long:
            raise UserError(
                f"{len(too_long)} label(s) are longer than the model can read from their image's width "
                f"(CTC needs a column per character): {', '.join(too_long[:5])}{' ...' if len(too_long) > 5 else ''}; "
                "raise data.max_width, or drop or re-crop those images"
            )

    def read_lexicon(self, path: str | Path) -> list[str]:
        """Words of a lexicon file (one per line); lower-cased when the charset has no upper case."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise UserError(f"lexicon file not found: {file}")
        words = [w.strip() for w in read_utf8(file).splitlines() if w.strip()]
        if not any(c.isupper() for c in self.charset):
            words = [w.lower() for w in words]
        return list(dict.fromkeys(words))

    @staticmethod
    def format_prediction(result: dict[str, Any]) -> str:
        return f"{result['file']}: {result['text']} ({result['confidence']:.3f})"
