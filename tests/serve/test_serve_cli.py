"""``rnnvision serve`` on the command line: one-line errors, exit status 2."""

from __future__ import annotations

import socket
import sys

from rnnvision.cli import main


def test_serve_needs_a_checkpoint(capsys):
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give one or more checkpoints" in err


def test_a_taken_port_is_one_line(capsys, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(tmp_path / "best.pt"), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_a_missing_checkpoint_is_one_line(capsys, tmp_path):
    assert main(["serve", str(tmp_path / "nothing.pt"), "--port", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_without_the_serve_extra_the_error_names_the_install_command(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "rnnvision.serve", None)  # import fails as if starlette were missing
    assert main(["serve", "x.pt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'rnnvision[serve]'" in err


def test_other_commands_do_not_import_the_web_framework():
    import subprocess

    code = "import sys, rnnvision.cli as c; c.build_parser(); print('starlette' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "False", out.stderr
