"""On a CUDA device every fast path computes what its CPU reference computes: outputs and gradients.

The fast paths take other routes on a GPU (cuDNN RNNs, CUDA scans, device-side index plans), so each
one runs on CUDA and is compared with the plain reference loop on the CPU. Both run in float64, so
the comparison is tight (atol 1e-9) whatever the summation order. Skipped without a CUDA device.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from rnnvision.layers import GRU, LSTM, RNN, MDLSTM2d, ReNetLayer, renet_reference
from rnnvision.layers.lru import LRU
from rnnvision.layers.minrnn import MinGRU, MinLSTM
from rnnvision.layers.pixelrnn import DiagonalBiLSTM, RowLSTM
from rnnvision.models import create_model, get_model_entry, list_models

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA = torch.device("cuda")
TIGHT = {"atol": 1e-9, "rtol": 1e-7}


def _outputs_and_grads(module: nn.Module, call: Callable[..., Tensor], *inputs: Tensor):
    """Run ``call(*inputs)`` and backpropagate a fixed weighting of every output element.

    Returns (output, input gradients, parameter gradients), all moved to the CPU.
    """
    inputs = tuple(t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs)
    out = call(*inputs)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype, device=out.device).view_as(out)
    module.zero_grad()
    (out * weights).sum().backward()
    input_grads = [t.grad.cpu() for t in inputs if t.grad is not None]
    param_grads = {name: p.grad.cpu() for name, p in module.named_parameters() if p.grad is not None}
    return out.detach().cpu(), input_grads, param_grads


def _assert_same(got, expected) -> None:
    (out_g, inputs_g, params_g), (out_e, inputs_e, params_e) = got, expected
    torch.testing.assert_close(out_g, out_e, **TIGHT)
    assert len(inputs_g) == len(inputs_e)
    for a, b in zip(inputs_g, inputs_e):
        torch.testing.assert_close(a, b, **TIGHT)
    assert set(params_g) == set(params_e) and params_e
    for name in params_e:
        torch.testing.assert_close(params_g[name], params_e[name], **TIGHT, msg=name)


def _fast_on_cuda_vs_reference_on_cpu(layer: nn.Module, fast: str, reference: str, *inputs: Tensor, call=None):
    """``layer`` with ``impl=fast`` on CUDA against a copy with ``impl=reference`` on the CPU (float64)."""
    cpu_layer = copy.deepcopy(layer).double()
    cuda_layer = copy.deepcopy(layer).double().to(CUDA)
    cpu_layer.impl, cuda_layer.impl = reference, fast
    call = call or (lambda module, *xs: module(*xs))
    expected = _outputs_and_grads(cpu_layer, lambda *xs: call(cpu_layer, *xs), *(x.double() for x in inputs))
    got = _outputs_and_grads(cuda_layer, lambda *xs: call(cuda_layer, *xs), *(x.double().to(CUDA) for x in inputs))
    _assert_same(got, expected)


@pytest.mark.parametrize("layer_cls", [RNN, LSTM, GRU])
def test_cudnn_sequence_layers_equal_the_reference_loop_with_lengths(layer_cls):
    torch.manual_seed(0)
    layer = layer_cls(5, 7, 2, bidirectional=True)
    lengths = torch.tensor([6, 2, 5, 1])  # (B,) right-padded batch

    def call(module, x):
        return module(x, lengths=lengths.to(x.device))[0]  # (B, T, 2H)

    _fast_on_cuda_vs_reference_on_cpu(layer, "fused", "reference", torch.randn(4, 6, 5), call=call)


def test_renet_sweeps_on_cuda_equal_the_per_column_per_row_reference():
    torch.manual_seed(0)
    layer = ReNetLayer(2, 4, patch_size=2, cell="lstm")
    x = torch.randn(3, 2, 6, 10)  # (B, C, H, W)
    cpu_layer, cuda_layer = copy.deepcopy(layer).double(), copy.deepcopy(layer).double().to(CUDA)
    expected = _outputs_and_grads(cpu_layer, lambda xi: renet_reference(cpu_layer, xi), x.double())
    got = _outputs_and_grads(cuda_layer, cuda_layer, x.double().to(CUDA))
    _assert_same(got, expected)


@pytest.mark.parametrize("size", [(1, 9), (5, 7)])
def test_mdlstm_wavefront_on_cuda_equals_the_per_pixel_loop(size):
    torch.manual_seed(0)
    layer = MDLSTM2d(3, 5, directions=4, merge="concat")
    _fast_on_cuda_vs_reference_on_cpu(layer, "wavefront", "reference", torch.randn(2, 3, *size) * 2)


@pytest.mark.parametrize("cell", [MinGRU, MinLSTM])
@pytest.mark.parametrize("impl", ["chunked", "log", "auto"])
def test_min_rnn_scans_on_cuda_equal_the_sequential_loop(cell, impl):
    torch.manual_seed(0)
    layer = cell(5, 7, chunk=8)

    def call(module, x, h0):
        out, last = module(x, h0)  # (B, T, H), (B, H)
        return torch.cat([out, last[:, None]], dim=1)

    _fast_on_cuda_vs_reference_on_cpu(layer, impl, "reference", torch.randn(3, 29, 5), torch.randn(3, 7), call=call)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("fast", ["scan", "matmul"])
def test_lru_fast_paths_on_cuda_equal_the_complex_loop(bidirectional, fast):
    torch.manual_seed(0)
    layer = LRU(5, 7, bidirectional=bidirectional, chunk=8)

    def call(module, u):
        out, last = module(u)  # (B, T, I), (B, N) complex (None when bidirectional)
        return out.flatten(1) if last is None else torch.cat([out.flatten(1), torch.view_as_real(last).flatten(1)], 1)

    _fast_on_cuda_vs_reference_on_cpu(layer, fast, "reference", torch.randn(3, 29, 5), call=call)


@pytest.mark.parametrize("layer_cls", [RowLSTM, DiagonalBiLSTM])
def test_pixelrnn_layers_on_cuda_equal_the_per_pixel_loop(layer_cls):
    torch.manual_seed(0)
    layer = layer_cls(6, 3, colors=3)
    _fast_on_cuda_vs_reference_on_cpu(layer, "fused", "reference", torch.randn(2, 6, 4, 5))


@pytest.mark.parametrize("name", list_models())
def test_every_model_gives_the_same_outputs_on_cuda_and_cpu(name):
    torch.manual_seed(0)
    model = create_model(name, **get_model_entry(name).tiny).double().eval()
    inputs = tuple(x.double() if x.is_floating_point() else x for x in model.example_inputs(batch_size=2))
    with torch.no_grad():
        expected = model(*inputs)
        got = copy.deepcopy(model).to(CUDA)(*(x.to(CUDA) for x in inputs))
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    got = got if isinstance(got, (tuple, list)) else (got,)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.cpu(), b, **TIGHT)


@pytest.mark.parametrize("name", ["pixelrnn_row", "pixelrnn_diag"])
def test_incremental_sampling_on_cuda_gives_the_naive_conditionals(name):
    torch.manual_seed(0)
    model = create_model(name, hidden=6, layers=2, out_hidden=12, levels=4, img_size=(4, 5)).double().to(CUDA).eval()
    x = torch.randint(0, 4, (2, 1, 4, 5), device=CUDA).double() / 3
    incremental = model.conditionals(x, method="incremental")
    torch.testing.assert_close(incremental, model.conditionals(x, method="naive"), **TIGHT)
    samples = model.sample(3, method="incremental", generator=torch.Generator(CUDA).manual_seed(0))
    assert samples.device == x.device and samples.shape == (3, 1, 4, 5)
