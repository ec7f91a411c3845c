"""The hand-differentiated gate coefficients equal the autograd formulas, values and gradients."""

from __future__ import annotations

import pytest
import torch

from rnnvision.ops.min_gates import (
    mingru_coefficients,
    mingru_coefficients_reference,
    minlstm_coefficients,
    minlstm_coefficients_reference,
)
from tests.conftest import assert_close_scaled

PAIRS = {
    "mingru": (2, mingru_coefficients, mingru_coefficients_reference),
    "minlstm": (3, minlstm_coefficients, minlstm_coefficients_reference),
}


@pytest.mark.parametrize("cell", PAIRS)
def test_fused_coefficients_equal_the_formulas_on_values_and_gradients(cell):
    torch.manual_seed(0)
    blocks, fused, reference = PAIRS[cell]
    x = torch.randn(3, 7, blocks * 5) * 3
    x[0, 0] = torch.linspace(-40, 40, blocks * 5)  # saturated gates and both sides of g's kink
    x[0, 1] = 0.0
    weights = torch.randn(2, 3, 7, 5)
    results = []
    for fn in (fused, reference):
        xi = x.clone().requires_grad_(True)
        log_a, b = fn(xi)
        ((log_a * weights[0]).sum() + (b * weights[1]).sum()).backward()
        results.append((log_a.detach(), b.detach(), xi.grad))
    for got, expected in zip(*results):
        assert torch.isfinite(got).all()
        assert_close_scaled(got, expected, atol=1e-5)


@pytest.mark.parametrize("cell", PAIRS)
def test_fused_coefficients_take_a_gradient_through_only_one_output(cell):
    blocks, fused, reference = PAIRS[cell]
    x = torch.randn(2, 4, blocks * 3)
    for pick in (0, 1):
        grads = []
        for fn in (fused, reference):
            xi = x.clone().requires_grad_(True)
            fn(xi)[pick].sum().backward()
            grads.append(xi.grad)
        assert_close_scaled(grads[0], grads[1], atol=1e-5)
