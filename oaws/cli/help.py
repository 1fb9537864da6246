"""Help texts as a person writes them, for every command at once.

typer renders help with rich: a ``[angel]`` in a help text is read as markup and vanishes,
and the type column says ``<bool>``, ``<list[str]>`` or ``<int range> [0<=x<=65535]``.
``HumanGroup`` is the class of the ``oaws`` group: when typer builds the command tree, it
goes over every command under it (those added later by other modules too) and

- escapes rich markup in the help texts, so that ``[angel]`` stays ``[angel]``;
- gives every option a metavar of words (``--port PORT``, ``--fps NUMBER``), flags none;
- shows an argument by its name (``BROKER``, ``INSTRUMENT...``) without a type;
- writes a number's range into the help text ("0 to 65535", "at least 0.1"; not the
  "at least 1" of a count), in place of typer's ``[0<=x<=65535]``.

An explicit ``metavar=`` on an option stays as it is.
"""

from __future__ import annotations

import functools
from typing import Any

import typer.core

#: metavars of the options named so (their ``dest``), where the type alone says too little
METAVARS = {
    "url": "URL",
    "upstream": "URL",
    "api_key": "KEY",
    "host": "ADDRESS",
    "port": "PORT",
    "feed_port": "PORT",
    "order_port": "PORT",
    "rest_port": "PORT",
    "bus": "ENDPOINT",
    "broker": "NAME",
    "watchlist": "NAME",
    "replay": "FILE",
    "instruments": "FILE",
    "tls_cert": "FILE",
    "tls_key": "FILE",
    "curve": "DIRECTORY",
    "start": "TIME",
    "end": "TIME",
    "duration": "DURATION",
    "rotate": "SIZE|INTERVAL",
    "mode": "MODE",
    "grouping": "STYLE",
    "exchange": "EXCHANGE",
    "allowed_origin": "ORIGIN",
    "as_": "NAME",
}

#: words in an option's name that make its number a number of seconds
_SECONDS = ("timeout", "after", "interval", "wait")


def _long_name(param: Any) -> str:
    longs = [o for o in param.opts if o.startswith("--")]
    return (longs[0] if longs else param.opts[0]).lstrip("-")


def _annotation(param: Any) -> Any:
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if annotation is not None:
        return annotation
    kind = getattr(getattr(param, "type", None), "name", "")  # typer before 0.2x: click's types
    return {"integer": int, "float": float, "boolean": bool}.get(kind, str)


def _element(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    return args[0] if getattr(annotation, "__origin__", None) is list and args else annotation


def option_metavar(param: Any) -> str:
    """The word after an option in its help: what the user types there."""
    name = str(param.name or "")
    if name in METAVARS:
        return METAVARS[name]
    kind = _element(_annotation(param))
    if kind is bool:
        return ""  # a switch: nothing follows it
    if kind is int:
        return "N"
    if kind is float:
        return "SECONDS" if any(word in name for word in _SECONDS) else "NUMBER"
    return _long_name(param).upper().replace("-", "_")


def argument_metavar(param: Any) -> str:
    """``BROKER``; ``INSTRUMENT`` for ``instruments`` taking several (the usage line adds "...")."""
    name = str(param.name or "").strip("_").upper()
    if param.nargs != 1 and name.endswith("S"):
        return name[:-1]
    return name


def _number(value: float) -> str:
    return f"{value:g}"


def range_text(low: float | None, high: float | None) -> str:
    """ "0 to 65535", "at least 1", "at most 60"; "" for no range."""
    if low is not None and high is not None:
        return f"{_number(low)} to {_number(high)}"
    if low is not None:
        return f"at least {_number(low)}"
    if high is not None:
        return f"at most {_number(high)}"
    return ""


def _escape(text: str | None) -> str | None:
    from rich.markup import escape

    return escape(text) if text else text


def _with_range(help_text: str | None, span: str) -> str:
    """ "WebSocket port; 0 picks a free one (0 to 65535).": the range inside the sentence."""
    if not help_text:
        return span[0].upper() + span[1:] + "."
    text = help_text.rstrip()
    if text.endswith("."):
        return f"{text[:-1]} ({span})."
    return f"{text} ({span})"


def _usage_name(param: Any) -> str:
    """``BROKER`` for a required argument, ``[INSTRUMENT]...`` for an optional one taking several."""
    name = param.metavar if param.required else f"[{param.metavar}]"
    return name + ("..." if param.nargs != 1 else "")


def _nothing(*_: Any, **__: Any) -> None:
    return None


def humanize_param(param: Any, markup: bool) -> None:
    if getattr(param, "_oaws_human", False):
        return
    param._oaws_human = True
    help_text = getattr(param, "help", None)
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    # "at least 1" of a count says what everyone assumes: only a range worth reading
    span = range_text(low, high) if high is not None or low not in (None, 0, 1) else ""
    param._get_number_range_help_str = _nothing  # typer's own "[0<=x<=65535]", "[x>=1]"
    if span and getattr(param, "param_type_name", "") == "option" and not getattr(param, "count", False):
        help_text = _with_range(help_text, span)
    if markup and help_text is not None:
        help_text = _escape(help_text)
    if hasattr(param, "help"):
        param.help = help_text
    if param.param_type_name == "argument":
        if param.metavar is None:
            param.metavar = argument_metavar(param)
        param.display_type_rich = _nothing  # the name says it; "<str>" says nothing
        if hasattr(param, "_usage_display_name"):  # typer 0.2x writes a required one {BROKER}
            param._usage_display_name = functools.partial(_usage_name, param)
    elif param.metavar is None:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""  # a flag takes no value: no "<bool>"
        else:
            param.metavar = option_metavar(param)


def humanize(command: Any) -> Any:
    """``command`` and every command under it, with help texts as a person writes them."""
    markup = getattr(command, "rich_markup_mode", None) == "rich"
    if not getattr(command, "_oaws_human", False):
        command._oaws_human = True
        if markup:
            command.help = _escape(command.help)
            command.short_help = _escape(command.short_help)
            command.epilog = _escape(getattr(command, "epilog", None))
        for param in command.params:
            humanize_param(param, markup)
        original = command.get_help_option

        def get_help_option(ctx: Any) -> Any:
            option = original(ctx)
            if option is not None:
                humanize_param(option, markup)
            return option

        command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        humanize(sub)
    return command


class HumanGroup(typer.core.TyperGroup):
    """The ``oaws`` group: every command under it gets help texts as a person writes them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        humanize(self)

    def get_params(self, ctx: Any) -> list[Any]:
        """The group's own options, with those typer adds after building it (--install-completion)."""
        params = super().get_params(ctx)
        markup = getattr(self, "rich_markup_mode", None) == "rich"
        for param in params:
            humanize_param(param, markup)
        return params
