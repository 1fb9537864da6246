"""The broker registry (entry points) and a broker's settings loader, in process."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from oaws import brokers
from oaws.brokers.api import Broker, BrokerError
from oaws.brokers.settings import Setting, SettingsError, SettingsSpec


def test_oaws_own_brokers_register_through_entry_points():
    assert {"sim", "replay", "angel"} <= set(brokers.names())
    angel = brokers.get("angel")
    assert angel.login is not None and angel.master is not None and angel.simulator is not None
    assert brokers.get(" SIM ").name == "sim"  # as a user may type it
    assert [b.name for b in brokers.with_feature("login")] == ["angel", "dhan", "flattrade", "kite", "shoonya"]


def test_an_unknown_broker_is_one_sentence_naming_the_known_ones():
    with pytest.raises(
        BrokerError,
        match=r"^unknown broker 'fyers'; choose one of "
        r"angel, dhan, flattrade, kite, openalgo, replay, shoonya, sim$",
    ):
        brokers.get("fyers")


def test_the_replay_option_selects_the_replay_broker():
    assert brokers.selected_by({"replay"}).name == "replay"
    assert brokers.selected_by({"seed"}) is None


def test_completions_come_from_the_brokers_that_know_symbols():
    found = brokers.completions()
    assert "NIFTY:NSE_INDEX" in found and "RELIANCE:NSE" in found


def _entry_point(name: str, value: object, load_error: Exception | None = None) -> SimpleNamespace:
    def load() -> object:
        if load_error is not None:
            raise load_error
        return value

    return SimpleNamespace(name=name, value=f"pkg:{name}", load=load)


def test_broken_plugins_are_left_out_with_the_reason(monkeypatch):
    good = Broker(name="good", title="Good", make_feed=lambda options: None)  # type: ignore[arg-type,return-value]
    points = [
        _entry_point("good", good),
        _entry_point("crash", None, RuntimeError("boom")),
        _entry_point("wrong", object()),
        _entry_point("misnamed", Broker(name="other", title="Other", make_feed=good.make_feed)),
    ]
    monkeypatch.setattr(brokers, "entry_points", lambda group: points if group == brokers.GROUP else [])
    brokers._load.cache_clear()
    try:
        assert brokers.names() == ["good"]
        why = brokers.broken()
        assert why["crash"] == "cannot load pkg:crash: RuntimeError: boom"
        assert why["wrong"] == "pkg:wrong is a object, not an oaws.brokers.api.Broker"
        assert why["misnamed"] == "pkg:misnamed is named 'other', not 'misnamed'"
        with pytest.raises(BrokerError, match=r"^the crash broker plugin is installed but cannot load"):
            brokers.get("crash")
    finally:
        brokers._load.cache_clear()


SPEC = SettingsSpec(
    "demo",
    (
        Setting("token", "DEMO_TOKEN", secret=True, required=True),
        Setting("port", "DEMO_PORT", kind=int, default=7),
        Setting("ratio", "DEMO_RATIO", kind=float),
        Setting("live", "DEMO_LIVE", kind=bool, default=False),
    ),
)


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("OAWS_CONFIG", str(path))
    for var in ("DEMO_TOKEN", "DEMO_PORT", "DEMO_RATIO", "DEMO_LIVE"):
        monkeypatch.delenv(var, raising=False)
    return path


def test_settings_come_from_the_environment_then_the_section_then_the_default(config, monkeypatch):
    config.write_text('[demo]\ntoken = "from-file"\nport = 9000\nlive = true\n')
    assert SPEC.load() == {"token": "from-file", "port": 9000, "ratio": None, "live": True}
    monkeypatch.setenv("DEMO_PORT", "9100")
    monkeypatch.setenv("DEMO_TOKEN", "  from-env ")
    assert SPEC.load(ratio=0.5) == {"token": "from-env", "port": 9100, "ratio": 0.5, "live": True}


@pytest.mark.parametrize(
    ("var", "value", "sentence"),
    [
        ("DEMO_PORT", "eighty", "DEMO_PORT = 'eighty' is not a whole number"),
        ("DEMO_RATIO", "nan", "DEMO_RATIO = 'nan' is not a number"),
        ("DEMO_LIVE", "maybe", "DEMO_LIVE = 'maybe' is not true or false"),
    ],
)
def test_a_wrong_value_is_one_sentence_naming_the_variable(config, monkeypatch, var, value, sentence):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as refused:
        SPEC.load()
    assert str(refused.value) == sentence


def test_a_wrong_value_in_the_file_names_the_file_and_never_shows_a_secret(config):
    config.write_text('[demo]\ntoken = ["not", "text"]\nport = "x"\n')
    with pytest.raises(SettingsError) as refused:
        SPEC.load()
    assert str(refused.value) == f"token in the [demo] section of {config} must be text, not a list"
    config.write_text('[demo]\nport = "x"\n')
    with pytest.raises(SettingsError, match=rf"^port in the \[demo\] section of {config} = 'x' is not a whole number$"):
        SPEC.load()
    secret = SettingsSpec("demo", (Setting("pin", "DEMO_PIN", kind=int, secret=True),))
    config.write_text('[demo]\npin = "12x4"\n')
    with pytest.raises(SettingsError) as hidden:
        secret.load()
    assert "12x4" not in str(hidden.value) and "(hidden)" in str(hidden.value)


def test_missing_required_settings_name_their_variables(config):
    with pytest.raises(SettingsError) as refused:
        SPEC.require(SPEC.load(), "Demo credentials")
    assert str(refused.value) == (
        f"Demo credentials missing: set DEMO_TOKEN (or token in the [demo] section of {config})"
    )
