"""The watchlists, their columns, the alerts and the alert settings, kept in the config file.

Everything lives in the user's own config file (``oaws.config.config_path()``,
``$OAWS_CONFIG``), edited in place with tomlkit so that its comments, order and layout
survive every edit (docs/watchlists.md)::

    watchlist = ["RELIANCE:NSE", "INFY:NSE"]      # the list named "default"
    alerts_next_id = 3                            # ids are never reused

    [watchlists]                                  # the named lists, in file order
    banks = ["HDFCBANK:NSE", "SBIN:NSE"]

    [columns]                                     # the grid's columns, per list
    banks = ["symbol", "ltp", "change_percent"]

    [notify]                                      # what a firing alert does
    command = "~/bin/alert-to-phone"
    bell = true
    desktop = true

    [[alerts]]                                    # oaws.alerts.Alert.to_dict()
    id = 1
    instrument = "RELIANCE:NSE"
    kind = "above"
    value = 1500.0
    state = "armed"
    created = "2026-12-02T10:15:00+05:30"

Reads go through ``oaws.config.file_config()`` (parsed once per change of the file). Every
write holds an exclusive lock (``fcntl.flock`` on ``config.toml.lock`` beside the file)
around its read-modify-write, then replaces the file atomically (a temporary file in the
same directory, fsync, ``os.replace``), keeping its mode; a new file is made 0600 (it may
hold API keys). A file that cannot be parsed is never written. Each write leaves the file
with a newer modification time than before (``version()``), even within the file
system's clock granularity, so that a screen polling it, and the parse cache, see it.

List names: one to 40 printable characters, no spaces at either end. ``default`` is the
top-level ``watchlist``: it can be saved, added to and removed from, not renamed or
deleted, and no named list may take its name. Items are compared as instruments
(``reliance:nse`` is ``RELIANCE:NSE``) where they parse as one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import stat
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Array, InlineTable, Null, Table, Whitespace

from oaws import config
from oaws.alerts import ARMED, KINDS, Alert
from oaws.config import ConfigError
from oaws.instruments import DEFAULT_WATCHLIST, InstrumentError, parse

DEFAULT = "default"
MAX_NAME = 40
#: the first line of a config file this module makes
HEADER = "# oaws settings (see docs/watchlists.md); oaws keeps comments and layout when it edits this file"
#: seconds an edit waits for another program's edit to end (they take milliseconds)
LOCK_TIMEOUT = 10.0
#: the top-level key that remembers the next alert id (so that a removed alert's id is not reused)
NEXT_ID = "alerts_next_id"

T = TypeVar("T")


class StoreError(ConfigError):
    """The lists or alerts cannot be read or saved: one sentence naming the file (and the list,
    key or alert). ``code`` 2 for a mistake of the caller's (a bad name, an unknown list)."""


# Where and when ---------------------------------------------------------------------
def path() -> Path:
    """The config file the lists and alerts are kept in."""
    return config.config_path()


def version() -> int:
    """The file's modification time in ns, or 0 when there is none: it changes with every
    write (this process's or another's), so a screen polls it to see an edit made elsewhere."""
    try:
        return path().stat().st_mtime_ns
    except OSError:
        return 0


# Reading ---------------------------------------------------------------------------
def _parsed() -> dict[str, Any]:
    try:
        return config.file_config()
    except StoreError:
        raise
    except ConfigError as exc:
        raise StoreError(str(exc)) from None


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise StoreError(f"{what} in {path()} is not a list of strings")
    return list(value)


def _named(cfg: dict[str, Any]) -> dict[str, Any]:
    named = cfg.get("watchlists", {})
    if not isinstance(named, dict):
        raise StoreError(f"watchlists in {path()} is not a table of lists")
    return named


