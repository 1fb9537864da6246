"""oaws.store: the lists, columns, alerts and alert settings kept in the user's config file,
edited without losing its comments or layout, locked, replaced atomically."""

from __future__ import annotations

import errno
import os
import stat
import threading
from datetime import datetime

import pytest

from oaws import config, store
from oaws.alerts import TRIGGERED

HAND_WRITTEN = """\
# My oaws settings -- keep this comment
url = "ws://127.0.0.1:8765"   # where my proxy is
watchlist = ["RELIANCE:NSE", "INFY:NSE"]  # the default list

# lists by sector
[watchlists]
# my banks
banks = [
  "HDFCBANK:NSE",  # the big one
  "SBIN:NSE",
]
it = ["TCS:NSE"]   # tech

[angel]
client_code = "A1"  # not a secret

[columns]
banks = ["symbol", "ltp"]

[[alerts]]
# my first alert
id = 1
instrument = "RELIANCE:NSE"
kind = "above"
value = 1500.0
state = "armed"
created = "2026-12-01T10:00:00+05:30"

[[alerts]]
id = 2
instrument = "SBIN:NSE"
kind = "below"
value = 700.0
state = "triggered"
created = "2026-12-01T10:05:00+05:30"
triggered_at = "2026-12-01T11:00:00+05:30"
triggered_value = 699.5
"""


@pytest.fixture
def conf(tmp_path, monkeypatch):
    path = tmp_path / "conf" / "config.toml"
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    return path


@pytest.fixture
def written(conf):
    conf.parent.mkdir()
    conf.write_text(HAND_WRITTEN)
    os.chmod(conf, 0o600)
    return conf


def subsequence(lines: list[str], of: list[str]) -> bool:
    it = iter(of)
    return all(line in it for line in lines)


def trigger(n: int) -> None:
    alert = next(a for a in store.alerts() if a.id == n)
    alert.state, alert.triggered_at, alert.triggered_value = TRIGGERED, "2026-12-02T10:00:00+05:30", 1501.0
    store.save_alert(alert)


BLANK = object()  # an edit that may take a blank line away with a table
# each edit, and the lines of HAND_WRITTEN it may change (every other one must stay, byte for byte)
EDITS = {
    "save the default list": (lambda: store.save_list("default", ["TCS:NSE"]), ["watchlist ="]),
    "reorder a named list": (
        lambda: store.save_list("banks", ["SBIN:NSE", "HDFCBANK:NSE"]),
        ['  "HDFCBANK:NSE",', '  "SBIN:NSE",'],
    ),
    "create a list": (lambda: store.create_list("pharma", ["SUNPHARMA:NSE"]), []),
    "rename a list": (lambda: store.rename_list("banks", "lenders"), ["banks = ["]),
    "delete a list (and its columns, the last)": (
        lambda: store.delete_list("banks"),
        ["banks = [", '  "HDFCBANK:NSE",', '  "SBIN:NSE",', "]", "[columns]", BLANK],
    ),
    "add to a list": (lambda: store.add_to_list("banks", ["AXISBANK:NSE"]), []),
    "remove from a list": (lambda: store.remove_from_list("banks", ["SBIN:NSE"]), ['  "SBIN:NSE",']),
    "add to the default list": (lambda: store.add_to_list("default", ["TCS:NSE"]), ["watchlist ="]),
    "save columns": (lambda: store.save_columns("it", ["symbol", "bid", "ask"]), []),
    "replace columns": (lambda: store.save_columns("banks", ["symbol", "oi"]), ['banks = ["symbol", "ltp"]']),
    "add an alert": (lambda: store.add_alert("TCS:NSE", "change_above", 2), []),
    "remove an alert": (
        lambda: store.remove_alert(2),
        ["[[alerts]]", "id = 2", "SBIN:NSE", "below", "700.0", "triggered", "10:05"],
    ),
    "an alert fires": (lambda: trigger(1), ['state = "armed"']),
    "re-arm an alert": (lambda: store.rearm(2), ['state = "triggered"', "triggered_at", "triggered_value"]),
}


@pytest.mark.parametrize("edit", EDITS)
def test_every_kind_of_edit_keeps_the_comments_and_the_untouched_lines(written, edit):
    change, touched = EDITS[edit]
    before = HAND_WRITTEN.splitlines()
    change()
    after = written.read_text().splitlines()
    kept = [line for line in before if not any(t in line for t in touched if t is not BLANK)]
    if BLANK in touched:
        kept = [line for line in kept if line]
    assert subsequence(kept, after), f"{edit} changed lines it had no business with:\n" + "\n".join(after)
    assert all(line in after for line in before if line.lstrip().startswith("#") and "SBIN" not in line)


