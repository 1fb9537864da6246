"""Settings: command line > environment > config file > defaults (SPEC §4)."""

from __future__ import annotations

from datetime import UTC

import pytest

from oaws import config as cfg


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    for key in ("OAWS_URL", "OAWS_PORT", "OAWS_HOST", "OAWS_BROKER", "OAWS_AUTOSTART", "OAWS_RATE", "OAWS_TIME_ZONE"):
        monkeypatch.delenv(key, raising=False)
    return path


def test_precedence_cli_env_file_default(config_file, monkeypatch):
    assert cfg.get("broker") == "sim"  # default
    config_file.write_text('broker = "angel"\nport = 9000\n')
    assert cfg.get("broker") == "angel" and cfg.get("port") == 9000  # file
    monkeypatch.setenv("OAWS_BROKER", "replay")
    monkeypatch.setenv("OAWS_PORT", "9100")
    assert cfg.get("broker") == "replay" and cfg.get("port") == 9100  # environment, cast to int
    assert cfg.get("broker", "sim") == "sim" and cfg.get("port", 9200) == 9200  # command line


def test_default_url_follows_host_and_port(config_file, monkeypatch):
    assert cfg.get("url") == "ws://127.0.0.1:8765"
    config_file.write_text("port = 9001\n")
    assert cfg.get("url") == cfg.serve_url() == "ws://127.0.0.1:9001"
    monkeypatch.setenv("OAWS_URL", "ws://elsewhere:1")
    assert cfg.get("url") == "ws://elsewhere:1"
    settings = cfg.client_settings()
    assert settings.url == "ws://elsewhere:1" and not settings.may_autostart  # never starts a server elsewhere


def test_booleans_and_bad_values(config_file, monkeypatch):
    monkeypatch.setenv("OAWS_AUTOSTART", "no")
    assert cfg.get("autostart") is False
    monkeypatch.setenv("OAWS_PORT", "eighty")
    with pytest.raises(cfg.ConfigError, match="OAWS_PORT = 'eighty' is not a valid int"):
        cfg.get("port")


def test_broken_config_file_is_one_sentence(config_file):
    config_file.write_text("port = [\n")
    with pytest.raises(cfg.ConfigError, match="is not valid TOML"):
        cfg.get("port")


def test_watchlists(config_file):
    config_file.write_text('watchlist = ["RELIANCE:NSE"]\n[watchlists]\nbanks = ["SBIN:NSE", "HDFCBANK:NSE"]\n')
    assert cfg.watchlists() == {"default": ["RELIANCE:NSE"], "banks": ["SBIN:NSE", "HDFCBANK:NSE"]}


def test_times_are_shown_in_exchange_time_unless_set(config_file, monkeypatch):
    from datetime import datetime, timedelta

    from oaws.format import clock, moment

    # 2026-01-02 03:45:00.250 UTC is the 09:15 opening in India
    ms = int(datetime(2026, 1, 2, 3, 45, tzinfo=UTC).timestamp() * 1000) + 250
    ist = cfg.time_zone()
    assert ist is not None and ist.utcoffset(None) == timedelta(hours=5, minutes=30)
    assert clock(ms, ist) == "09:15:00.250"
    assert f"{moment(ms / 1000, ist):%Z}" == "IST"
    config_file.write_text('time_zone = "local"\n')
    assert cfg.time_zone() is None
    assert clock(ms, None) == datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S") + ".250"
    monkeypatch.setenv("OAWS_TIME_ZONE", "Europe/London")  # the environment beats the file
    assert clock(ms, cfg.time_zone()) == "03:45:00.250"
    monkeypatch.setenv("OAWS_TIME_ZONE", "Mars/Olympus_Mons")
    with pytest.raises(cfg.ConfigError, match="OAWS_TIME_ZONE='Mars/Olympus_Mons' is not a time zone"):
        cfg.time_zone()


def test_the_config_files_settings_are_the_options_defaults(config_file):
    import typer.main

    from oaws.cli import app
    from oaws.cli.common import config_defaults

    config_file.write_text('port = 9002\nmode = "ltp"\nauth_timeout = 12.5\nautostart = false\n')
    defaults = config_defaults(typer.main.get_command(app))
    assert defaults["tail"] == {"mode": "ltp", "auth_timeout": 12.5, "autostart": False}
    assert defaults["serve"]["port"] == 9002 and "mode" not in defaults["serve"]
    config_file.write_text('auth_timeout = "soon"\n')
    with pytest.raises(cfg.ConfigError, match=r"auth_timeout in .*config.toml = 'soon' is not a valid float"):
        config_defaults(typer.main.get_command(app))