def _lists_of(cfg: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    named = _named(cfg)
    if "watchlist" in cfg:
        found[DEFAULT] = _strings(cfg["watchlist"], "watchlist")
        if DEFAULT in named:
            raise StoreError(f"{path()} has both watchlist and a list named default in [watchlists]; keep one")
    elif DEFAULT in named:
        found[DEFAULT] = _strings(named[DEFAULT], "watchlists.default")
    for name, items in named.items():
        if name != DEFAULT:
            found[name] = _strings(items, f"watchlists.{tomlkit.key(name).as_string()}")
    return found


def lists() -> dict[str, list[str]]:
    """Every saved list in file order, ``default`` (the top-level ``watchlist``) first when present."""
    return _lists_of(_parsed())


def list_names() -> list[str]:
    return list(lists())


def columns(name: str) -> list[str] | None:
    """The columns saved for list ``name`` (``[columns]``), in order, or None."""
    table = _parsed().get("columns", {})
    if not isinstance(table, dict):
        raise StoreError(f"columns in {path()} is not a table of lists")
    if name not in table:
        return None
    return _strings(table[name], f"columns.{tomlkit.key(name).as_string()}")


def _alerts_of(cfg: dict[str, Any]) -> list[Alert]:
    raw = cfg.get("alerts", [])
    if not isinstance(raw, list):
        raise StoreError(f"alerts in {path()} is not an array of tables ([[alerts]])")
    found: list[Alert] = []
    for n, entry in enumerate(raw, 1):
        if not isinstance(entry, dict):
            raise StoreError(f"alert {n} in {path()} is not a table")
        try:
            found.append(Alert.from_dict(entry))
        except ValueError as exc:
            raise StoreError(f"alert {n} in {path()} is not valid: {exc}") from None
    return found


def alerts() -> list[Alert]:
    """The saved alerts in file order."""
    return _alerts_of(_parsed())


def notify_settings() -> dict[str, Any]:
    """``[notify]``: ``command`` (str or None), ``bell`` and ``desktop`` (bool, default True)."""
    table = _parsed().get("notify", {})
    if not isinstance(table, dict):
        raise StoreError(f"notify in {path()} is not a table")
    out: dict[str, Any] = {"command": None, "bell": True, "desktop": True}
    command = table.get("command")
    if command is not None and not isinstance(command, str):
        raise StoreError(f"notify.command in {path()} is not a string", code=2)
    out["command"] = command or None
    for key in ("bell", "desktop"):
        if key in table:
            if not isinstance(table[key], bool):
                raise StoreError(f"notify.{key} in {path()} is not true or false", code=2)
            out[key] = table[key]
    return out


# Writing ---------------------------------------------------------------------------
def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    return exc.strerror or str(exc)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    lock = target.with_name(target.name + ".lock")
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot save {target}: cannot make its lock file {lock}: {_reason(exc)}") from None
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"cannot save {target}: another program has held its lock {lock} for {LOCK_TIMEOUT:g} s"
                    ) from None
                time.sleep(0.002)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write(target: Path, text: str, old: os.stat_result | None) -> None:
    """``text`` into ``target`` at once: a temporary file beside it, fsync, rename over it."""
    mode = stat.S_IMODE(old.st_mode) if old else 0o600
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):  # root editing a user's file leaves it theirs
                    os.fchown(f.fileno(), old.st_uid, old.st_gid)
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        tmp = None
        # a write within the clock's granularity must still look like a change
        new = target.stat()
        if old is not None and new.st_mtime_ns <= old.st_mtime_ns:
            os.utime(target, ns=(new.st_atime_ns, old.st_mtime_ns + 1))
        with contextlib.suppress(OSError):
            dfd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as exc:
        raise StoreError(f"cannot save {target}: {_reason(exc)}; it was left as it was") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _edit(change: Callable[[tomlkit.TOMLDocument], T]) -> T:
    """Read the file under the lock, let ``change`` edit it, and write it back if it changed.

    ``change`` raising (a StoreError) writes nothing."""
    shown = path()
    target = Path(os.path.realpath(shown))  # a symlinked config file stays a symlink
    with _locked(target):
        try:
            old: os.stat_result | None = target.stat()
            text = target.read_bytes().decode("utf-8")
        except FileNotFoundError:
            old, text = None, ""
        except UnicodeDecodeError:
            raise StoreError(f"the config file {shown} is not UTF-8 text; it was left as it is") from None
        except OSError as exc:
            raise StoreError(f"cannot read the config file {shown}: {_reason(exc)}") from None
        try:
            doc = tomlkit.parse(text)
            tomllib.loads(text)
        except (TOMLKitError, tomllib.TOMLDecodeError) as exc:
            raise StoreError(f"the config file {shown} is not valid TOML ({exc}); it was left as it is") from None
        if old is None:
            doc.add(tomlkit.comment(HEADER[2:]))
        result = change(doc)
        new_text = doc.as_string()
        if new_text and not new_text.endswith("\n"):
            new_text += "\n"
        if new_text == text:
            return result
        try:
            tomllib.loads(new_text)
        except tomllib.TOMLDecodeError as exc:  # pragma: no cover - a tomlkit bug
            raise StoreError(f"an edit of {shown} would not be valid TOML ({exc}); nothing was saved") from None
        _write(target, new_text, old)
    config._read.cache_clear()
    return result


