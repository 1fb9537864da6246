"""``oaws alerts add|list|remove|rearm``: what they print, what they save, their exit codes."""

from __future__ import annotations

import sys

import orjson
import pytest

from oaws import store
from oaws.alerts import ARMED, TRIGGERED
from oaws.cli import main
from oaws.instruments import DEPTH, QUOTE, parse


@pytest.fixture
def config(tmp_path, monkeypatch):
    """A private config file (and state directory) for this test."""
    path = tmp_path / "config.toml"
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    monkeypatch.setenv("OAWS_STATE_DIR", str(tmp_path / "state"))
    return path


@pytest.fixture
def oaws(config, monkeypatch, capsys):
    """Run ``oaws ARGS`` in this process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["oaws", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        seen = capsys.readouterr()
        return exited.value.code or 0, seen.out, seen.err

    return run


def one_sentence(err: str) -> None:
    assert err.startswith("oaws: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--above", "1500", "price above 1,500.00"),
        ("--below", "1,400.5", "price below 1,400.50"),
        ("--change-above", "2", "change % above +2.00%"),
        ("--change-below", "-2", "change % below -2.00%"),
        ("--oi-above", "1000000", "OI above 10,00,000"),
        ("--oi-below", "50000", "OI below 50,000"),
    ],
)
def test_add_each_condition(oaws, option, value, said) -> None:
    code, out, err = oaws("alerts", "add", "RELIANCE:NSE", option, value)
    assert (code, err) == (0, "")
    assert out == f"oaws: alert 1: RELIANCE:NSE {said}\n"
    (saved,) = store.alerts()
    assert (saved.instrument, saved.state) == ("RELIANCE:NSE", ARMED)


def test_add_negative_change_as_an_option_value(oaws) -> None:
    code, out, _ = oaws("alerts", "add", "SBIN:NSE", "--change-below", "-2.5")
    assert (code, out) == (0, "oaws: alert 1: SBIN:NSE change % below -2.50%\n")
    (saved,) = store.alerts()
    assert (saved.kind, saved.value) == ("change_below", -2.5)


def test_add_writes_the_instrument_as_parsed(oaws) -> None:
    code, out, _ = oaws("alerts", "add", "nse:reliance", "--above", "1500")
    assert (code, out) == (0, "oaws: alert 1: RELIANCE:NSE price above 1,500.00\n")
    assert store.alerts()[0].instrument == "RELIANCE:NSE"


def test_ids_count_up(oaws) -> None:
    oaws("alerts", "add", "RELIANCE:NSE", "--above", "1500")
    code, out, _ = oaws("alerts", "add", "INFY:NSE", "--below", "1400")
    assert code == 0
    assert out == "oaws: alert 2: INFY:NSE price below 1,400.00\n"
    assert [a.id for a in store.alerts()] == [1, 2]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "give a condition: one of --above"),
        (("--above", "1500", "--below", "1400"), "give one condition, not --above and --below"),
        (("--above", "lots"), "--above needs a number, not 'lots'"),
        (("--above", "-3"), "--above needs a price above zero"),
        (("--oi-above", "-3"), "--oi-above needs an open interest of zero or more"),
    ],
)
def test_add_refuses_a_wrong_condition_with_exit_2(oaws, config, args, says) -> None:
    code, out, err = oaws("alerts", "add", "RELIANCE:NSE", *args)
    assert code == 2
    assert out == ""
    one_sentence(err)
    assert says in err
    assert store.alerts() == []


@pytest.mark.parametrize("instrument", ["RELIANCE", "RELIANCE:NASDAQ", "RELI$NCE:NSE"])
def test_add_refuses_a_bad_instrument_with_exit_2(oaws, instrument) -> None:
    code, out, err = oaws("alerts", "add", instrument, "--above", "1500")
    assert (code, out) == (2, "")
    one_sentence(err)
    assert store.alerts() == []


def test_list_shows_each_alert(oaws) -> None:
    oaws("alerts", "add", "RELIANCE:NSE", "--above", "1500")
    oaws("alerts", "add", "NIFTY26DECFUT:NFO", "--oi-above", "1500000")
    fired = store.alerts()[0]
    fired.state, fired.triggered_at, fired.triggered_value = TRIGGERED, "2026-12-02T09:15:32+05:30", 1502.35
    store.save_alert(fired)
    code, out, err = oaws("alerts", "list")
    assert (code, err) == (0, "")
    header, first, second = out.splitlines()
    assert header.split() == ["ID", "Instrument", "Condition", "State", "Created", "Triggered"]
    assert first.split()[:6] == ["1", "RELIANCE:NSE", "price", "above", "1,500.00", "triggered"]
    assert first.endswith("1,502.35 at 2026-12-02 09:15:32")
    assert second.split()[:6] == ["2", "NIFTY26DECFUT:NFO", "OI", "above", "15,00,000", "armed"]


def test_list_json_is_one_object_per_alert(oaws) -> None:
    oaws("alerts", "add", "RELIANCE:NSE", "--above", "1500")
    oaws("alerts", "add", "INFY:NSE", "--change-below", "-2")
    code, out, _ = oaws("alerts", "list", "--json")
    assert code == 0
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["instrument"], r["kind"], r["value"], r["state"]) for r in rows] == [
        (1, "RELIANCE:NSE", "above", 1500.0, "armed"),
        (2, "INFY:NSE", "change_below", -2.0, "armed"),
    ]
    assert all(r["created"].endswith("+05:30") for r in rows)


def test_list_without_alerts_says_so(oaws) -> None:
    code, out, err = oaws("alerts", "list")
    assert (code, out) == (0, "")
    one_sentence(err)
    assert "no alerts" in err
    assert oaws("alerts", "list", "--json")[:2] == (0, "")


def test_remove(oaws) -> None:
    oaws("alerts", "add", "RELIANCE:NSE", "--above", "1500")
    oaws("alerts", "add", "INFY:NSE", "--below", "1400")
    code, out, _ = oaws("alerts", "remove", "1")
    assert (code, out) == (0, "oaws: removed alert 1: RELIANCE:NSE price above 1,500.00\n")
    assert [a.id for a in store.alerts()] == [2]


def test_rearm_a_triggered_alert(oaws) -> None:
    oaws("alerts", "add", "RELIANCE:NSE", "--above", "1500")
    fired = store.alerts()[0]
    fired.state, fired.triggered_at, fired.triggered_value = TRIGGERED, "2026-12-02T09:15:32+05:30", 1502.35
    store.save_alert(fired)
    code, out, _ = oaws("alerts", "rearm", "1")
    assert (code, out) == (0, "oaws: re-armed alert 1: RELIANCE:NSE price above 1,500.00\n")
    (again,) = store.alerts()
    assert again.state == ARMED
    assert again.triggered_at is None and again.triggered_value is None


def test_rearm_an_armed_alert_says_so(oaws) -> None:
    oaws("alerts", "add", "RELIANCE:NSE", "--above", "1500")
    code, out, _ = oaws("alerts", "rearm", "1")
    assert (code, out) == (0, "oaws: alert 1 is armed already\n")


@pytest.mark.parametrize("verb", ["remove", "rearm"])
def test_an_unknown_id_is_exit_1(oaws, verb) -> None:
    oaws("alerts", "add", "RELIANCE:NSE", "--above", "1500")
    code, out, err = oaws("alerts", verb, "7")
    assert (code, out) == (1, "")
    one_sentence(err)
    assert "no alert 7" in err
    assert len(store.alerts()) == 1


def test_an_id_that_is_not_a_number_is_exit_2(oaws) -> None:
    code, _, err = oaws("alerts", "remove", "first")
    assert code == 2
    one_sentence(err)


# watch's bookkeeping (end to end against a real server: tests/process/test_alerts_watch.py) ------
class Subscriptions:
    """What ``watch`` asks of its client: the subscriptions it holds."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}

    async def subscribe(self, instruments, mode) -> None:
        for i in instruments:
            self.held[str(i)] = mode

    async def unsubscribe(self, instruments, mode=None) -> None:
        for i in instruments:
            assert self.held.pop(str(i)) == mode