def test_edits_do_what_they_say(written):
    assert store.lists() == {
        "default": ["RELIANCE:NSE", "INFY:NSE"],
        "banks": ["HDFCBANK:NSE", "SBIN:NSE"],
        "it": ["TCS:NSE"],
    }
    assert store.add_to_list("banks", ["AXISBANK:NSE", "sbin:nse", "AXISBANK:NSE"]) == ["AXISBANK:NSE"]
    assert store.remove_from_list("banks", ["hdfcbank:nse"]) == ["HDFCBANK:NSE"]
    store.create_list("my pharma", ["SUNPHARMA:NSE"])
    store.rename_list("banks", "lenders")
    assert store.list_names() == ["default", "lenders", "it", "my pharma"]
    assert store.lists()["lenders"] == ["SBIN:NSE", "AXISBANK:NSE"]
    assert store.columns("lenders") == ["symbol", "ltp"] and store.columns("banks") is None
    store.delete_list("lenders")
    assert "lenders" not in store.lists() and store.columns("lenders") is None
    assert config.watchlists() == store.lists()  # what the watch reads today agrees


def test_inline_tables_are_edited_where_they_are(conf):
    conf.parent.mkdir()
    conf.write_text(
        'watchlists = { banks = ["SBIN:NSE"], it = ["TCS:NSE"] }  # inline\ncolumns = { it = ["symbol"] }\n'
    )
    store.add_to_list("banks", ["ITC:NSE"])
    store.rename_list("it", "tech")
    assert store.lists() == {"banks": ["SBIN:NSE", "ITC:NSE"], "tech": ["TCS:NSE"]}
    assert store.columns("tech") == ["symbol"]
    assert "# inline" in conf.read_text() and "[watchlists]" not in conf.read_text()


def test_a_new_file_is_made_private_with_a_header(conf):
    store.add_to_list("default", ["ITC:NSE"])
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert stat.S_IMODE(conf.with_name("config.toml.lock").stat().st_mode) == 0o600
    text = conf.read_text()
    assert text.startswith("# oaws settings") and text.count("#") == 1
    # the default list never saved starts from the built-in one the watch shows
    assert store.lists()["default"][-1] == "ITC:NSE" and len(store.lists()["default"]) > 1


def test_the_files_mode_is_kept(written):
    os.chmod(written, 0o640)
    store.add_to_list("it", ["WIPRO:NSE"])
    assert stat.S_IMODE(written.stat().st_mode) == 0o640


def test_a_symlinked_config_file_stays_a_symlink(written, tmp_path, monkeypatch):
    link = tmp_path / "link.toml"
    link.symlink_to(written)
    monkeypatch.setenv("OAWS_CONFIG", str(link))
    store.add_to_list("it", ["WIPRO:NSE"])
    assert link.is_symlink() and "WIPRO:NSE" in written.read_text()


def test_a_write_is_seen_at_once_and_changes_the_version(written):
    seen = store.version()
    for n in range(5):  # faster than the file system's clock ticks
        store.add_to_list("it", [f"S{n}:NSE"])
        assert store.version() > seen
        seen = store.version()
        assert config.file_config()["watchlists"]["it"][-1] == f"S{n}:NSE"


def test_a_write_looks_like_a_change_even_to_a_file_dated_in_the_future(written):
    """A file's time ahead of the clock (another machine's on a shared disk, or the same
    clock tick as the last write): the write still moves the version on, and the parse
    cache (keyed by the time) sees it."""
    ahead = written.stat().st_mtime_ns + 60 * 10**9
    os.utime(written, ns=(ahead, ahead))
    assert config.file_config()["watchlists"]["it"] == ["TCS:NSE"]
    store.add_to_list("it", ["WIPRO:NSE"])
    assert store.version() > ahead
    config._read.cache_clear()  # what another process would see
    assert config.file_config()["watchlists"]["it"] == ["TCS:NSE", "WIPRO:NSE"]


def test_an_edit_that_changes_nothing_does_not_write(written):
    seen = store.version()
    assert store.add_to_list("banks", ["SBIN:NSE"]) == []
    assert store.version() == seen