def _set_top(doc: tomlkit.TOMLDocument, key: str, value: Any) -> None:
    """``key = value`` at the top level: in place when it is there, else after the last
    top-level value, else before the first table, with a blank line between."""
    if key in doc:
        doc[key] = value
        return
    body = doc.body
    first = next((i for i, (_, item) in enumerate(body) if isinstance(item, Table | AoT)), None)
    last = None
    for k, _item in body[:first]:
        if k is not None:
            last = k.key
    if last is not None:
        doc._insert_after(last, key, value)
        return
    if first is None:
        doc[key] = value
        return
    at = first
    while at > 0 and isinstance(body[at - 1][1], Whitespace):
        at -= 1
    doc._insert_at(at, key, value)
    following = doc.body[at + 1][1]
    header = following[0] if isinstance(following, AoT) and len(following) else following
    if isinstance(header, Table) and "\n" not in header.trivia.indent:
        header.trivia.indent = "\n" + header.trivia.indent


def _drop_if_empty(doc: tomlkit.TOMLDocument, key: str) -> None:
    """Table ``key`` gone when nothing is left in it (not even a comment)."""
    table = doc.get(key)
    if isinstance(table, Table) and all(k is None and isinstance(i, Whitespace | Null) for k, i in table.value.body):
        del doc[key]


def _table(doc: tomlkit.TOMLDocument, key: str, *, create: bool) -> Table | InlineTable | None:
    if key not in doc:
        if not create:
            return None
        new = tomlkit.table()
        at = next((i for i, (k, item) in enumerate(doc.body) if isinstance(item, AoT)), None)
        if at is None:
            doc[key] = new  # at the end
        else:  # before the alerts, which are the file's last part as this module writes it
            doc._insert_at(at, key, new)
            first = doc.body[at + 1][1]
            if isinstance(first, AoT) and len(first) and "\n" not in first[0].trivia.indent:
                first[0].trivia.indent = "\n" + first[0].trivia.indent
    table = doc[key]
    if not isinstance(table, Table | InlineTable):
        raise StoreError(f"{key} in {path()} is not a table")
    return table


def _is_instrument(item: str) -> bool:
    try:
        parse(item)
    except InstrumentError:
        return False
    return True


def _ident(item: str) -> str:
    """An item as it is compared: the instrument it names (``reliance:nse`` is ``RELIANCE:NSE``)."""
    try:
        return str(parse(item))
    except InstrumentError:
        return item


#: a list longer than this on one line is written one item a line
WIDE = 88


def _array(items: Iterable[str], like: Any = None) -> Array:
    arr = tomlkit.array()
    arr.extend(items)
    if (isinstance(like, Array) and "\n" in like.as_string()) or len(arr.as_string()) > WIDE:
        arr.multiline(True)
    return arr


def _assign(container: Any, key: str, items: list[str]) -> None:
    """``container[key] = items``, editing the array there in place where the edit is
    removals and additions at the end, so that the comments among its items stay."""
    old = container.get(key) if key in container else None
    if isinstance(old, Array):
        current = [str(x) for x in old]
        keep = [x for x in current if x in items]
        if items[: len(keep)] == keep:
            for i in reversed(range(len(current))):
                if current[i] not in items:
                    del old[i]
            for x in items[len(keep) :]:
                old.append(x)
            if "\n" not in old.as_string() and len(old.as_string()) > WIDE:
                old.multiline(True)
            return
    new = _array(items, old)
    if isinstance(container, tomlkit.TOMLDocument):
        _set_top(container, key, new)
    else:
        container[key] = new


def check_name(name: str) -> str:
    """``name`` if it may name a list, else StoreError (one sentence, exit code 2)."""
    if not isinstance(name, str) or not name.strip():
        raise StoreError("a list name cannot be empty", code=2)
    if name != name.strip():
        raise StoreError(f"the list name {name!r} starts or ends with a space", code=2)
    if not name.isprintable():
        raise StoreError(f"the list name {name!r} has a character that cannot be shown", code=2)
    if len(name) > MAX_NAME:
        raise StoreError(f"the list name {name[:20]!r}... is longer than {MAX_NAME} characters", code=2)
    return name


def _where(doc: tomlkit.TOMLDocument, name: str) -> tuple[Any, str]:
    """The container and key that hold list ``name`` (or would)."""
    if name == DEFAULT:
        named = doc.get("watchlists")
        if "watchlist" not in doc and isinstance(named, Table | InlineTable) and DEFAULT in named:
            return named, DEFAULT
        return doc, "watchlist"
    table = _table(doc, "watchlists", create=True)
    return table, name


