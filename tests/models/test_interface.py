"""The model interface tasks and the server use (reading order, gates) instead of looking inside models."""

from __future__ import annotations

import pytest
import torch

from rnnvision.models import create_model, get_model_entry
from rnnvision.models.classifier import ReadingClassifier
from rnnvision.models.interface import HasGates


def _tiny(name: str, **options):
    torch.manual_seed(0)
    return create_model(name, **{**get_model_entry(name).tiny, **options}).eval()


@pytest.mark.parametrize(
    ("name", "order", "gates"),
    [
        ("row_lstm", "rows", ("input", "forget", "cell", "output")),
        ("row_gru", "rows", ("reset", "update", "candidate")),
        ("row_rnn", "rows", ()),
        ("pixel_lstm", "pixels", ("input", "forget", "cell", "output")),
        ("pixel_mingru", "pixels", ()),
        ("pixel_lru", "pixels", ()),
    ],
)
def test_reading_order_and_gate_names(name, order, gates):
    model = _tiny(name)
    assert isinstance(model, ReadingClassifier) and isinstance(model, HasGates)
    assert model.reading_order == order and model.gate_names() == gates
    if not gates:
        with pytest.raises(ValueError, match="has no gates"):
            model.gates(*model.example_inputs())
        with pytest.raises(ValueError, match="has no gates"), model.record_gates():
            pass


def test_gates_are_the_reference_loops_gates():
    model = _tiny("row_bilstm")
    (images,) = model.example_inputs(batch_size=3)
    gates = model.gates(images)
    _, _, expected = model.rnn(model.to_sequence(images), return_gates=True)
    assert set(gates) == set(expected)
    for name in gates:
        torch.testing.assert_close(gates[name], expected[name])
        assert gates[name].shape == (2, 2, 3, 8, 8)  # (L, D, B, T = rows, H)


@pytest.mark.parametrize("name", ["row_lstm", "row_bilstm", "row_gru"])
def test_record_gates_gives_each_passes_first_layer_gates_and_step_scores(name):
    model = _tiny(name)
    (images,) = model.example_inputs(batch_size=3)
    with torch.no_grad(), model.record_gates() as records:
        logits = model(images)
        model(images[:1])
    assert len(records) == 2
    expected = model.gates(images)
    for gate, value in records[0].gates.items():
        torch.testing.assert_close(value, expected[gate][0, 0], atol=1e-5, rtol=1e-4)  # (B, T, H)
    if model.rnn.bidirectional:
        assert records[0].step_logits is None
    else:
        assert records[0].step_logits.shape == (3, 8, 10)  # (B, T, K)
        torch.testing.assert_close(records[0].step_logits[:, -1], logits)  # the last step's scores are the output
    with torch.no_grad():
        model(images)
    assert len(records) == 2  # the hook is gone after the block
