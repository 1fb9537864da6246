"""``oaws alerts ...``: price, change and OI alerts from the command line (``oaws.alerts``)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Price, change and OI alerts: add, list, remove, and watch them fire.", no_args_is_help=True)