def _current(doc: tomlkit.TOMLDocument) -> dict[str, list[str]]:
    return _lists_of(doc.unwrap())


def _unknown(name: str, known: dict[str, list[str]]) -> StoreError:
    names = ", ".join(known) or "none"
    return StoreError(f"no watchlist named {name!r} in {path()} (known: {names})", code=2)


def save_list(name: str, items: list[str]) -> None:
    """List ``name`` is ``items`` (made when it is not there); ``default`` is the top-level ``watchlist``.

    Entries of the list in the file that are not instruments (a typo the watch left out,
    with a warning) stay at its end: the screen never shows them, so saving what it shows
    must not lose them."""
    check_name(name)
    items = [str(x) for x in items]

    def change(doc: tomlkit.TOMLDocument) -> None:
        before = _current(doc).get(name, [])
        container, key = _where(doc, name)
        _assign(container, key, items + [x for x in before if not _is_instrument(x) and x not in items])

    _edit(change)


def create_list(name: str, items: Iterable[str] = ()) -> None:
    """A new list ``name``; StoreError when one of that name is there."""
    check_name(name)
    items = _unique(items)

    def change(doc: tomlkit.TOMLDocument) -> None:
        if name in _current(doc):
            raise StoreError(f"a watchlist named {name!r} is already in {path()}", code=2)
        container, key = _where(doc, name)
        _assign(container, key, items)

    _edit(change)


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(_ident(str(item)), str(item))
    return list(seen.values())


def rename_list(old: str, new: str) -> None:
    """List ``old`` is called ``new`` (in the same place in the file); its columns go with it."""
    check_name(new)
    if DEFAULT in (old, new):
        raise StoreError(
            "the default list (watchlist in the config file) cannot be renamed, nor a list renamed to default", code=2
        )

    def change(doc: tomlkit.TOMLDocument) -> None:
        known = _current(doc)
        if old not in known:
            raise _unknown(old, known)
        if new in known:
            raise StoreError(f"a watchlist named {new!r} is already in {path()}", code=2)
        if old == new:
            return
        table = _table(doc, "watchlists", create=False)
        assert table is not None
        table.value._replace(old, new, table[old])
        cols = _table(doc, "columns", create=False)
        if cols is not None and old in cols:
            cols.value._replace(old, new, cols[old])

    _edit(change)


def delete_list(name: str) -> None:
    """List ``name`` and its columns are gone; the default list cannot be deleted."""
    if name == DEFAULT:
        raise StoreError("the default list (watchlist in the config file) cannot be deleted; empty it instead", code=2)

    def change(doc: tomlkit.TOMLDocument) -> None:
        known = _current(doc)
        if name not in known:
            raise _unknown(name, known)
        table = _table(doc, "watchlists", create=False)
        assert table is not None
        del table[name]
        _drop_if_empty(doc, "watchlists")
        cols = _table(doc, "columns", create=False)
        if cols is not None and name in cols:
            del cols[name]
            _drop_if_empty(doc, "columns")

    _edit(change)


def _existing(doc: tomlkit.TOMLDocument, name: str) -> list[str]:
    """The items of list ``name``; the default list, never saved, is the built-in one the watch shows."""
    known = _current(doc)
    if name in known:
        return known[name]
    if name == DEFAULT:
        return list(DEFAULT_WATCHLIST)
    raise _unknown(name, known)


def add_to_list(name: str, items: Iterable[str]) -> list[str]:
    """``items`` added at the end of list ``name``; returns those that were not there already.

    The default list, when it was never saved, starts from the built-in one the watch shows."""
    wanted = _unique(items)

    def change(doc: tomlkit.TOMLDocument) -> list[str]:
        current = _existing(doc, name)
        have = {_ident(x) for x in current}
        added = [x for x in wanted if _ident(x) not in have]
        if added or name not in _current(doc):
            container, key = _where(doc, name)
            _assign(container, key, current + added)
        return added

    return _edit(change)