def test_names_are_checked(written):
    for bad in ("", "  ", " banks", "a\tb", "x" * 41):
        with pytest.raises(store.StoreError):
            store.create_list(bad)
    store.create_list("x" * 40)
    store.create_list("Nifty 50 (mine)")
    assert "Nifty 50 (mine)" in store.lists()
    with pytest.raises(store.StoreError, match="already"):
        store.create_list("it")
    with pytest.raises(store.StoreError, match="already"):
        store.rename_list("banks", "it")
    with pytest.raises(store.StoreError, match="no watchlist named 'nope'"):
        store.add_to_list("nope", ["TCS:NSE"])


def test_the_default_list_cannot_be_renamed_or_deleted(written):
    for edit in (lambda: store.rename_list("default", "x"), lambda: store.rename_list("it", "default")):
        with pytest.raises(store.StoreError, match="cannot be renamed"):
            edit()
    with pytest.raises(store.StoreError, match="cannot be deleted"):
        store.delete_list("default")
    with pytest.raises(store.StoreError, match="already"):
        store.create_list("default")
    assert written.read_text() == HAND_WRITTEN


def test_removing_what_is_not_there_names_it_and_removes_nothing(written):
    with pytest.raises(store.StoreError, match=r"WIPRO:NSE, ITC:NSE are not in banks") as err:
        store.remove_from_list("banks", ["SBIN:NSE", "WIPRO:NSE", "ITC:NSE"])
    assert err.value.code == 2
    assert written.read_text() == HAND_WRITTEN


LIST_EDITS = (
    lambda: store.add_to_list("default", ["TCS:NSE"]),
    lambda: store.save_list("banks", ["TCS:NSE"]),
    lambda: store.create_list("new"),
    lambda: store.rename_list("banks", "lenders"),
)
ALL_EDITS = LIST_EDITS + (
    lambda: store.add_alert("TCS:NSE", "above", 1),
    lambda: store.remove_alert(1),
    lambda: store.save_columns("default", ["symbol"]),
)


@pytest.mark.parametrize(
    "bad, edits",
    [
        ("watchlist = [", ALL_EDITS),
        (b"\xff\xfe", ALL_EDITS),
        ('watchlist = "RELIANCE:NSE"\n', LIST_EDITS),
        ("[watchlists]\nbanks = 3\n", LIST_EDITS),
        ("watchlist = []\nalerts = 3\n", ALL_EDITS[-3:-1]),
    ],
)
def test_a_file_that_cannot_be_read_is_never_overwritten(conf, bad, edits):
    conf.parent.mkdir()
    raw = bad if isinstance(bad, bytes) else bad.encode()
    conf.write_bytes(raw)
    for edit in edits:
        with pytest.raises(store.StoreError, match=str(conf)):
            edit()
    assert conf.read_bytes() == raw
    assert sorted(p.name for p in conf.parent.iterdir()) == ["config.toml", "config.toml.lock"]


