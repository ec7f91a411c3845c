"""Connectionist temporal classification (Graves et al. 2006): loss reference and decoders.

A recognizer emits, for each of T columns, log-probabilities over K classes, class 0 being the
CTC *blank*. A *path* is one class per column; collapsing it (merge repeats, then drop blanks)
gives a *labelling*. The probability of a labelling is the sum over every path that collapses to
it. All functions here take one sequence's log-probabilities ``(T, K)`` unless said otherwise.

- :func:`ctc_loss_reference` — the forward (alpha) recursion of Graves et al. 2006, Sec. 4.1,
  looped in float32; the spec that ``torch.nn.functional.ctc_loss`` (the fast path the trainer
  uses) is tested against, values and gradients.
- :func:`ctc_greedy_decode` — best class per column, collapsed (Graves 2006, "best path").
- :func:`ctc_beam_search` — CTC prefix beam search (Graves 2012, Sec. 7.5; Hannun et al. 2014):
  keeps the ``beam_width`` most probable prefixes, each with the probability of its paths
  ending in blank and in non-blank. With a beam as wide as the number of prefixes it is exact.
- :func:`ctc_labelling_log_probs_reference` — enumerate all K^T paths (tiny inputs only): the
  exact distribution over labellings the decoders are tested against.
- :func:`ctc_forced_align` — the most probable path that collapses to a given labelling
  (Viterbi over the CTC trellis), a batch at once, vectorised over the trellis states: which
  column emits which character. :func:`ctc_forced_alignment_reference` is its plain loop, and
  :func:`ctc_character_spans` turns a path into each character's columns and probability.
- :func:`ctc_lexicon_decode` — the best word of a lexicon, by CTC probability or by edit
  distance to the greedy labelling (Shi et al. 2015, CRNN, Sec. 2.4).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from rnnvision.ops.text import edit_distance

Labels = tuple[int, ...]
NEG_INF = -math.inf
_LOG_ZERO = -1e30  # log(0) in the differentiable reference: -inf would give NaN gradients


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def collapse_path(path: Sequence[int], *, blank: int = 0) -> Labels:
    """Merge repeated classes, then drop blanks: ``(a, a, -, a, b) -> (a, a, b)``."""
    out: list[int] = []
    previous = None
    for k in path:
        if k != previous and k != blank:
            out.append(int(k))
        previous = k
    return tuple(out)


def _extended(labels: Sequence[int], blank: int) -> list[int]:
    """``l'`` of Graves 2006: the labelling with a blank before, between and after its labels (2L+1)."""
    out = [blank]
    for label in labels:
        out += [int(label), blank]
    return out


# -- loss ---------------------------------------------------------------------------------------
def ctc_loss_reference(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    *,
    blank: int = 0,
    reduction: Literal["none", "sum", "mean"] = "mean",
) -> Tensor:
    """CTC loss by the alpha recursion, one sequence and one time step at a time (float32).

    Same arguments and reductions as ``torch.nn.functional.ctc_loss``: ``log_probs`` (T, B, K),
    ``targets`` (B, S) padded, lengths (B,). ``mean`` divides each loss by its target length
    (at least 1) and averages over the batch. Differentiable through ``torch.logsumexp``.
    """
    log_probs = log_probs.float()
    losses = []
    for b in range(log_probs.shape[1]):
        steps, length = int(input_lengths[b]), int(target_lengths[b])
        ext = _extended(targets[b, :length].tolist(), blank)  # (S',) with S' = 2L+1
        ext_t = torch.tensor(ext)
        # skipping from s-2 to s is allowed when l'[s] is a label different from l'[s-2]
        can_skip = torch.tensor([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(len(ext))])
        neg = log_probs.new_full((len(ext),), _LOG_ZERO)
        alpha = neg.clone()  # (S',) log alpha_t(s)
        alpha[0] = log_probs[0, b, blank]
        if len(ext) > 1:
            alpha[1] = log_probs[0, b, ext[1]]
        for t in range(1, steps):
            stay = alpha
            step = torch.cat([neg[:1], alpha[:-1]])
            skip = torch.where(can_skip, torch.cat([neg[:2], alpha[:-2]]), neg)
            alpha = torch.logsumexp(torch.stack([stay, step, skip]), dim=0) + log_probs[t, b, ext_t]
        losses.append(-torch.logsumexp(alpha[-2:], dim=0))  # end on the last label or the final blank
    loss = torch.stack(losses)  # (B,)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return (loss / target_lengths.clamp(min=1).to(loss)).mean()


