"""Rich tables on standard output: the terminal's width on a terminal; whole lines without
trailing spaces in a pipe or a file (rich pads every line to the table's width)."""

from __future__ import annotations

import sys
from typing import Any

#: the width a table may take in a pipe: as wide as it needs, short of a runaway column
PIPE_WIDTH = 200


def print_tables(*renderables: Any, width: int | None = None) -> None:
    """Print each renderable; a blank line between them. ``width``: the width in a pipe."""
    from rich.console import Console

    tty = sys.stdout.isatty()
    console = Console(highlight=False, width=None if tty else width or PIPE_WIDTH)
    if tty:
        for n, item in enumerate(renderables):
            if n:
                console.print()
            console.print(item)
        return
    with console.capture() as captured:
        for n, item in enumerate(renderables):
            if n:
                console.print()
            console.print(item)
    text = "".join(line.rstrip() + "\n" for line in captured.get().splitlines())
    sys.stdout.write(text)
    sys.stdout.flush()