def remove_from_list(name: str, items: Iterable[str]) -> list[str]:
    """``items`` taken out of list ``name`` (as the list spells them); StoreError naming those
    not in it, and then nothing is removed."""
    wanted = _unique(items)

    def change(doc: tomlkit.TOMLDocument) -> list[str]:
        current = _existing(doc, name)
        have = {_ident(x): x for x in current}
        missing = [x for x in wanted if _ident(x) not in have]
        if missing:
            raise StoreError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in {name}", code=2)
        gone = {_ident(x) for x in wanted}
        container, key = _where(doc, name)
        _assign(container, key, [x for x in current if _ident(x) not in gone])
        return [have[_ident(x)] for x in wanted]

    return _edit(change)


def save_columns(name: str, keys: list[str]) -> None:
    """The grid's columns for list ``name`` (``[columns]``), in order."""
    check_name(name)
    keys = [str(k) for k in keys]

    def change(doc: tomlkit.TOMLDocument) -> None:
        table = _table(doc, "columns", create=True)
        _assign(table, name, keys)

    _edit(change)


# Alerts ----------------------------------------------------------------------------
def _aot(doc: tomlkit.TOMLDocument) -> AoT | None:
    if "alerts" not in doc:
        return None
    aot = doc["alerts"]
    if not isinstance(aot, AoT):
        raise StoreError(f"alerts in {path()} is not an array of tables ([[alerts]])")
    return aot


def _find(doc: tomlkit.TOMLDocument, alert_id: int) -> tuple[AoT, int, Alert]:
    saved = _alerts_of(doc.unwrap())
    for i, alert in enumerate(saved):
        if alert.id == alert_id:
            aot = _aot(doc)
            assert aot is not None
            return aot, i, alert
    raise StoreError(f"no alert with id {alert_id} in {path()}", code=2)


def _now() -> str:
    return datetime.now(config.IST).isoformat(timespec="seconds")


def add_alert(instrument: str, kind: str, value: float) -> Alert:
    """A new armed alert, saved; its id is one more than any the file has had."""
    if kind not in KINDS:
        raise StoreError(f"unknown alert kind {kind!r}; use one of {', '.join(KINDS)}", code=2)
    try:
        instrument = str(parse(instrument))
    except InstrumentError as exc:
        raise StoreError(str(exc), code=2) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StoreError(f"an alert's value must be a number, not {value!r}", code=2)

    def change(doc: tomlkit.TOMLDocument) -> Alert:
        saved = _alerts_of(doc.unwrap())
        counter = doc.get(NEXT_ID, 1)
        if isinstance(counter, bool) or not isinstance(counter, int):
            raise StoreError(f"{NEXT_ID} in {path()} is not a whole number")
        new_id = max([int(counter)] + [a.id + 1 for a in saved])
        alert = Alert(id=new_id, instrument=instrument, kind=kind, value=float(value), created=_now())
        table = tomlkit.item(alert.to_dict())
        aot = _aot(doc)
        if aot is None:
            aot = tomlkit.aot()
            aot.append(table)
            doc.append("alerts", aot)
        else:
            if len(aot) and not aot[-1].as_string().endswith("\n\n"):
                table.trivia.indent = "\n"  # a blank line between one alert and the next
            aot.append(table)
        _set_top(doc, NEXT_ID, new_id + 1)
        return alert

    return _edit(change)


def remove_alert(alert_id: int) -> Alert:
    """Alert ``alert_id`` is gone; returns it."""

    def change(doc: tomlkit.TOMLDocument) -> Alert:
        aot, i, alert = _find(doc, alert_id)
        if NEXT_ID not in doc:
            _set_top(doc, NEXT_ID, max(a.id for a in _alerts_of(doc.unwrap())) + 1)
        del aot[i]
        if len(aot) == 0:
            del doc["alerts"]
        return alert

    return _edit(change)


def _replace(doc: tomlkit.TOMLDocument, alert: Alert) -> None:
    aot, i, _ = _find(doc, alert.id)
    table = aot[i]
    fresh = alert.to_dict()
    for key in [k for k in table if k not in fresh]:
        del table[key]
    for key, value in fresh.items():
        if key not in table or table[key] != value:
            table[key] = value


def save_alert(alert: Alert) -> None:
    """Alert ``alert.id`` is ``alert`` (its state, when it fired): its table is edited in
    place, so that comments in it stay."""
    _edit(lambda doc: _replace(doc, alert))


def rearm(alert_id: int) -> Alert:
    """Alert ``alert_id`` armed again (when it fired forgotten); returns it."""

    def change(doc: tomlkit.TOMLDocument) -> Alert:
        _, _, alert = _find(doc, alert_id)
        alert.state = ARMED
        alert.triggered_at = None
        alert.triggered_value = None
        _replace(doc, alert)
        return alert

    return _edit(change)
