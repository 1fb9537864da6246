"""The config file checked as a whole against its schema: wrong kinds are errors that name
the file and the key, unknown keys are warnings with the nearest known one.

Why pydantic: the file is a tree (top-level settings, ``[watchlists]``, ``[columns]``,
``[[alerts]]``, ``[notify]``, one section per broker) and a schema library checks a tree
in one pass, with the path of every problem (``notify.bell``, ``alerts[2].value``); the
few lines of ``oaws.config.cast`` check one value at a time and could not say which keys
are unknown. The schema is checked once per command (``oaws.cli`` calls ``check_file``);
the values themselves are still read where they are used (``oaws.config.get``).

A watchlist's entries are checked as instruments but are never fatal: a list with an entry
that is not ``SYMBOL:EXCHANGE`` loses that entry, with a warning that names the list and
the file (``usable_watchlists``), so one typo in a list you did not open cannot stop
``oaws watch``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
    field_validator,
)

from oaws import config
from oaws.instruments import parse, parse_mode

#: a broker section's settings: name -> kind (str, int, float or bool)
Sections = Mapping[str, Mapping[str, type]]

Number = StrictInt | StrictFloat
Count = Annotated[StrictInt, Field(ge=0)]
Positive = Annotated[Number, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Notify(_Strict):
    """``[notify]``: what an alert does when it fires (docs/alerts.md)."""

    command: StrictStr | None = None
    bell: StrictBool = True
    desktop: StrictBool = True


class AlertTable(BaseModel):
    """One ``[[alerts]]`` table; ``oaws.alerts.Alert.from_dict`` reads it, the store writes it."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: StrictInt
    instrument: StrictStr
    kind: StrictStr
    value: Number
    state: Literal["armed", "triggered"] = "armed"


Fraction = Annotated[Number, Field(ge=0, le=1)]


class ChainSettings(_Strict):
    """``[chain]``: the option chain's pricing inputs and width (docs/chain.md); unset, oaws.chain's defaults."""

    #: the risk-free rate, continuously compounded, a year (0.07 is 7 %)
    rate: Fraction | None = None
    #: the dividend yield of every underlying, a year
    dividend_yield: Fraction | None = None
    #: an underlying's own yield over ``dividend_yield``: ``dividend_yields = {RELIANCE = 0.004}``
    dividend_yields: dict[str, Fraction] = {}
    #: strikes each side of the ATM strike (``oaws chain --strikes``, the chain screen)
    strikes: Annotated[StrictInt, Field(ge=0, le=100)] | None = None


class TopLevel(_Strict):
    """The top level of the config file: ``oaws.config.DEFAULTS`` and the tables beside them."""

    url: StrictStr | None = None
    host: StrictStr | None = None
    port: Annotated[StrictInt, Field(ge=0, le=65535)] | None = None
    bus: StrictStr | None = None
    broker: StrictStr | None = None
    role: Literal["all", "feed", "proxy", "forwarder"] | None = None
    api_key: StrictStr | None = None
    mode: StrictStr | StrictInt | None = None
    autostart: StrictBool | None = None
    seed: StrictInt | None = None
    rate: Positive | None = None
    time_zone: StrictStr | None = None
    auth_timeout: Positive | None = None
    max_connections: Count | None = None
    max_connections_per_address: Count | None = None
    max_instruments_per_client: Count | None = None
    max_instruments: Count | None = None
    sim_hours: Literal["exchange", "always"] | None = None
    sim_any_symbol: StrictBool | None = None
    #: the index ribbon's instruments (``[]``: no ribbon)
    ribbon: list[StrictStr] | None = None
    watchlist: list[StrictStr] | None = None
    #: the store's count of alert ids given (never reused)
    alerts_next_id: Annotated[StrictInt, Field(ge=1)] | None = None
    watchlists: dict[str, list[StrictStr]] = {}
    columns: dict[str, list[StrictStr]] = {}
    alerts: list[AlertTable] = []
    notify: Notify | None = None
    chain: ChainSettings | None = None

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        if value is not None:
            try:
                parse_mode(value)
            except ValueError:
                raise ValueError("is not a mode; use 1/LTP, 2/Quote or 3/Depth") from None
        return value


_KINDS: dict[type, Any] = {str: StrictStr, int: StrictInt, float: Number, bool: StrictBool}


def _section_model(name: str, settings: Mapping[str, type]) -> type[BaseModel]:
    fields: dict[str, Any] = {key: (_KINDS.get(kind, Any) | None, None) for key, kind in settings.items()}
    return create_model(f"Section_{name}", __config__=ConfigDict(extra="forbid", strict=True), **fields)


