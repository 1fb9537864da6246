"""The brokers that run Noren OMS: one protocol, many hosts, a few logins.

Shoonya (Finvasia), Flattrade, Zebu, TradeSmart and others serve the same Noren REST API
and WebSocket feed from their own hosts. Each is a ``NorenHost`` here: its name (``--broker
NAME``), the prefix of its settings (``SHOONYA_USER_ID``...), its default addresses and how
its users log in. Adding another Noren broker is one more entry in ``HOSTS`` and one line
in pyproject.toml's ``oaws.brokers`` entry points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: How a broker's users get a session:
#: - ``quickauth``: user id, password, TOTP, vendor code and API secret (Noren's QuickAuth);
#: - ``oauth``: a browser login whose redirect carries a code, exchanged for an access token
#:   (Flattrade's; newer Shoonya releases' GenAcsTok), or that token set as ACCESS_TOKEN.
Login = Literal["quickauth", "oauth"]


@dataclass(frozen=True)
class NorenHost:
    #: ``--broker NAME``; also the config file's section
    name: str
    #: the broker's own name, for people
    title: str
    #: the environment variables' prefix: ``{PREFIX}_USER_ID``...
    prefix: str
    #: the REST base, with its path (``.../NorenWClientTP``)
    api_url: str
    #: the feed
    feed_url: str
    #: where the per-exchange symbol masters live (the host root, not under the API path)
    master_url: str
    #: the logins its users have, the first the default
    logins: tuple[Login, ...] = ("quickauth",)
    #: the browser login page of the OAuth flow (``{auth_url}?app_key=...``), if any
    auth_url: str = ""
    #: where the OAuth code is exchanged for a token, if any
    token_url: str = ""


HOSTS: dict[str, NorenHost] = {
    host.name: host
    for host in (
        NorenHost(
            name="shoonya",
            title="Shoonya (Finvasia)",
            prefix="SHOONYA",
            api_url="https://api.shoonya.com/NorenWClientTP",
            feed_url="wss://api.shoonya.com/NorenWSTP/",
            master_url="https://api.shoonya.com",
            logins=("quickauth", "oauth"),
            token_url="https://api.shoonya.com/NorenWClientAPI/GenAcsTok",
        ),
        NorenHost(
            name="flattrade",
            title="Flattrade",
            prefix="FLATTRADE",
            api_url="https://piconnect.flattrade.in/PiConnectTP",
            feed_url="wss://piconnect.flattrade.in/PiConnectWSTp/",
            master_url="https://flattrade.s3.ap-south-1.amazonaws.com/scripmaster",
            logins=("oauth",),
            auth_url="https://auth.flattrade.in/",
            token_url="https://authapi.flattrade.in/trade/apitoken",
        ),
    )
}
