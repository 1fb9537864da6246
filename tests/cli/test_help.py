"""Every command's --help reads as a person would write it (issue 19 #7, #23): rich markup
does not eat a ``[angel]`` of a help text, and the options show words (``PORT``, ``FILE``),
not ``<bool>``, ``<list[str]>`` or ``<int range> [0<=x<=65535]``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from oaws.cli import app
from oaws.cli.help import HumanGroup, range_text

#: what typer writes where a person would write a word
MACHINE = re.compile(r"<(bool|str|int|float|list|path|int range|float range)\b|\[[^\]\s]*x[<>]=|\{[A-Z_]+\}")
BRACKETED = re.compile(r"\[[^\]\s]+\]")


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from commands(sub, (*path, name))


def texts(command: Any) -> list[str]:
    """The help texts written for a command: its own and its parameters'."""
    found = [command.help or "", command.short_help or "", getattr(command, "epilog", None) or ""]
    return found + [getattr(p, "help", None) or "" for p in command.params]


@pytest.fixture
def render(tmp_path, monkeypatch):
    monkeypatch.setenv("OAWS_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "300")  # long enough that a bracketed word is not wrapped
    try:
        import typer.rich_utils as rich_utils

        monkeypatch.setattr(rich_utils, "MAX_WIDTH", 300, raising=False)
    except ImportError:  # typer without rich: plain help, nothing to eat
        pass

    def help_of(target: Any, path: tuple[str, ...]) -> str:
        result = CliRunner().invoke(target, [*path, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return help_of


def test_every_help_keeps_its_brackets_and_shows_no_machine_types(render):
    root = typer.main.get_command(app)
    checked = 0
    for path, command in commands(root):
        if getattr(command, "hidden", False):
            continue
        shown = render(app, path)
        assert not MACHINE.search(shown), f"`oaws {' '.join(path)} --help` shows {MACHINE.search(shown)[0]!r}"
        for text in texts(command):
            # the escaped texts (rich.markup.escape) are what the command holds now: unescape them
            for word in BRACKETED.findall(text.replace("\\[", "[")):
                assert word in shown, f"`oaws {' '.join(path)} --help` lost {word!r}"
        checked += 1
    assert checked > 20  # the whole tree was walked, not only the root


def test_a_bracketed_section_in_any_help_text_is_printed(render):
    """The global fix covers commands added by any module: a group of the oaws class."""
    demo = typer.Typer(cls=HumanGroup)

    @demo.callback()
    def main() -> None:
        """Demo."""

    @demo.command()
    def login(
        broker: Annotated[str, typer.Argument(help="The [angel] broker.")],
        port: Annotated[int, typer.Option(min=0, max=65535, help="The [port] to use.")] = 1,
        names: Annotated[list[str] | None, typer.Option("--name", help="Names.")] = None,
        flag: Annotated[bool, typer.Option("--flag", help="A flag.")] = False,
    ) -> None:
        """Credentials come from the [angel] section of the config file."""

    shown = render(demo, ("login",))
    assert "the [angel] section of the config file" in shown
    assert "The [angel] broker." in shown and "[port]" in shown
    assert "0 to 65535" in shown and "PORT" in shown and "BROKER" in shown
    assert not MACHINE.search(shown), MACHINE.search(shown)[0]


@pytest.mark.parametrize(
    ("low", "high", "text"),
    [(0, 65535, "0 to 65535"), (1, None, "at least 1"), (None, 60, "at most 60"), (None, None, "")],
)
def test_a_range_in_words(low, high, text):
    assert range_text(low, high) == text