def _where(loc: tuple[Any, ...]) -> str:
    """``('alerts', 2, 'value')`` as a person reads it: ``alerts[2].value``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _known(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the schema knows at the level of ``loc``'s last part."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        inner = _model_of(field.annotation)
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check(data: Mapping[str, Any], path: Path, sections: Sections | None = None) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the parsed config file ``data`` (at ``path``), each one sentence.

    ``sections`` are the broker sections the installed plugins declare; any other table
    is an unknown key.
    """
    sections = sections or {}
    errors: list[str] = []
    warnings: list[str] = []
    top = {k: v for k, v in data.items() if k not in sections}
    problems: list[tuple[type[BaseModel], str, dict[str, Any]]] = []
    try:
        TopLevel.model_validate(top)
    except ValidationError as exc:
        problems += [(TopLevel, "", e) for e in exc.errors()]  # type: ignore[misc]
    for name, settings in sections.items():
        if name not in data:
            continue
        section = data[name]
        if not isinstance(section, Mapping):
            errors.append(f"{name} in {path} must be a table ([{name}]), not {_shown(section)}")
            continue
        model = _section_model(name, settings)
        try:
            model.model_validate(dict(section))
        except ValidationError as exc:
            problems += [(model, f"[{name}] ", e) for e in exc.errors()]  # type: ignore[misc]
    every_section = sorted(sections)
    order = {key: n for n, key in enumerate(data)}  # say them in the file's order
    problems.sort(key=lambda p: order.get(p[1][1:-2] if p[1] else str(p[2]["loc"][0]), len(order)))
    for model, prefix, error in problems:
        loc = tuple(error["loc"])
        # pydantic names the branch of a union it tried (``list[str]``, ``int``): not a key
        loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_NAMES)))
        key = _where(loc)
        if error["type"] == "extra_forbidden":
            known = _known(model, loc) + (every_section if model is TopLevel and len(loc) == 1 else [])
            near = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            warnings.append(f"unknown key {prefix}{key} in {path}, ignored{hint}")
            continue
        if any(e.startswith(f"{prefix}{key} = ") for e in errors):
            continue  # a union's branches each report the same key: say it once
        errors.append(f"{prefix}{key} = {_shown(error.get('input'))} in {path} {_message(error, key)}")
    return errors, list(dict.fromkeys(warnings))


def _message(error: Mapping[str, Any], key: str) -> str:
    """What is wrong, as a person would say it (pydantic's wording, made a sentence's end)."""
    kind = error["type"]
    if kind == "list_type":
        example = '["RELIANCE:NSE", "INFY:NSE"]' if "watchlist" in key else '["..."]'
        return f"must be a list, e.g. {key.rsplit('.', 1)[-1]} = {example}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a table"
    if kind in _RANGE_ERRORS:
        low, high = config.RANGES.get(key, (None, None))
        if low is not None and high is not None:
            return f"is out of range: it must be from {low:g} to {high:g}"
        ctx = error.get("ctx", {})
        bound = next(iter(ctx.values()), "")
        return f"is out of range: it must be {_RANGE_ERRORS[kind]} {bound}"
    if kind == "literal_error":
        return f"is not one of {error.get('ctx', {}).get('expected', 'the choices')}"
    if kind in _KIND_ERRORS:
        return _KIND_ERRORS[kind]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return message
    return "is not valid: " + message[:1].lower() + message[1:]


_RANGE_ERRORS = {
    "greater_than_equal": "at least",
    "greater_than": "more than",
    "less_than_equal": "at most",
    "less_than": "less than",
}
_KIND_ERRORS = {
    "int_type": "is not a valid int (a whole number)",
    "int_from_float": "is not a valid int (a whole number)",
    "int_parsing": "is not a valid int (a whole number)",
    "float_type": "is not a valid number",
    "string_type": "is not a valid str (text in quotes)",
    "bool_type": "is not a valid bool (true or false)",
}


_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "literal"})


def usable_watchlists(data: Mapping[str, Any], path: Path) -> tuple[dict[str, list[str]], list[str]]:
    """The watchlists of the file with their valid entries only, and a warning per entry left out.

    ``default`` is the top-level ``watchlist``. A list of the wrong kind is left out whole
    (``check`` reports it as an error).
    """
    lists: dict[str, list[str]] = {}
    warnings: list[str] = []
    named = data.get("watchlists")
    raw: list[tuple[str, Any]] = []
    if "watchlist" in data:
        raw.append(("default", data["watchlist"]))
    if isinstance(named, Mapping):
        raw += [(str(k), v) for k, v in named.items()]
    for name, items in raw:
        if not isinstance(items, list):
            continue
        good: list[str] = []
        for item in items:
            try:
                good.append(str(parse(str(item))))
            except ValueError:
                where = "watchlist" if name == "default" else f"watchlists.{name}"
                what = "is not an instrument (SYMBOL:EXCHANGE, e.g. RELIANCE:NSE); left out"
                warnings.append(f"{where} in {path}: {_shown(item)} {what}")
        lists[name] = good
    return lists, warnings


def watchlists() -> dict[str, list[str]]:
    """The config file's watchlists with the entries that are instruments (see ``usable_watchlists``)."""
    return usable_watchlists(config.file_config(), config.config_path())[0]


def check_file(sections: Sections | None = None) -> list[str]:
    """Check the config file (if any): raise ConfigError (exit 2) with the first error, return
    the warnings (unknown keys, watchlist entries left out) for the caller to print."""
    data = config.file_config()
    if not data:
        return []
    path = config.config_path()
    errors, warnings = check(data, path, sections or {})
    if errors:
        # each its own line (the command line prefixes the first with "oaws: ")
        raise config.ConfigError("\noaws: ".join(errors), code=2)
    return warnings + usable_watchlists(data, path)[1]


def chain_settings(underlying: str) -> tuple[float | None, float | None, int | None]:
    """(rate, dividend yield, strikes) the config file's ``[chain]`` gives for ``underlying``;
    None where it gives none (then oaws.chain's defaults). A value of the wrong kind was
    refused by ``check_file`` when the command started, so it is only left out here."""
    section = config.file_config().get("chain")
    if not isinstance(section, Mapping):
        return None, None, None

    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    yields = section.get("dividend_yields")
    own = None
    if isinstance(yields, Mapping):
        own = number(next((v for k, v in yields.items() if str(k).upper() == underlying.upper()), None))
    strikes = section.get("strikes")
    return (
        number(section.get("rate")),
        own if own is not None else number(section.get("dividend_yield")),
        strikes if isinstance(strikes, int) and not isinstance(strikes, bool) else None,
    )
