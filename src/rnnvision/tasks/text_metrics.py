"""Text-recognition metrics: exact match, IIIT5K word accuracy, character and word error rates.

Each function returns a per-pair count, so sums over batches (and DDP shards) give the totals:

- sequence accuracy: ``prediction == target`` exactly;
- word accuracy (the IIIT5K / scene-text convention): equal after lower-casing both and keeping
  only letters and digits;
- CER: character edit distance / number of target characters;
- WER: word edit distance (words split on whitespace) / number of target words.
"""

from __future__ import annotations

from collections.abc import Sequence

from rnnvision.ops.text import edit_distance


def normalize_word(text: str) -> str:
    """Lower case, letters and digits only: how scene-text benchmarks compare words."""
    return "".join(c for c in text.lower() if c.isalnum())


def text_counts(predictions: Sequence[str], targets: Sequence[str]) -> dict[str, int]:
    """Summable counts over pairs: n, exact, word_correct, char_edits, chars, word_edits, words."""
    counts = dict.fromkeys(("n", "exact", "word_correct", "char_edits", "chars", "word_edits", "words"), 0)
    for predicted, target in zip(predictions, targets, strict=True):
        counts["n"] += 1
        counts["exact"] += predicted == target
        counts["word_correct"] += normalize_word(predicted) == normalize_word(target)
        counts["char_edits"] += edit_distance(predicted, target)
        counts["chars"] += len(target)
        counts["word_edits"] += edit_distance(predicted.split(), target.split())
        counts["words"] += len(target.split())
    return counts


def text_metrics(counts: dict[str, float]) -> dict[str, float | int]:
    """word_accuracy, sequence_accuracy, cer, wer and n from summed :func:`text_counts`."""
    n = int(counts["n"])
    return {
        "word_accuracy": float(counts["word_correct"]) / max(n, 1),
        "sequence_accuracy": float(counts["exact"]) / max(n, 1),
        "cer": float(counts["char_edits"]) / max(float(counts["chars"]), 1.0),
        "wer": float(counts["word_edits"]) / max(float(counts["words"]), 1.0),
        "n": n,
    }
