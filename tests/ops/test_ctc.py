"""CTC: the loop reference equals torch's loss (values and gradients); decoders against brute force."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rnnvision.ops.ctc import (
    collapse_path,
    ctc_beam_search,
    ctc_character_spans,
    ctc_forced_align,
    ctc_forced_alignment,
    ctc_forced_alignment_reference,
    ctc_greedy_decode,
    ctc_labelling_log_probs_reference,
    ctc_lexicon_decode,
    ctc_log_likelihoods,
    ctc_loss_reference,
)
from rnnvision.ops.text import edit_distance


def random_log_probs(steps: int, classes: int, seed: int, *, sharpness: float = 2.0) -> torch.Tensor:
    torch.manual_seed(seed)
    return F.log_softmax(sharpness * torch.randn(steps, classes), dim=-1)  # (T, K)


def test_collapse_merges_repeats_then_drops_blanks():
    assert collapse_path([1, 1, 0, 1, 2, 2, 0, 0]) == (1, 1, 2)
    assert collapse_path([0, 0]) == ()
    assert collapse_path([3, 0, 3, 3, 1]) == (3, 3, 1)


def test_edit_distance_hand_worked():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance(("the", "cat"), ("the", "hat")) == 1


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_loss_reference_matches_torch_values_and_gradients(reduction):
    torch.manual_seed(0)
    steps, batch, classes = 9, 3, 5
    logits = torch.randn(steps, batch, classes, dtype=torch.float32)
    targets = torch.tensor([[1, 2, 2, 3], [4, 1, 0, 0], [3, 3, 3, 0]])  # padded (B, S); includes repeats
    target_lengths = torch.tensor([4, 2, 3])
    input_lengths = torch.tensor([9, 5, 7])
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = ctc_loss_reference(F.log_softmax(a, -1), targets, input_lengths, target_lengths, reduction=reduction)
    theirs = F.ctc_loss(F.log_softmax(b, -1), targets, input_lengths, target_lengths, reduction=reduction)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    ours.sum().backward()
    theirs.sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-5)


def test_log_likelihoods_equal_brute_force():
    lp = random_log_probs(5, 3, seed=1)
    exact = ctc_labelling_log_probs_reference(lp)
    labellings = [(), (1,), (2, 1), (1, 1), (1, 2, 1), (2, 2, 2)]
    ours = ctc_log_likelihoods(lp, labellings)
    for lab, value in zip(labellings, ours.tolist()):
        assert math.isclose(value, exact[lab], abs_tol=1e-5), lab
    # the probabilities of all labellings sum to one
    assert math.isclose(sum(math.exp(v) for v in exact.values()), 1.0, abs_tol=1e-6)


def test_hand_worked_example_where_greedy_and_beam_disagree():
    # Two columns, blank 0.6 and "a" 0.4 each. Paths: "--" .36 -> "", "-a" .24, "a-" .24, "aa" .16 -> "a".
    lp = torch.log(torch.tensor([[0.6, 0.4], [0.6, 0.4]]))
    assert ctc_greedy_decode(lp[None]) == [()]
    (best, score), (second, score2) = ctc_beam_search(lp, beam_width=4)
    assert best == (1,) and math.isclose(math.exp(score), 0.64, abs_tol=1e-6)
    assert second == () and math.isclose(math.exp(score2), 0.36, abs_tol=1e-6)


def test_greedy_respects_lengths():
    best = torch.tensor([[1, 1, 0, 2, 2, 3], [2, 0, 2, 1, 1, 1]])  # (B, T) argmax classes
    scores = F.one_hot(best, 4).float()  # (B, T, K)
    assert ctc_greedy_decode(scores, torch.tensor([5, 3])) == [(1, 2), (2, 2)]
    assert ctc_greedy_decode(scores) == [(1, 2, 3), (2, 2, 1)]


@pytest.mark.parametrize("steps,classes,seed", [(4, 3, 0), (5, 3, 1), (6, 3, 2), (4, 4, 3), (5, 4, 4)])
def test_full_beam_is_exact_and_narrow_beam_never_overestimates(steps, classes, seed):
    lp = random_log_probs(steps, classes, seed, sharpness=1.0)
    exact = ctc_labelling_log_probs_reference(lp)
    wide = ctc_beam_search(lp, beam_width=10_000)
    assert len(wide) == len(exact)
    for labels, score in wide:
        assert math.isclose(score, exact[labels], abs_tol=1e-6)
    best_labels, best_score = max(exact.items(), key=lambda item: item[1])
    assert wide[0][0] == best_labels and math.isclose(wide[0][1], best_score, abs_tol=1e-6)
    for beam_width in (1, 2, 3):
        narrow = ctc_beam_search(lp, beam_width=beam_width)
        assert len(narrow) <= beam_width
        for labels, score in narrow:  # pruning only ever drops paths
            assert score <= exact[labels] + 1e-9


def test_beam_top_classes_pruning_keeps_the_peaked_answer():
    lp = random_log_probs(6, 7, seed=5, sharpness=4.0)
    full = ctc_beam_search(lp, beam_width=8)
    pruned = ctc_beam_search(lp, beam_width=8, top_classes=2)
    assert pruned[0][0] == full[0][0]


@pytest.mark.parametrize("labels", [(1,), (1, 1), (2, 1, 2), (1, 2)])
def test_forced_alignment_is_the_best_path_of_the_labelling(labels):
    import itertools

    lp = random_log_probs(5, 3, seed=7, sharpness=1.5)
    path, score = ctc_forced_alignment(lp, labels)
    assert len(path) == 5 and collapse_path(path) == labels
    assert math.isclose(score, float(sum(lp[t, k] for t, k in enumerate(path))), abs_tol=1e-5)
    best = max(
        float(sum(lp[t, k] for t, k in enumerate(p)))
        for p in itertools.product(range(3), repeat=5)
        if collapse_path(p) == labels
    )
    assert math.isclose(score, best, abs_tol=1e-5)


def test_forced_alignment_refuses_impossible_labellings():
    with pytest.raises(ValueError, match="cannot be aligned"):
        ctc_forced_alignment(random_log_probs(2, 3, seed=0), (1, 1))  # needs "a-a": 3 columns


def test_lexicon_decoding_by_ctc_score_and_by_edit_distance():
    lp = random_log_probs(5, 3, seed=8, sharpness=1.0)
    exact = ctc_labelling_log_probs_reference(lp)
    lexicon = [(1, 2), (2, 2), (1,), (2, 1, 1)]
    index, score = ctc_lexicon_decode(lp, lexicon, method="ctc")
    assert index == max(range(4), key=lambda i: exact[lexicon[i]]) and math.isclose(
        score, exact[lexicon[index]], abs_tol=1e-5
    )
    # peaked columns: greedy reads (1, 2, 1); (2, 1, 1) and (1, 2) are both at distance 1... (1, 2) wins only if likelier
    peaked = torch.log(torch.tensor([[0.05, 0.9, 0.05], [0.9, 0.05, 0.05], [0.05, 0.05, 0.9], [0.05, 0.9, 0.05]]))
    assert ctc_greedy_decode(peaked[None]) == [(1, 2, 1)]
    index, _ = ctc_lexicon_decode(peaked, [(2, 2, 2, 2), (1, 2, 1), (1,)], method="edit")
    assert index == 1
    index, _ = ctc_lexicon_decode(peaked, [(2, 1, 1), (1, 2)], method="edit")
    scores = ctc_log_likelihoods(peaked, [(2, 1, 1), (1, 2)])
    assert index == int(scores.argmax())  # a tie at distance 1, broken by CTC probability
    with pytest.raises(ValueError, match="empty"):
        ctc_lexicon_decode(peaked, [], method="ctc")


def _random_labels(generator: torch.Generator, length: int, classes: int) -> list[int]:
    return torch.randint(1, classes, (length,), generator=generator).tolist()


@pytest.mark.parametrize("seed", range(6))
def test_batched_forced_alignment_equals_the_loop_reference(seed):
    """Odd sizes, a batch of sequences of their own lengths, labels with repeats and empty ones."""
    generator = torch.Generator().manual_seed(seed)
    batch, steps, classes = 5, 11 + seed, 3 + seed % 3
    log_probs = F.log_softmax(2 * torch.randn(batch, steps, classes, generator=generator), dim=-1)  # (B, T, K)
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[0] = steps
    labellings = [
        _random_labels(generator, int(torch.randint(0, 6, (1,), generator=generator)), classes) for _ in range(batch)
    ]
    labellings[1] = [1, 1, 2, 2]  # repeats need a blank between them
    aligned = ctc_forced_align(log_probs, lengths, labellings)
    for b in range(batch):
        lp = log_probs[b, : int(lengths[b])]
        try:
            expected = ctc_forced_alignment_reference(lp, labellings[b])
        except ValueError:
            assert aligned[b] is None
            continue
        path, score = aligned[b]
        assert path == expected[0] and collapse_path(path) == tuple(labellings[b])
        assert score == pytest.approx(expected[1], abs=1e-10)


def test_batched_forced_alignment_breaks_ties_like_the_reference():
    """Uniform columns: every path scores the same, so only the tie-breaking rule picks one."""
    log_probs = torch.full((2, 7, 3), -math.log(3), dtype=torch.float64)
    labellings = [[1, 2], [2, 2, 1]]
    aligned = ctc_forced_align(log_probs, torch.tensor([7, 6]), labellings)
    for b, labels in enumerate(labellings):
        assert aligned[b][0] == ctc_forced_alignment_reference(log_probs[b, : [7, 6][b]], labels)[0]


def test_character_spans_give_each_character_its_columns_and_half_the_blanks_beside_it():
    probs = torch.full((6, 3), 0.05)
    probs[:, 0] = 0.9
    probs[1, 1] = probs[2, 1] = 0.95
    probs[4, 2] = 0.7
    probs = probs / probs.sum(1, keepdim=True)
    path, _ = ctc_forced_alignment(probs.log(), [1, 2])
    assert path == [0, 1, 1, 0, 2, 0]
    spans = ctc_character_spans(probs.log(), path)
    assert [(a, b) for a, b, _ in spans] == [(0.5, 3.5), (3.5, 5.5)]  # half of each blank run on either side
    assert spans[0][2] == pytest.approx(0.95 / 1.9, rel=1e-5) and spans[1][2] == pytest.approx(0.7 / 1.65, rel=1e-5)
    assert [(a, b) for a, b, _ in ctc_character_spans(probs.log(), [1, 0, 0, 1, 1])] == [
        (0, 2),
        (2, 5),
    ]  # "a--aa": two a's
    assert [(a, b) for a, b, _ in ctc_character_spans(probs.log(), [0, 0, 0, 0])] == []