def test_a_full_disk_leaves_the_old_file_intact(written, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(store.StoreError, match="the disk is full") as err:
        store.add_to_list("banks", ["AXISBANK:NSE"])
    assert str(written) in str(err.value)
    assert written.read_text() == HAND_WRITTEN
    assert sorted(p.name for p in written.parent.iterdir()) == ["config.toml", "config.toml.lock"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_directory_leaves_the_old_file_intact(written):
    store.add_to_list("banks", ["AXISBANK:NSE"])  # the lock file is there
    before = written.read_text()
    os.chmod(written.parent, 0o500)
    try:
        with pytest.raises(store.StoreError, match=str(written)):
            store.add_to_list("banks", ["ITC:NSE"])
    finally:
        os.chmod(written.parent, 0o700)
    assert written.read_text() == before


def test_a_read_only_file_system_is_one_sentence(written, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(store.StoreError, match="Read-only file system; it was left as it was"):
        store.add_alert("TCS:NSE", "above", 1)
    assert written.read_text() == HAND_WRITTEN


def test_two_writers_at_once_lose_nothing(written):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(6):
                store.add_to_list("it", [f"W{n}X{i}:NSE"])
                store.add_alert(f"W{n}X{i}:NSE", "above", i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.lists()["it"]) == 1 + 24
    ids = [a.id for a in store.alerts()]
    assert len(ids) == 2 + 24 and len(set(ids)) == 2 + 24
    assert "# my banks" in written.read_text()


def test_a_lock_held_too_long_is_one_sentence_and_nothing_is_written(written, monkeypatch):
    import fcntl

    monkeypatch.setattr(store, "LOCK_TIMEOUT", 0.05)
    with open(written.with_name("config.toml.lock"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(store.StoreError, match="another program has held its lock"):
            store.add_to_list("it", ["WIPRO:NSE"])
    assert written.read_text() == HAND_WRITTEN
    store.add_to_list("it", ["WIPRO:NSE"])  # released: it goes through
    assert store.lists()["it"] == ["TCS:NSE", "WIPRO:NSE"]


def test_alert_ids_are_never_reused(written):
    added = store.add_alert("TCS:NSE", "oi_above", 1_000_000)
    assert added.id == 3 and added.value == 1_000_000.0
    created = datetime.fromisoformat(added.created)
    assert created.utcoffset().total_seconds() == 5.5 * 3600
    assert store.remove_alert(3).instrument == "TCS:NSE"
    assert store.add_alert("TCS:NSE", "above", 4000).id == 4
    store.remove_alert(4)
    store.remove_alert(1)
    store.remove_alert(2)
    assert store.alerts() == [] and "[[alerts]]" not in written.read_text()
    assert store.add_alert("TCS:NSE", "below", 3000).id == 5
    with pytest.raises(store.StoreError, match="no alert with id 9"):
        store.remove_alert(9)


@pytest.mark.parametrize(
    "instrument, kind, value, why",
    [
        ("TCS", "above", 1.0, "not an instrument"),
        ("TCS:NSE", "sideways", 1.0, "unknown alert kind"),
        ("TCS:NSE", "above", float("nan"), "must be a number"),
        ("TCS:NSE", "above", "1", "must be a number"),
    ],
)
def test_an_alert_that_cannot_be_is_refused_and_nothing_written(written, instrument, kind, value, why):
    with pytest.raises(store.StoreError, match=why) as err:
        store.add_alert(instrument, kind, value)
    assert err.value.code == 2
    assert written.read_text() == HAND_WRITTEN


def test_an_alerts_instrument_is_saved_as_oaws_spells_it(written):
    assert store.add_alert("nse:tcs", "above", 4000).instrument == "TCS:NSE"
    assert store.alerts()[-1].instrument == "TCS:NSE"


def test_alerts_fire_and_are_rearmed(written):
    trigger(1)
    fired = store.alerts()[0]
    assert fired.state == TRIGGERED and fired.triggered_value == 1501.0
    again = store.rearm(1)
    assert again.state == "armed" and again.triggered_at is None
    assert store.alerts()[0] == again
    assert "# my first alert" in written.read_text()


def test_a_bad_alert_is_named_by_its_position(conf):
    conf.parent.mkdir()
    conf.write_text('[[alerts]]\nid = 1\ninstrument = "A:NSE"\nkind = "above"\nvalue = 1\n\n[[alerts]]\nid = 2\n')
    with pytest.raises(store.StoreError, match=rf"alert 2 in {conf} is not valid"):
        store.alerts()
    conf.write_text('[[alerts]]\nid = 1\ninstrument = "A:NSE"\nkind = "sideways"\nvalue = 1\n')
    with pytest.raises(store.StoreError, match=r"alert 1 .* unknown alert kind 'sideways'"):
        store.alerts()


def test_notify_settings(conf):
    conf.parent.mkdir()
    assert store.notify_settings() == {"command": None, "bell": True, "desktop": True}
    conf.write_text('[notify]\ncommand = "notify-me"\nbell = false\n')
    assert store.notify_settings() == {"command": "notify-me", "bell": False, "desktop": True}
    conf.write_text('[notify]\ndesktop = "yes"\n')
    with pytest.raises(store.StoreError, match=rf"notify.desktop in {conf}"):
        store.notify_settings()
    conf.write_text("[notify]\ncommand = 3\n")
    with pytest.raises(store.StoreError, match=r"notify\.command"):
        store.notify_settings()


def test_saving_a_list_keeps_its_entries_that_are_not_instruments(conf):
    # the watch leaves a typo out (with a warning); saving what the screen shows must not lose it
    conf.parent.mkdir()
    conf.write_text('[watchlists]\nbanks = ["HDFCBANK:NSE", "FOO", "SBIN:NSE"]\n')
    store.save_list("banks", ["SBIN:NSE", "AXISBANK:NSE"])
    assert store.lists()["banks"] == ["SBIN:NSE", "AXISBANK:NSE", "FOO"]
