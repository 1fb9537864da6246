"""``oaws watchlist ...``: the watch's lists from the command line (kept by ``oaws.store``)."""

from __future__ import annotations

import typer

app = typer.Typer(help="The watch's lists: show, create, rename, delete, add to and remove from them.", no_args_is_help=True)
