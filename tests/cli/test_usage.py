"""A bad option value is a command-line mistake: one sentence on stderr and exit 2 (README's
exit codes), as click's own usage errors (issue 19 #3)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["watch", "--grouping", "us"], "--grouping 'us'"),
        (["watch", "--fps", "100"], "--fps must be more than 0 and at most 60, not 100"),
        (["watch", "--fps", "0"], "--fps must be more than 0 and at most 60, not 0"),
        (["watch", "--stale-after", "0"], "--stale-after"),
        (["watch", "--mode", "foo"], "invalid --mode 'foo'"),
        (["tail", "--mode", "foo"], "invalid --mode 'foo'"),
        (["subscribe", "--mode", "foo"], "invalid --mode 'foo'"),
        (["record", "x.jsonl", "--mode", "foo"], "invalid --mode 'foo'"),
        (["record", "x.jsonl", "--rotate", "foo"], "--rotate 100MB"),
        (["record", "x.jsonl", "--duration", "soon"], "is not a duration"),
        (["tail", "--auth-timeout", "nan"], "--auth-timeout"),
        (["tail", "--depth", "20"], "--depth 20 needs --mode depth"),
    ],
)
def test_a_bad_option_value_is_a_usage_error(run, args, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # record must not leave a file behind
    code, _, err = run(*args, "--no-autostart", "--url", "ws://127.0.0.1:9")
    assert code == 2, err
    assert says in err
    assert err.startswith("oaws: ") and err.count("\n") == 1, err  # one sentence, no traceback
    assert not (tmp_path / "x.jsonl").exists()


def test_a_bad_mode_says_where_it_was_given(run, tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('mode = "fast"\n')
    code, _, err = run("tail", "--no-autostart", "--url", "ws://127.0.0.1:9")
    where = tmp_path / "config.toml"
    assert code == 2 and err == f"oaws: mode = 'fast' in {where} is not a mode; use 1/LTP, 2/Quote or 3/Depth\n"
    (tmp_path / "config.toml").write_text("")  # a bad file is said first whatever overrides it
    monkeypatch.setenv("OAWS_MODE", "faster")
    code, _, err = run("tail", "--no-autostart", "--url", "ws://127.0.0.1:9")
    assert code == 2 and err.startswith("oaws: OAWS_MODE=faster is not a mode")
    code, _, err = run("tail", "--no-autostart", "--url", "ws://127.0.0.1:9", "-m", "fastest")
    assert code == 2 and err.startswith("oaws: invalid --mode 'fastest'")


@pytest.mark.parametrize("url", ["ws://127.0.0.1:36831,", "http://127.0.0.1:8765", "127.0.0.1:8765", "ws://:8765"])
@pytest.mark.parametrize("command", [["tail", "RELIANCE:NSE"], ["chain", "NIFTY"], ["history", "RELIANCE:NSE"]])
def test_a_url_that_is_no_websocket_address_is_a_usage_error(run, command, url):
    code, _, err = run(*command, "--no-autostart", "--url", url)
    assert code == 2, err
    assert err == f"oaws: --url {url!r} is not a WebSocket address such as ws://127.0.0.1:8765\n"
