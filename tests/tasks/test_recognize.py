"""The recognize task: batching, CTC loss, decoding options, text metrics, a tiny end-to-end run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnvision.config import config_from_dict
from rnnvision.engine import train
from rnnvision.errors import UserError
from rnnvision.tasks import RecognitionTask, make_task
from rnnvision.tasks.text_metrics import normalize_word, text_counts, text_metrics


def test_metrics_hand_worked():
    counts = text_counts(["Hello!", "wrld", "the cat sat", ""], ["hello", "world", "the hat sat", "ab"])
    metrics = text_metrics(counts)
    # exact: none; IIIT5K convention: "Hello!" ~ "hello" only
    assert metrics["sequence_accuracy"] == 0.0 and metrics["word_accuracy"] == 0.25 and metrics["n"] == 4
    # char edits: "Hello!"->"hello" 2, "wrld"->"world" 1, cat->hat 1, ""->"ab" 2; target chars 5+5+11+2
    assert math.isclose(metrics["cer"], 6 / 23)
    # word edits: 1 + 1 + 1 + 1 over 1 + 1 + 3 + 1 target words
    assert math.isclose(metrics["wer"], 4 / 6)
    assert normalize_word("Don't-Stop 42") == "dontstop42"


def test_collate_sorts_by_width_pads_right_and_encodes_against_the_charset():
    task = RecognitionTask("abc")
    items = [(torch.ones(1, 8, 5), "ab"), (torch.full((1, 8, 9), 0.5), "cca"), (torch.ones(1, 8, 4), "")]
    batch = task.collate(items)
    assert batch["images"].shape == (3, 1, 8, 9) and batch["widths"].tolist() == [9, 5, 4]
    assert batch["order"].tolist() == [1, 0, 2]
    assert batch["images"][1, :, :, 5:].abs().sum() == 0 and batch["images"][2, :, :, 4:].abs().sum() == 0
    assert batch["targets"].tolist() == [3, 3, 1, 1, 2] and batch["target_lengths"].tolist() == [3, 2, 0]
    assert batch["texts"] == ["cca", "ab", ""]
    with pytest.raises(UserError, match=r"'d' outside the model's charset 'abc'"):
        task.collate([(torch.ones(1, 8, 5), "abd")])


class FixedScores(nn.Module):
    """A 'model' that returns given (B, T, K) scores whatever the images; every 4 pixels one column."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = scores

    def forward(self, images, widths):
        return self.scores

    @staticmethod
    def output_lengths(widths):
        return widths // 4


def test_loss_decoding_and_stats_on_known_scores():
    task = RecognitionTask("ab")
    # column classes: sample 0 reads "ab" (a a - b), sample 1 reads "a" in its 2 valid columns
    best = torch.tensor([[1, 1, 0, 2], [1, 0, 2, 2]])
    scores = 10.0 * F.one_hot(best, 3).float()  # (B, T, K)
    batch = task.collate([(torch.zeros(1, 4, 16), "ab"), (torch.zeros(1, 4, 8), "b")])  # already sorted
    model = FixedScores(scores)
    log_probs = F.log_softmax(scores, -1)
    expected = F.ctc_loss(
        log_probs.transpose(0, 1), torch.tensor([1, 2, 2]), torch.tensor([4, 2]), torch.tensor([2, 1]), reduction="mean"
    )
    torch.testing.assert_close(task.training_loss(model, batch), expected)
    stats = task.eval_stats(model, batch)
    metrics = task.finalize(stats)
    assert metrics["n"] == 2 and metrics["sequence_accuracy"] == 0.5 and math.isclose(metrics["cer"], 1 / 3)
    assert task.decode(log_probs, torch.tensor([4, 2])) == ["ab", "a"]
    beam = RecognitionTask("ab", beam_width=4)
    assert beam.decode(log_probs, torch.tensor([4, 2])) == ["ab", "a"]
    lexicon = RecognitionTask("ab", lexicon=["b", "bb", "ab"])
    assert lexicon.decode(log_probs, torch.tensor([4, 2])) == ["ab", "b"]
    with pytest.raises(UserError, match="outside"):
        RecognitionTask("ab", lexicon=["abc"])