def ctc_log_likelihoods(log_probs: Tensor, labellings: Sequence[Sequence[int]], *, blank: int = 0) -> Tensor:
    """log p(labelling | x) of several labellings of ONE sequence, via ``F.ctc_loss`` in a batch.

    Args:
        log_probs: (T, K) log-probabilities of one sequence.
        labellings: N label sequences (no blanks).

    Returns:
        (N,) float32 log-probabilities; ``-inf`` for a labelling too long for T columns.
    """
    steps = log_probs.shape[0]
    n = len(labellings)
    if n == 0:
        return log_probs.new_zeros(0)
    lengths = torch.tensor([len(lab) for lab in labellings], dtype=torch.long)
    targets = torch.zeros(n, max(1, int(lengths.max())), dtype=torch.long)
    for i, lab in enumerate(labellings):
        targets[i, : len(lab)] = torch.tensor(list(lab), dtype=torch.long)
    expanded = log_probs.detach().float().cpu()[:, None, :].expand(steps, n, log_probs.shape[1])  # (T, N, K)
    loss = F.ctc_loss(
        expanded, targets, torch.full((n,), steps, dtype=torch.long), lengths, blank=blank, reduction="none"
    )
    return -loss


# -- decoders -----------------------------------------------------------------------------------
def ctc_greedy_decode(log_probs: Tensor, lengths: Tensor | None = None, *, blank: int = 0) -> list[Labels]:
    """Best-path decoding of a batch: argmax per column, collapsed.

    Args:
        log_probs: (B, T, K) scores (log-probabilities or logits: only the argmax matters).
        lengths: (B,) valid columns of each sequence; all T when None.

    Returns:
        B labellings (tuples of class indices, no blanks).
    """
    best = log_probs.argmax(dim=-1).cpu()  # (B, T)
    steps = best.shape[1]
    return [
        collapse_path(best[b, : steps if lengths is None else int(lengths[b])].tolist(), blank=blank)
        for b in range(best.shape[0])
    ]


def ctc_beam_search(
    log_probs: Tensor, *, beam_width: int = 10, blank: int = 0, top_classes: int | None = None
) -> list[tuple[Labels, float]]:
    """CTC prefix beam search over one sequence (Graves 2012, Sec. 7.5; Hannun et al. 2014).

    Each prefix keeps two log-probabilities: of its paths so far ending in blank (``pb``) and in
    a label (``pnb``). Extending by the prefix's own last label only continues a path ending in
    blank; repeating it without a blank stays on the same prefix.

    Args:
        log_probs: (T, K) log-probabilities (log_softmax over K).
        beam_width: prefixes kept after each column.
        top_classes: per column, only extend by this many most probable labels (None: all).

    Returns:
        Up to ``beam_width`` (labelling, log-probability) pairs, most probable first.
    """
    if beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    lp = log_probs.detach().float().cpu().numpy()  # (T, K)
    classes = [k for k in range(lp.shape[1]) if k != blank]
    beams: dict[Labels, tuple[float, float]] = {(): (0.0, NEG_INF)}
    for row in lp:
        if top_classes is not None and top_classes < len(classes):
            order = np.argsort(-row)
            candidates = [int(k) for k in order if k != blank][:top_classes]
        else:
            candidates = classes
        nxt: dict[Labels, list[float]] = {}

        def add(prefix: Labels, slot: int, value: float) -> None:
            if value == NEG_INF:
                return
            entry = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
            entry[slot] = _logaddexp(entry[slot], value)

        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            add(prefix, 0, total + float(row[blank]))
            last = prefix[-1] if prefix else None
            for k in candidates:
                p = float(row[k])
                if k == last:
                    add(prefix, 1, pnb + p)  # "aa" collapses to "a"
                    add(prefix + (k,), 1, pb + p)  # "a-a" is a new "a"
                else:
                    add(prefix + (k,), 1, total + p)
        ranked = sorted(nxt.items(), key=lambda item: _logaddexp(*item[1]), reverse=True)[:beam_width]
        beams = {prefix: (pb, pnb) for prefix, (pb, pnb) in ranked}
    return [(prefix, _logaddexp(pb, pnb)) for prefix, (pb, pnb) in beams.items()]


def ctc_labelling_log_probs_reference(log_probs: Tensor, *, blank: int = 0) -> dict[Labels, float]:
    """Exact log p(labelling) of every labelling, by enumerating all K^T paths (tiny inputs only)."""
    lp = log_probs.detach().double().cpu().numpy()  # (T, K)
    steps, classes = lp.shape
    if classes**steps > 2_000_000:
        raise ValueError(f"{classes}^{steps} paths are too many to enumerate")
    totals: dict[Labels, float] = {}
    for path in itertools.product(range(classes), repeat=steps):
        score = float(sum(lp[t, k] for t, k in enumerate(path)))
        labels = collapse_path(path, blank=blank)
        totals[labels] = _logaddexp(totals.get(labels, NEG_INF), score)
    return totals


