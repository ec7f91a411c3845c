"""`import rnnvision` and `rnnvision --help` do not import torch; the public names still resolve."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_and_help_do_not_import_torch():
    code = (
        "import sys, contextlib, io, rnnvision.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        rnnvision.cli.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('torch' in sys.modules)"
    )
    assert _run(code) == "False"


def test_public_names_resolve_on_first_use():
    code = (
        "import rnnvision\n"
        "from rnnvision.weights import resolve\n"
        "print(rnnvision.load is resolve, 'row_lstm' in rnnvision.list_models(), callable(rnnvision.create_model),"
        " 'digits_row_lstm' in rnnvision.list_weights())"
    )
    assert _run(code) == "True True True True"
