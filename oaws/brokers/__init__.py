"""The brokers oaws can serve, found through the ``oaws.brokers`` entry-point group.

Each entry point names a ``Broker`` (``oaws.brokers.api``): oaws's own (``sim``, ``replay``,
``angel``) are declared in its pyproject.toml like anyone else's, so a separate package
adds a broker by declaring one in its own::

    [project.entry-points."oaws.brokers"]
    kite = "oaws_kite:broker"

A plugin that fails to load is reported (``oaws brokers`` says why) and left out; it never
stops oaws from serving the others.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib.metadata import entry_points

from oaws.brokers.api import Broker, BrokerError

log = logging.getLogger(__name__)

GROUP = "oaws.brokers"


class UnknownBroker(BrokerError):
    """No plugin of that name is installed."""


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, Broker], dict[str, str]]:
    found: dict[str, Broker] = {}
    broken: dict[str, str] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in found or ep.name in broken:
            log.warning("broker %r is registered twice; the first one stands", ep.name)
            continue
        try:
            broker = ep.load()
        except Exception as exc:  # someone else's package: its bug must not take oaws down
            broken[ep.name] = f"cannot load {ep.value}: {type(exc).__name__}: {exc}"
            log.info("broker plugin %r is left out: %s", ep.name, broken[ep.name])
            continue
        if not isinstance(broker, Broker):
            broken[ep.name] = f"{ep.value} is a {type(broker).__name__}, not an oaws.brokers.api.Broker"
        elif broker.name != ep.name:
            broken[ep.name] = f"{ep.value} is named {broker.name!r}, not {ep.name!r}"
        else:
            found[ep.name] = broker
            continue
        log.info("broker plugin %r is left out: %s", ep.name, broken[ep.name])
    return found, broken


def brokers() -> dict[str, Broker]:
    """Every broker that loaded, by name."""
    return _load()[0]


def broken() -> dict[str, str]:
    """Plugins that did not load, with the reason."""
    return _load()[1]


def names() -> list[str]:
    return sorted(brokers())


def get(name: str) -> Broker:
    """The broker called ``name``; UnknownBroker (one sentence) when none is."""
    broker = brokers().get(name.strip().lower())
    if broker is not None:
        return broker
    why = broken().get(name.strip().lower())
    if why:
        raise UnknownBroker(f"the {name} broker plugin is installed but {why}")
    known = ", ".join(names()) or "none (reinstall oaws: `pip install -e .`)"
    raise UnknownBroker(f"unknown broker {name!r}; choose one of {known}")


def with_feature(feature: str) -> list[Broker]:
    """The brokers that offer ``login``, ``master``, ``simulator`` or ``symbols``."""
    return [b for _, b in sorted(brokers().items()) if getattr(b, feature) is not None]


def selected_by(given: set[str]) -> Broker | None:
    """The one broker chosen by the serve options given (``--replay FILE``), if exactly one is."""
    chosen = [b for b in brokers().values() if given & set(b.selected_by)]
    return chosen[0] if len(chosen) == 1 else None


def completions() -> list[str]:
    """The instruments brokers always know (fast, no I/O), for the watch's completion."""
    out: dict[str, None] = {}
    for broker in with_feature("symbols"):
        try:
            out.update(dict.fromkeys(broker.symbols()))  # type: ignore[misc]
        except Exception:  # completion is a convenience: a plugin's failure costs only its symbols
            log.debug("no symbols from %s", broker.name, exc_info=True)
    return list(out)


def master_completions(*, names: bool = False) -> list[str] | list[str | tuple[str, str]]:
    """Every instrument of every downloaded instrument master (slow: read in a thread).

    With ``names``, an instrument whose master knows a company or index name other than its
    symbol comes as (``SYMBOL:EXCHANGE``, name) (``InstrumentMaster.names``, where a master
    has it), for the add dialog's search by name; the others as plain ``SYMBOL:EXCHANGE``."""
    out: dict[str, None] = {}
    named: dict[str, str] = {}
    for broker in with_feature("master"):
        try:
            master = broker.master()  # type: ignore[misc]
            out.update(dict.fromkeys(master.instruments()))
            of = getattr(master, "names", None) if names else None
            if of is not None:
                for instrument, name in of().items():
                    if _worth_naming(instrument, name):
                        named.setdefault(instrument, name.strip())
        except Exception:  # no master, or an unreadable one: no error for the watch
            log.debug("no master completions from %s", broker.name, exc_info=True)
    if not names:
        return list(out)
    return [(i, named[i]) if i in named else i for i in out]


def _worth_naming(instrument: str, name: str) -> bool:
    """A name that says more than the symbol (Angel's and Noren's are mostly the symbol again)."""
    symbol = instrument.rpartition(":")[0]
    squeeze = str.maketrans("", "", " -_.")
    return (
        isinstance(name, str)
        and bool(name.strip())
        and name.upper().translate(squeeze) != symbol.upper().translate(squeeze)
    )
