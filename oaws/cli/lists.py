"""``oaws watchlist ...``: the watch's lists from the command line (kept by ``oaws.store``).

The lists live in the config file (docs/watchlists.md): ``default`` is its top-level
``watchlist``, the others its ``[watchlists]`` table. Instruments are checked
(SYMBOL:EXCHANGE) before anything is written, and written as ``oaws.instruments`` spells
them (``reliance:nse`` is saved as ``RELIANCE:NSE``).
"""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from oaws.cli.common import JsonOpt, command, fail

app = typer.Typer(
    help="The watch's lists: show, create, rename, delete, add to and remove from them.", no_args_is_help=True
)

NameArg = Annotated[
    str, typer.Argument(help="The list's name; default is the top-level watchlist.", show_default=False)
]
_INSTRUMENTS_HELP = "SYMBOL:EXCHANGE, e.g. RELIANCE:NSE NIFTY:NSE_INDEX."
InstrumentsArg = Annotated[list[str], typer.Argument(help=_INSTRUMENTS_HELP, show_default=False)]
SomeInstrumentsArg = Annotated[list[str] | None, typer.Argument(help=_INSTRUMENTS_HELP, show_default=False)]


def _instruments(given: list[str] | None) -> list[str]:
    """The instruments as saved; a bad one is a command-line mistake (exit 2), and nothing is written."""
    from oaws.instruments import InstrumentError, parse_many

    try:
        return [str(i) for i in parse_many(given or [])]
    except InstrumentError as exc:
        fail(str(exc), 2)
        raise  # not reached: fail exits


def _count(n: int) -> str:
    return f"{n} instrument" if n == 1 else f"{n} instruments"


def _items(name: str) -> tuple[list[str], bool]:
    """List ``name``'s instruments and whether it is saved: the default list, never saved, is
    the built-in one the watch shows."""
    from oaws import store
    from oaws.instruments import DEFAULT_WATCHLIST

    saved = store.lists()
    if name in saved:
        return saved[name], True
    if name == store.DEFAULT:
        return list(DEFAULT_WATCHLIST), False
    known = ", ".join(saved) or "none"
    raise store.StoreError(f"no watchlist named {name!r} in {store.path()} (known: {known})", code=2)


def _say(text: str) -> None:
    typer.echo(f"oaws: {text}")


@command(app, "list")
def list_lists(as_json: JsonOpt = False) -> None:
    """The lists with their sizes; * marks the default one (the watch's without --watchlist)."""
    from oaws import store
    from oaws.instruments import DEFAULT_WATCHLIST

    saved = store.lists()
    rows = [(name, len(items), True) for name, items in saved.items()]
    if store.DEFAULT not in saved:
        rows.insert(0, (store.DEFAULT, len(DEFAULT_WATCHLIST), False))
    if as_json:
        for name, n, kept in rows:
            line = {"name": name, "count": n, "default": name == store.DEFAULT, "saved": kept}
            typer.echo(orjson.dumps(line).decode())
        return
    width = max(len(name) for name, _, _ in rows)
    for name, n, kept in rows:
        mark = "*" if name == store.DEFAULT else " "
        note = "" if kept else "  (built in: not saved yet)"
        typer.echo(f"{mark} {name:<{width}}  {_count(n)}{note}")


@command(app, "show")
def show(name: NameArg, as_json: JsonOpt = False) -> None:
    """List NAME's instruments, one a line."""
    from oaws import store

    items, kept = _items(name)
    if as_json:
        line = {"name": name, "instruments": items, "columns": store.columns(name), "saved": kept}
        typer.echo(orjson.dumps(line).decode())
        return
    for item in items:
        typer.echo(item)


@command(app, "create")
def create(name: NameArg, instruments: SomeInstrumentsArg = None) -> None:
    """A new list NAME, empty or with INSTRUMENT..."""
    from oaws import store

    items = _instruments(instruments)
    store.create_list(name, items)
    _say(f"created {name} ({_count(len(items))})")


@command(app, "rename")
def rename(
    old: Annotated[str, typer.Argument(help="The list's name.", show_default=False)],
    new: Annotated[str, typer.Argument(help="Its new name.", show_default=False)],
) -> None:
    """List OLD is called NEW (its columns go with it). The default list keeps its name."""
    from oaws import store

    store.rename_list(old, new)
    _say(f"renamed {old} to {new}")


@command(app, "delete")
def delete(name: NameArg) -> None:
    """List NAME and its columns are gone. The default list cannot be deleted."""
    from oaws import store

    n = len(store.lists().get(name, ()))
    store.delete_list(name)
    _say(f"deleted {name} ({_count(n)})")


@command(app, "add")
def add(name: NameArg, instruments: InstrumentsArg) -> None:
    """INSTRUMENT... added at the end of list NAME (those already in it are left where they are)."""
    from oaws import store

    items = _instruments(instruments)
    added = store.add_to_list(name, items)
    total = len(store.lists().get(name, ()))
    text = f"added {len(added)} to {name} ({_count(total)})"
    already = [x for x in items if x not in added]
    if already:
        text += f"; {', '.join(already)} {'was' if len(already) == 1 else 'were'} already in it"
    _say(text)


@command(app, "remove")
def remove(name: NameArg, instruments: InstrumentsArg) -> None:
    """INSTRUMENT... taken out of list NAME (all of them, or none when one is not in it)."""
    from oaws import store

    items = _instruments(instruments)
    removed = store.remove_from_list(name, items)
    total = len(store.lists().get(name, ()))
    _say(f"removed {len(removed)} from {name} ({_count(total)})")
