"""Fused and reference sequence layers agree; gates are visible and sane; stepping equals one call."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from rnnvision.layers import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from tests.conftest import assert_close_scaled

LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
CASES = list(itertools.product(LAYERS, (False, True), (1, 2), (False, True)))


def _states(state):
    return state if isinstance(state, tuple) else (state,)


def _run(layer, x, lengths, state, impl):
    layer.impl = impl
    out, final = layer(x, state, lengths=lengths)
    return out, _states(final)


@pytest.mark.parametrize("cell,bidirectional,num_layers,with_lengths", CASES)
def test_fused_and_reference_agree_on_outputs_and_gradients(cell, bidirectional, num_layers, with_lengths):
    torch.manual_seed(0)
    layer = LAYERS[cell](5, 7, num_layers, bidirectional=bidirectional)
    batch, steps = 4, 6
    directions = 2 if bidirectional else 1
    lengths = torch.tensor([6, 2, 5, 1]) if with_lengths else None
    x = torch.randn(batch, steps, 5)
    init = tuple(torch.randn(num_layers * directions, batch, 7) for _ in range(2 if cell == "lstm" else 1))
    weights = torch.randn(batch, steps, 7 * directions)  # a generic loss that touches every output

    results = {}
    for impl in ("fused", "reference"):
        xi = x.clone().requires_grad_(True)
        si = tuple(s.clone().requires_grad_(True) for s in init)
        out, final = _run(layer, xi, lengths, si if cell == "lstm" else si[0], impl)
        loss = (out * weights).sum() + sum((f * (k + 1)).sum() for k, f in enumerate(final))
        layer.zero_grad()
        loss.backward()
        grads = {name: p.grad.clone() for name, p in layer.named_parameters()}
        results[impl] = (out.detach(), [f.detach() for f in final], xi.grad, [s.grad for s in si], grads)

    (out_f, fin_f, gx_f, gs_f, gp_f), (out_r, fin_r, gx_r, gs_r, gp_r) = results["fused"], results["reference"]
    assert out_f.shape == (batch, steps, 7 * directions)
    assert_close_scaled(out_r, out_f, atol=1e-5)
    for a, b in zip(fin_r, fin_f):
        assert_close_scaled(a, b, atol=1e-5)
    assert_close_scaled(gx_r, gx_f, atol=1e-5)
    for a, b in zip(gs_r, gs_f):
        assert_close_scaled(a, b, atol=1e-5)
    assert set(gp_r) == set(gp_f) and len(gp_r) == 4 * num_layers * directions
    for name in gp_f:
        assert_close_scaled(gp_r[name], gp_f[name], atol=1e-5, msg=name)
    if with_lengths:  # padded steps give zero output in both implementations
        assert out_f[1, 2:].abs().max() == 0 and out_r[3, 1:].abs().max() == 0


@pytest.mark.parametrize(
    "cell,bias,with_state", [("rnn", True, True), ("lstm", True, False), ("lstm", False, True), ("gru", True, True)]
)
def test_padded_path_without_final_state_agrees_with_the_reference(cell, bias, with_state, monkeypatch):
    torch.manual_seed(0)
    layer = LAYERS[cell](5, 7, 2, bidirectional=True, bias=bias, dropout=0.0)

    def packed(*args):
        raise AssertionError("final_state=False on a CPU must not pack")

    monkeypatch.setattr(type(layer), "_fused_forward", packed)
    batch, steps = 4, 6
    lengths = torch.tensor([3, 6, 1, 5])  # unsorted, one full-length
    x = torch.randn(batch, steps, 5)
    init = tuple(torch.randn(4, batch, 7) for _ in range(2 if cell == "lstm" else 1))
    weights = torch.randn(batch, steps, 14)
    results = {}
    for impl, final_state in (("fused", False), ("reference", True)):
        layer.impl = impl
        xi = x.clone().requires_grad_(True)
        si = tuple(s.clone().requires_grad_(True) for s in init)
        state = (si if cell == "lstm" else si[0]) if with_state else None
        out, final = layer(xi, state, lengths=lengths, final_state=final_state)
        assert (final is None) == (not final_state)
        layer.zero_grad()
        (out * weights).sum().backward()
        results[impl] = (
            out.detach(),
            xi.grad,
            [s.grad for s in si] if with_state else [],
            {n: p.grad.clone() for n, p in layer.named_parameters()},
        )
    (out_f, gx_f, gs_f, gp_f), (out_r, gx_r, gs_r, gp_r) = results["fused"], results["reference"]
    assert_close_scaled(out_f, out_r, atol=1e-5)
    assert out_f[2, 1:].abs().max() == 0 and out_f[0, 3:].abs().max() == 0  # padding stays zero
    assert_close_scaled(gx_f, gx_r, atol=1e-5)
    for a, b in zip(gs_f, gs_r):
        assert_close_scaled(a, b, atol=1e-5)
    for name in gp_r:
        assert_close_scaled(gp_f[name], gp_r[name], atol=1e-5, msg=name)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gates_have_documented_shape_and_range(cell, bidirectional):
    torch.manual_seed(1)
    layer = LAYERS[cell](3, 5, 2, bidirectional=bidirectional)
    x = torch.randn(2, 9, 3) * 4
    out, _, gates = layer(x, return_gates=True)
    expected_names = {"lstm": {"input", "forget", "cell", "output"}, "gru": {"reset", "update", "candidate"}}[cell]
    assert set(gates) == expected_names
    directions = 2 if bidirectional else 1
    for name, value in gates.items():
        assert value.shape == (2, directions, 2, 9, 5)
        low = -1.0 if name in ("cell", "candidate") else 0.0
        assert value.min() >= low and value.max() <= 1.0
    sigmoid = [g for n, g in gates.items() if n not in ("cell", "candidate")]
    assert all(g.min() < 0.5 < g.max() for g in sigmoid)  # the gates actually vary
    layer.impl = "fused"
    assert_close_scaled(out, layer(x)[0], atol=1e-5)  # gates come with the same outputs


def test_lstm_gates_reproduce_the_cell_state():
    """c_t = f_t * c_{t-1} + i_t * g_t, h_t = o_t * tanh(c_t), read back from the returned gates."""
    torch.manual_seed(2)
    layer = LSTM(4, 6)
    out, (h_n, c_n), gates = layer(torch.randn(3, 5, 4), return_gates=True)
    i, f, g, o = (gates[k][0, 0] for k in ("input", "forget", "cell", "output"))  # (B, T, H)
    c = torch.zeros(3, 6)
    for t in range(5):
        c = f[:, t] * c + i[:, t] * g[:, t]
        torch.testing.assert_close(o[:, t] * torch.tanh(c), out[:, t])
    torch.testing.assert_close(c, c_n[0])


@pytest.mark.parametrize("cell", list(LAYERS))
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_stepping_with_carried_state_equals_one_call(cell, impl):
    torch.manual_seed(3)
    layer = LAYERS[cell](4, 6, 2, impl=impl)
    x = torch.randn(2, 7, 4)
    full, full_state = layer(x)
    state, pieces = None, []
    for chunk in (x[:, :1], x[:, 1:4], x[:, 4:]):
        out, state = layer(chunk, state)
        pieces.append(out)
    assert_close_scaled(torch.cat(pieces, dim=1), full, atol=1e-6)
    for a, b in zip(_states(state), _states(full_state)):
        assert_close_scaled(a, b, atol=1e-6)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_state_dict_is_shared_with_torch_nn(cell):
    torch.manual_seed(4)
    ours = LAYERS[cell](3, 4, 2, bidirectional=True)
    theirs = getattr(nn, cell.upper())(3, 4, 2, bidirectional=True, batch_first=True)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 5, 3)
    ours.impl = "reference"
    assert_close_scaled(ours(x)[0], theirs(x)[0], atol=1e-5)


def test_cells_match_torch_nn_cells():
    torch.manual_seed(5)
    x, h, c = torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 5)
    for ours, theirs, state in (
        (RNNCell(4, 5), nn.RNNCell(4, 5), h),
        (RNNCell(4, 5, nonlinearity="relu"), nn.RNNCell(4, 5, nonlinearity="relu"), h),
        (LSTMCell(4, 5), nn.LSTMCell(4, 5), (h, c)),
        (GRUCell(4, 5), nn.GRUCell(4, 5), h),
    ):
        theirs.load_state_dict(ours.state_dict())
        got, want = ours(x, state), theirs(x, state)
        for a, b in zip(_states(got), _states(want)):
            torch.testing.assert_close(a, b)


def test_elman_cell_is_the_textbook_equation():
    cell = RNNCell(3, 2)
    x, h = torch.randn(1, 3), torch.randn(1, 2)
    expected = torch.tanh(h @ cell.weight_hh.T + x @ cell.weight_ih.T + cell.bias_ih + cell.bias_hh)
    torch.testing.assert_close(cell(x, h), expected)


def test_impl_that_cannot_serve_the_request_raises():
    layer = LSTM(3, 4, impl="fused")
    with pytest.raises(ValueError, match="fused.*cannot return gate"):
        layer(torch.randn(1, 2, 3), return_gates=True)
    with pytest.raises(ValueError, match="has no gates"):
        RNN(3, 4)(torch.randn(1, 2, 3), return_gates=True)
    with pytest.raises(ValueError, match="impl must be one of"):
        GRU(3, 4, impl="cudnn")


def test_bad_shapes_and_lengths_raise_clear_errors():
    layer = GRU(3, 4)
    with pytest.raises(ValueError, match=r"expects input \(batch, time, 3\)"):
        layer(torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="lengths must lie in"):
        layer(torch.randn(2, 5, 3), lengths=torch.tensor([6, 1]))
    with pytest.raises(ValueError, match="initial state must be"):
        layer(torch.randn(2, 5, 3), torch.zeros(1, 3, 4))


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(6)
    layer = LSTM(3, 8, 2, dropout=0.5, impl="reference")
    x = torch.randn(2, 4, 3)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], layer(x)[0])
    layer.train()
    assert not torch.allclose(layer(x)[0], layer(x)[0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize(("num_layers", "bidirectional"), [(1, False), (1, True), (2, False), (2, True)])
def test_first_layer_gates_at_once_equal_the_reference_loop(cell, num_layers, bidirectional):
    torch.manual_seed(3)
    layer = LAYERS[cell](5, 7, num_layers, bidirectional=bidirectional)
    x = torch.randn(3, 9, 5) * 2
    _, _, expected = layer(x, return_gates=True)  # the reference loop: name -> (L, D, B, T, H)
    output, _ = layer(x)  # the fused kernels
    for given in (output, None):  # from a single layer's output, else by running the first layer
        gates = layer.first_layer_gates(x, given)
        assert set(gates) == set(expected)
        for name, value in gates.items():
            assert value.shape == (3, 9, 7)
            assert_close_scaled(value, expected[name][0, 0], atol=1e-5, msg=name)


def test_first_layer_gates_refuse_a_layer_without_gates():
    with pytest.raises(ValueError, match="has no gates"):
        RNN(3, 4).first_layer_gates(torch.randn(1, 2, 3))