def test_micro_batches_give_the_whole_batch_loss_and_metrics():
    from rnnvision.data import build_dataset
    from rnnvision.models import create_model
    from rnnvision.tasks.recognize import MICRO_BATCH

    data = build_dataset("digit-strings", split="test", source="sklearn", test_size=2 * MICRO_BATCH + 5, height=16)
    task = RecognitionTask(data.info.charset)
    batch = task.collate([data[i] for i in range(len(data))])
    parts = task.micro_batches(batch)
    assert [len(p["widths"]) for p in parts] == [MICRO_BATCH, MICRO_BATCH, 5]
    assert all(p["images"].shape[-1] == int(p["widths"].max()) for p in parts)
    assert parts[1]["images"].shape[-1] < batch["images"].shape[-1]
    torch.manual_seed(0)
    model = create_model("crnn", size="tiny", num_classes=11, img_height=16).eval()  # eval: padding-invariant
    with torch.no_grad():
        log_probs, lengths = task.log_probs(model, batch)  # the whole batch at once
        whole = task._ctc(log_probs, lengths, batch, "mean")
        torch.testing.assert_close(task.training_loss(model, batch), whole, atol=1e-5, rtol=1e-5)
        stats = task.eval_stats(model, batch)
    assert int(stats["n"]) == len(data)
    assert text_counts(task.decode(log_probs, lengths), batch["texts"])["char_edits"] == int(stats["char_edits"])


def test_task_is_built_from_checkpoint_meta():
    task = make_task("recognize", {"charset": "0123456789"})
    assert isinstance(task, RecognitionTask) and task.decode_labels([1, 10, 3]) == "092"


@pytest.mark.parametrize(
    "options,message",
    [
        ({"beam_width": -1}, "beam width"),
        ({"lexicon": []}, "lexicon is empty"),
        ({"lexicon": ["ab"], "lexicon_method": "nearest"}, "lexicon_method must be 'ctc' or 'edit'"),
    ],
)
def test_bad_decoding_options_are_user_errors(options, message):
    with pytest.raises(UserError, match=message):
        RecognitionTask("abc", **options)


def test_a_tiny_crnn_learns_to_read_a_few_digit_lines():
    """CTC loss + masked BatchNorm + BiLSTM with lengths: 8 padded lines are read back in eval mode."""
    from rnnvision.data import build_dataset
    from rnnvision.models import create_model

    torch.manual_seed(0)
    data = build_dataset("digit-strings", split="val", source="sklearn", max_length=4, val_size=8, height=16)
    task = RecognitionTask(data.info.charset)
    batch = task.collate([data[i] for i in range(8)])
    model = create_model("crnn", size="tiny", hidden_size=32, num_classes=11, img_height=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.eval()
    with torch.no_grad():
        before = task.eval_stats(model, batch)
    model.train()
    for _ in range(100):
        loss = task.training_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = task.finalize(task.eval_stats(model, batch))
    assert int(before["exact"]) <= 1 and after["sequence_accuracy"] == 1.0 and after["cer"] == 0.0


def test_training_a_recognizer_writes_its_report(tmp_path):
    config = config_from_dict(
        {
            "model": {"name": "crnn", "size": "tiny"},
            "data": {
                "name": "digit-strings",
                "source": "sklearn",
                "max_length": 3,
                "train_size": 64,
                "val_size": 16,
                "test_size": 16,
                "height": 16,
            },
            "train": {"epochs": 1, "batch_size": 16, "device": "cpu"},
        }
    )
    result = train(config, out_dir=tmp_path / "run", quiet=True)
    assert set(result.test_metrics) >= {"word_accuracy", "sequence_accuracy", "cer", "wer", "loss", "n"}
    assert result.test_metrics["n"] == 16 and result.model.img_height == 16
    assert {"predictions.png", "alignment.png", "best.pt"} <= {p.name for p in (tmp_path / "run").iterdir()}
