"""Counts below their least are refused by name before a model is built; torch's own refusals are one line too."""

from __future__ import annotations

import pytest

from rnnvision.errors import UserError
from rnnvision.models import create_model


@pytest.mark.parametrize(
    "name,options,message",
    [
        ("pixel_lru", {"num_layers": -1}, "num_layers must be at least 1"),  # had built a model with no layers
        ("cross_mingru", {"num_layers": 0}, "num_layers must be at least 1"),
        ("mdlstm_seg", {"patch_size": -1}, "patch_size must be at least 1"),  # had failed only in forward
        ("reseg", {"hidden_sizes": (8, 0)}, "hidden_sizes must be at least 1"),
        ("row_lstm", {"head_hidden": -1}, "head_hidden must be at least 0"),
        ("crnn", {"hidden_size": -1}, "hidden_size must be at least 0"),  # 0, its default: the variant's width
    ],
)
def test_a_count_below_its_least_is_refused_by_name(name, options, message):
    with pytest.raises(UserError, match=message):
        create_model(name, **options)


def test_a_builders_own_default_passes():
    assert create_model("crnn", hidden_size=0).head[-1].in_features > 0


def test_head_hidden_zero_is_a_linear_head():
    model = create_model("row_lstm", head_hidden=0, hidden_size=4)
    assert sum(1 for m in model.head.modules() if m.__class__.__name__ == "Linear") == 1


def test_a_size_torch_cannot_allocate_is_one_line_naming_the_options():
    with pytest.raises(
        UserError, match=r"model 'row_lstm' cannot be built with hidden_size=1099511627776 \("
    ) as caught:
        create_model("row_lstm", hidden_size=2**40)  # torch refuses the allocation at once (RuntimeError)
    assert "\n" not in str(caught.value)
