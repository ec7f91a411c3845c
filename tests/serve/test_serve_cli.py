"""``rnnvision serve`` on the command line: one-line errors, exit status 2."""

from __future__ import annotations

import socket
import sys

from rnnvision.cli import main


def _served(monkeypatch, argv: list[str]) -> list:
    """Run ``rnnvision serve ARGV`` up to the web server (not started); return the models it loaded."""
    import uvicorn

    from rnnvision.serve import app

    loaded: list = []
    monkeypatch.setattr(app, "create_app", lambda models: loaded.extend(models))
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    assert main(["serve", *argv, "--port", "0"]) == 0
    return loaded


def test_without_a_model_every_shipped_weights_entry_is_served(monkeypatch, capsys):
    from rnnvision.weights import list_weights

    served = _served(monkeypatch, [])
    assert [m.name for m in served] == list_weights() and "serving digits_row_lstm (classify" in capsys.readouterr().out


def test_weights_are_served_by_name(monkeypatch):
    served = _served(monkeypatch, ["--weights", "digits_row_lstm", "--weights", "mnist_row_lstm"])
    assert [(m.name, m.state["weights"]) for m in served] == [("digits_row_lstm",) * 2, ("mnist_row_lstm",) * 2]


def test_an_unknown_weights_name_is_one_line(capsys):
    assert main(["serve", "--weights", "digits_row_lstn", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "known: " in err and "digits_row_lstm," in err


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
