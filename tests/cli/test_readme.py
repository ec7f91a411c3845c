"""The README's command-line tour shows what the commands print today (the listings need no data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnvision.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def shown_output(command: str) -> str:
    """The lines the README shows after ``$ COMMAND``, up to a blank line, the next command or the block's end."""
    text = README.read_text(encoding="utf-8")
    lines = text[text.index(f"$ {command}\n") :].splitlines()[1:]
    shown = []
    for line in lines:
        if not line or line.startswith(("$ ", "```")):
            break
        shown.append(line)
    return "\n".join(shown)


@pytest.mark.parametrize("command", ["list-models", "list-weights"])
def test_readme_listing_is_the_commands_output(command, capsys):
    assert main([command]) == 0
    assert shown_output(f"rnnvision {command}") == capsys.readouterr().out.rstrip("\n")