def ctc_forced_alignment_reference(
    log_probs: Tensor, labels: Sequence[int], *, blank: int = 0
) -> tuple[list[int], float]:
    """The most probable path that collapses to ``labels``: Viterbi over the CTC trellis, one state
    and one column at a time (float64). The spec :func:`ctc_forced_align` is tested against.

    State ``s`` of the trellis is position ``s`` of ``l'`` (the labels with blanks around them,
    Graves et al. 2006, Sec. 4.1); a path may stay, step to ``s + 1``, or skip a blank to ``s + 2``
    when the label there differs from the one before. Ties prefer staying, then stepping.

    Args:
        log_probs: (T, K) log-probabilities.
        labels: the labelling to align (no blanks), at most T long after counting repeats.

    Returns:
        (path, log-probability): ``path`` holds one class per column (T,); ``collapse_path(path)``
        equals ``labels``.
    """
    lp = log_probs.detach().double().cpu().numpy()  # (T, K)
    ext = _extended(labels, blank)  # (S',)
    steps, states = lp.shape[0], len(ext)
    score = np.full((steps, states), NEG_INF)
    back = np.zeros((steps, states), dtype=np.int64)
    score[0, 0] = lp[0, blank]
    if states > 1:
        score[0, 1] = lp[0, ext[1]]
    for t in range(1, steps):
        for s in range(states):
            best, arg = score[t - 1, s], s
            if s >= 1 and score[t - 1, s - 1] > best:
                best, arg = score[t - 1, s - 1], s - 1
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] and score[t - 1, s - 2] > best:
                best, arg = score[t - 1, s - 2], s - 2
            score[t, s] = best + lp[t, ext[s]]
            back[t, s] = arg
    state = states - 1 if states == 1 or score[steps - 1, states - 1] >= score[steps - 1, states - 2] else states - 2
    total = float(score[steps - 1, state])
    if total == NEG_INF:
        raise ValueError(f"{len(labels)} labels (with repeats) cannot be aligned to {steps} columns")
    path = [0] * steps
    for t in range(steps - 1, -1, -1):
        path[t] = ext[state]
        state = int(back[t, state])
    return path, total


def ctc_forced_align(
    log_probs: Tensor, input_lengths: Tensor, labellings: Sequence[Sequence[int]], *, blank: int = 0
) -> list[tuple[list[int], float] | None]:
    """Forced alignment of a batch: per sequence, the most probable path that collapses to its labels.

    The same Viterbi recursion as :func:`ctc_forced_alignment_reference` (same tie-breaking),
    vectorised over the batch and the trellis states; only the columns are looped.

    Args:
        log_probs: (B, T, K) log-probabilities.
        input_lengths: (B,) valid columns of each sequence.
        labellings: B label sequences (no blanks).

    Returns:
        Per sequence ``(path (T_b,), log-probability)``, or None when its labels (with a blank
        between repeats) need more than ``T_b`` columns.
    """
    lp = log_probs.detach().double().cpu()  # (B, T, K)
    batch, steps = lp.shape[:2]
    lengths = input_lengths.detach().cpu().long()  # (B,)
    states = 2 * max((len(lab) for lab in labellings), default=0) + 1
    ext = torch.full((batch, states), blank, dtype=torch.long)  # (B, S') l' of each, padded with blanks
    last = torch.zeros(batch, dtype=torch.long)  # (B,) index of each l''s final blank
    for b, lab in enumerate(labellings):
        ext[b, : 2 * len(lab) + 1] = torch.tensor(_extended(lab, blank))
        last[b] = 2 * len(lab)
    index = torch.arange(states)
    previous_label = torch.cat([torch.full((batch, 2), blank), ext], dim=1)[:, :states]  # (B, S') l'[s - 2]
    can_skip = (index >= 2) & (ext != blank) & (ext != previous_label)  # (B, S')
    neg = torch.full((batch, states), NEG_INF, dtype=torch.float64)
    emit = torch.gather(lp, 2, ext[:, None, :].expand(batch, steps, states))  # (B, T, S') log p(l'[s] at t)
    score = neg.clone()
    score[:, 0] = emit[:, 0, 0]
    if states > 1:
        score[:, 1] = emit[:, 0, 1]
    score = torch.where(index <= last[:, None], score, neg)  # states past a short l' stay unreachable
    back = torch.zeros(steps, batch, states, dtype=torch.long)  # (T, B, S') how far each state stepped
    for t in range(1, steps):
        step = torch.cat([neg[:, :1], score[:, :-1]], dim=1)  # (B, S') from s - 1
        skip = torch.where(can_skip, torch.cat([neg[:, :2], score[:, :-2]], dim=1), neg)  # from s - 2
        best, moved = torch.stack([score, step, skip]).max(dim=0)  # first maximum: stay, then step, then skip
        new = torch.where(index <= last[:, None], best + emit[:, t], neg)
        running = (t < lengths)[:, None]  # (B, 1) sequences that still have column t
        score = torch.where(running, new, score)
        back[t] = torch.where(running, moved, 0)
    rows = torch.arange(batch)
    end_blank, end_label = score[rows, last], score[rows, (last - 1).clamp(min=0)]
    state = torch.where((last == 0) | (end_blank >= end_label), last, last - 1)  # (B,)
    total = score[rows, state]  # (B,)
    path = torch.zeros(batch, steps, dtype=torch.long)
    for t in range(steps - 1, -1, -1):
        path[:, t] = ext[rows, state]
        state = state - back[t, rows, state]
    return [
        None if float(total[b]) == NEG_INF else (path[b, : int(lengths[b])].tolist(), float(total[b]))
        for b in range(batch)
    ]