class Out:
    def __init__(self) -> None:
        self.lines: list[dict] = []

    def write(self, data: bytes) -> None:
        self.lines.append(orjson.loads(data))

    def flush(self) -> None:
        pass


@pytest.fixture
def watching(config):
    from oaws.cli.alerts import _Watch

    config.write_text("[notify]\ndesktop = false\n")
    client, out = Subscriptions(), Out()
    return _Watch(client, out, None), client, out


async def test_watch_subscribes_what_the_armed_alerts_need(watching, capsys) -> None:
    state, client, _ = watching
    await state.reload()
    assert client.held == {}
    assert "no armed alerts" in capsys.readouterr().err
    store.add_alert("RELIANCE:NSE", "above", 1500)
    store.add_alert("NIFTY26DECFUT:NFO", "oi_above", 1e6)
    await state.reload()
    assert client.held == {"RELIANCE:NSE": QUOTE, "NIFTY26DECFUT:NFO": DEPTH}
    store.remove_alert(2)
    await state.reload()
    assert client.held == {"RELIANCE:NSE": QUOTE}


async def test_watch_fires_saves_and_unsubscribes(watching) -> None:
    state, client, out = watching
    store.add_alert("RELIANCE:NSE", "above", 1500)
    await state.reload()
    state.tick(parse("RELIANCE:NSE"), {"ltp": 1499.0})
    assert out.lines == []
    state.tick(parse("RELIANCE:NSE"), {"ltp": 1501.5, "ltt": 1_796_183_132_000})
    (line,) = out.lines
    assert (line["id"], line["state"], line["ltp"], line["triggered_value"]) == (1, "triggered", 1501.5, 1501.5)
    assert line["triggered_at"] == "2026-12-02T09:15:32+05:30"
    assert store.alerts()[0].state == TRIGGERED
    await state.reload()
    assert client.held == {}


async def test_a_rearmed_alert_is_checked_against_the_last_tick(watching) -> None:
    state, _, out = watching
    store.add_alert("RELIANCE:NSE", "above", 1500)
    store.add_alert("RELIANCE:NSE", "below", 1000)  # keeps RELIANCE subscribed
    await state.reload()
    state.tick(parse("RELIANCE:NSE"), {"ltp": 1501.5})
    await state.reload()
    store.rearm(1)
    await state.reload()  # no new tick: the last one meets it
    assert [line["id"] for line in out.lines] == [1, 1]


async def test_watch_stops_printing_at_its_count(config) -> None:
    from oaws.cli.alerts import _Watch

    config.write_text("[notify]\ndesktop = false\n")
    out = Out()
    state = _Watch(Subscriptions(), out, 1)
    store.add_alert("RELIANCE:NSE", "above", 1500)
    store.add_alert("RELIANCE:NSE", "above", 1400)
    await state.reload()
    state.tick(parse("RELIANCE:NSE"), {"ltp": 1600.0})
    assert len(out.lines) == 1
    assert state.done.is_set()
    assert [a.state for a in store.alerts()] == [TRIGGERED, ARMED]  # the second waits for the next watch
