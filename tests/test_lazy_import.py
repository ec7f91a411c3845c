"""`import rnnvision`, `rnnvision --help`, `list-models` and `list-weights` do not import torch; the
public names still resolve; the torch-free model listing is the registry's."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("argv", [["--help"], ["list-models"], ["list-models", "--task", "segment"], ["list-weights"]])
def test_import_help_and_listings_do_not_import_torch(argv):
    code = (
        "import sys, contextlib, io, rnnvision.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        rnnvision.cli.main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('torch' in sys.modules)"
    )
    assert _run(code) == "False"


def test_the_model_listing_read_from_the_source_is_the_registry():
    from rnnvision.model_listing import model_listings
    from rnnvision.models import get_model_entry, list_models

    listed = {(m.name, m.task, m.summary) for m in model_listings()}
    registered = {
        (n, get_model_entry(n).task, (get_model_entry(n).builder.__doc__ or "").strip().splitlines()[0])
        for n in list_models()
    }
    assert listed == registered and len(listed) == len(list_models())
    assert [m.name for m in model_listings("generate")] == list_models("generate")


def test_public_names_resolve_on_first_use():
    code = (
        "import rnnvision\n"
        "from rnnvision.weights import resolve\n"
        "print(rnnvision.load is resolve, 'row_lstm' in rnnvision.list_models(), callable(rnnvision.create_model),"
        " 'digits_row_lstm' in rnnvision.list_weights())"
    )
    assert _run(code) == "True True True True"