def ctc_forced_alignment(log_probs: Tensor, labels: Sequence[int], *, blank: int = 0) -> tuple[list[int], float]:
    """The most probable path that collapses to ``labels`` in one sequence (:func:`ctc_forced_align`).

    Args:
        log_probs: (T, K) log-probabilities.
        labels: the labelling to align (no blanks).

    Returns:
        (path (T,), log-probability); raises ``ValueError`` when ``labels`` need more than T columns.
    """
    steps = log_probs.shape[0]
    [aligned] = ctc_forced_align(log_probs[None], torch.tensor([steps]), [labels], blank=blank)
    if aligned is None:
        raise ValueError(f"{len(labels)} labels (with repeats) cannot be aligned to {steps} columns")
    return aligned


def ctc_character_spans(log_probs: Tensor, path: Sequence[int], *, blank: int = 0) -> list[tuple[float, float, float]]:
    """Each character of an aligned path: the columns ``[start, stop)`` it covers and its probability.

    A character is a run of one non-blank class in ``path`` (a repeated character has a blank
    between its copies). CTC emits a character in one or a few "spike" columns that need not
    lie on the glyph (often at its edge), with blanks between characters; so each character
    also covers half of the blank run on either side of it: a run between two characters is
    split at its middle, and the line's leading and trailing runs give their inner half to the
    first and last character. Its probability is the highest probability of its class over its
    own (non-blank) columns.

    Args:
        log_probs: (T, K) log-probabilities.
        path: (T,) one class per column, e.g. from :func:`ctc_forced_alignment`.

    Returns:
        One ``(start, stop, probability)`` per character, in reading order; ``start`` and
        ``stop`` are column positions (multiples of 0.5), consecutive characters touching.
    """
    probs = log_probs.detach().float().exp().cpu()  # (T, K)
    runs: list[list[float]] = []  # [first column, end column, probability] per character
    previous = blank
    for t, k in enumerate(path):
        if k != blank and k == previous:
            runs[-1][1] = t + 1
            runs[-1][2] = max(runs[-1][2], float(probs[t, k]))
        elif k != blank:
            runs.append([t, t + 1, float(probs[t, k])])
        previous = k
    edges = [0.0] + [point for run in runs for point in run[:2]] + [float(len(path))]  # blank runs lie between pairs
    middles = [(edges[2 * i] + edges[2 * i + 1]) / 2 for i in range(len(runs) + 1)]  # the middle of each blank run
    return [(middles[i], middles[i + 1], run[2]) for i, run in enumerate(runs)]


def ctc_lexicon_decode(
    log_probs: Tensor,
    lexicon: Sequence[Sequence[int]],
    *,
    method: Literal["ctc", "edit"] = "ctc",
    blank: int = 0,
) -> tuple[int, float]:
    """The lexicon entry that best explains one sequence.

    ``method="ctc"`` picks the entry of highest log p(entry | x). ``method="edit"`` picks the
    entry nearest the greedy labelling by edit distance, ties broken by CTC probability.

    Args:
        log_probs: (T, K) log-probabilities.
        lexicon: N label sequences.

    Returns:
        (index into ``lexicon``, its log-probability).
    """
    if not lexicon:
        raise ValueError("the lexicon is empty")
    scores = ctc_log_likelihoods(log_probs, lexicon, blank=blank)  # (N,)
    if method == "ctc":
        best = int(scores.argmax())
        return best, float(scores[best])
    if method != "edit":
        raise ValueError(f"method must be 'ctc' or 'edit', got {method!r}")
    greedy = ctc_greedy_decode(log_probs[None], blank=blank)[0]
    distances = [edit_distance(greedy, entry) for entry in lexicon]
    best = min(range(len(lexicon)), key=lambda i: (distances[i], -float(scores[i])))
    return best, float(scores[best])
