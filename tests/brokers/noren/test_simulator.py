"""The Noren simulator checked by Noren's own client (NorenRestApiPy), not by ours.

``NorenApi`` logs in (its hashing of the password and app key is the oracle of the
simulator's), opens its feed, subscribes touchline and depth and orders; what it receives,
merged with a plain ``dict.update``, must equal what the simulator says it meant
(``sim.state``). The OAuth flows are driven the way OpenAlgo's Shoonya and Flattrade
adapters drive them. Faults are checked from the client's side.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import logging
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from NorenRestApiPy.NorenApi import FeedType, NorenApi
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from oaws.brokers.noren.family import HOSTS
from oaws.brokers.noren.simulator import NorenSimulator
from tests.helpers import eventually

NOREN_LOGGER = "NorenRestApiPy.NorenApi"
#: Noren's real tokens of a few NSE scrips (its indices by Noren's own names)
NOREN_TOKENS = {
    "RELIANCE-EQ": "2885",
    "INFY-EQ": "1594",
    "SBIN-EQ": "3045",
    "TCS-EQ": "11536",
    "HDFCBANK-EQ": "1333",
    "Nifty 50": "26000",
    "Nifty Bank": "26009",
    "Nifty Fin Service": "26037",
    "NIFTY MID SELECT": "26074",
    "India VIX": "26017",
}


class Client(NorenApi):
    """NorenApi subclassed as its README shows, pointed at the simulator; callbacks collect messages."""

    def __init__(self, sim: NorenSimulator) -> None:
        super().__init__(host=sim.api_url + "/", websocket=sim.feed_url)
        self.sim = sim
        self.ticks: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.errors: list[Any] = []
        self.opens = 0
        self.closes = 0
        self.started = False

    def login_to_sim(self, **changes: str) -> dict[str, Any] | None:
        sim = self.sim
        values = {
            "userid": sim.user_id,
            "password": sim.password,
            "twoFA": pyotp.TOTP(sim.totp_secret).now(),
            "vendor_code": sim.vendor_code,
            "api_secret": sim.api_secret,
            "imei": "abc1234",
            **changes,
        }
        return self.login(**values)

    def _opened(self) -> None:
        self.opens += 1

    def _closed(self) -> None:
        self.closes += 1

    def start(self) -> None:
        self.started = True
        self.start_websocket(
            subscribe_callback=self.ticks.append,
            order_update_callback=self.orders.append,
            socket_open_callback=self._opened,
            socket_close_callback=self._closed,
            socket_error_callback=self.errors.append,
        )

    def send_raw(self, text: str) -> None:
        self._NorenApi__ws_send(text)

    async def aclose(self) -> None:
        """Stop the client's socket thread, also while it keeps reconnecting (close_websocket does not then).

        Its thread may sit in a select() on the socket that close() alone does not wake: the
        simulator drops the connection (on its own loop, this one) so that the select returns.
        """
        if not self.started:
            return
        self._NorenApi__stop_event.set()
        self._NorenApi__websocket.keep_running = False
        self.sim.drop_all()
        await asyncio.to_thread(self._NorenApi__ws_thread.join, 5)
        assert not self._NorenApi__ws_thread.is_alive(), "NorenApi's socket thread did not stop"


@pytest.fixture
async def client(noren_sim):
    api = Client(noren_sim)
    yield api
    await api.aclose()


@pytest.fixture
async def connected(client):
    """A client logged in with QuickAuth whose feed is connected (its ``ck`` was OK)."""
    assert await asyncio.to_thread(client.login_to_sim) is not None
    client.start()
    await eventually(lambda: client.opens == 1, what="the ck acknowledgement")
    return client


def replies(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """What the simulator answered, as NorenApi itself logs it ("Reply:..." at DEBUG)."""
    found = []
    for record in caplog.records:
        text = record.getMessage()
        if record.name == NOREN_LOGGER and text.startswith("Reply:"):
            found.append(json.loads(text.removeprefix("Reply:")))
    return found


def of(messages: list[dict[str, Any]], kind: str, token: str) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("t") == kind and m.get("tk") == token]


def merged(messages: list[dict[str, Any]], token: str, kinds: tuple[str, str]) -> dict[str, Any]:
    """The test's own merge: the snapshot, then every update's fields over it."""
    view: dict[str, Any] = {}
    for message in messages:
        if message.get("tk") == token and message.get("t") in kinds:
            view.update(message)
    view.pop("t", None)
    return view


# Login -------------------------------------------------------------------------------------
async def test_norens_client_logs_in_with_quickauth(noren_sim, client, caplog):
    caplog.set_level(logging.DEBUG, logger=NOREN_LOGGER)
    reply = await asyncio.to_thread(client.login_to_sim)
    assert reply is not None and reply["stat"] == "Ok"
    assert reply["susertoken"] in noren_sim.session_tokens
    assert reply["actid"] == noren_sim.user_id and reply["uname"]
    # what the client sent: its own hashes, not the secrets
    auth = next(r for r in noren_sim.requests if isinstance(r, dict) and r.get("route") == "QuickAuth")
    assert auth["uid"] == "FA12345" and auth["source"] == "API" and auth["imei"] == "abc1234"
    limits = await asyncio.to_thread(client.get_limits)  # jData plus &jKey= with the susertoken
    assert limits["stat"] == "Ok" and limits["actid"] == noren_sim.user_id
    assert noren_sim.logins == 1


async def test_quickauth_body_is_jdata_and_the_hashes_are_norens(noren_sim):
    body = {
        "uid": noren_sim.user_id,
        "pwd": hashlib.sha256(noren_sim.password.encode()).hexdigest(),
        "factor2": pyotp.TOTP(noren_sim.totp_secret).now(),
        "vc": noren_sim.vendor_code,
        "appkey": hashlib.sha256(f"{noren_sim.user_id}|{noren_sim.api_secret}".encode()).hexdigest(),
        "imei": "x",
        "source": "API",
        "apkversion": "1.0.0",
    }
    url = noren_sim.api_url + "/QuickAuth"
    ok = await asyncio.to_thread(requests.post, url, data="jData=" + json.dumps(body), timeout=5)
    assert ok.json()["stat"] == "Ok"
    as_json = await asyncio.to_thread(requests.post, url, json=body, timeout=5)  # not Noren's body format
    assert as_json.json() == {"stat": "Not_Ok", "emsg": "Invalid Input : jData is Missing."}
    # later calls: jData plus &jKey=
    token = ok.json()["susertoken"]
    user = json.dumps({"uid": noren_sim.user_id})
    details = await asyncio.to_thread(
        requests.post, noren_sim.api_url + "/UserDetails", data=f"jData={user}&jKey={token}", timeout=5
    )
    assert details.json()["stat"] == "Ok" and details.json()["actid"] == noren_sim.user_id


@pytest.mark.parametrize(
    "changes, emsg",
    [
        ({"password": "not-it"}, "Invalid Input : Wrong Password"),
        ({"twoFA": "000000"}, "Invalid Input : Invalid OTP"),
        ({"api_secret": "not-it"}, "Invalid Input : Invalid App Key"),
        ({"vendor_code": "NOPE_U"}, "Invalid Input : Invalid Vendor Code"),
        ({"userid": "ZZ99999"}, "Invalid Input : Invalid User Id"),
    ],
)
async def test_refused_logins_say_why_as_noren_does(noren_sim, client, caplog, changes, emsg):
    if changes.get("twoFA") == "000000" and pyotp.TOTP(noren_sim.totp_secret).verify("000000", valid_window=1):
        pytest.skip("000000 happens to be a valid code right now")
    caplog.set_level(logging.DEBUG, logger=NOREN_LOGGER)
    assert await asyncio.to_thread(client.login_to_sim, **changes) is None
    assert replies(caplog)[-1]["stat"] == "Not_Ok"
    assert replies(caplog)[-1]["emsg"] == emsg
    assert noren_sim.session_tokens == set()


async def test_a_blocked_user_is_refused_even_with_the_right_password(noren_sim, client, caplog):
    caplog.set_level(logging.DEBUG, logger=NOREN_LOGGER)
    noren_sim.block_user()
    assert await asyncio.to_thread(client.login_to_sim) is None
    assert replies(caplog)[-1]["emsg"] == "Invalid Input : User Blocked Due to Wrong Password Attempts"
    noren_sim.block_user(False)
    assert await asyncio.to_thread(client.login_to_sim) is not None


async def test_wrong_passwords_in_a_row_block_the_user(noren_sim, client, caplog):
    caplog.set_level(logging.DEBUG, logger=NOREN_LOGGER)
    for _ in range(5):
        assert await asyncio.to_thread(client.login_to_sim, password="guess") is None
    assert [r["emsg"] for r in replies(caplog)] == ["Invalid Input : Wrong Password"] * 5
    assert await asyncio.to_thread(client.login_to_sim) is None
    assert replies(caplog)[-1]["emsg"] == "Invalid Input : User Blocked Due to Wrong Password Attempts"


async def test_an_expired_session_is_refused_on_rest_and_on_the_feed(noren_sim, connected, caplog):
    caplog.set_level(logging.DEBUG, logger=NOREN_LOGGER)
    assert (await asyncio.to_thread(connected.get_quotes, "NSE", "2885"))["stat"] == "Ok"
    noren_sim.expire_sessions()
    assert noren_sim.session_tokens == set()
    assert await asyncio.to_thread(connected.get_quotes, "NSE", "2885") is None
    assert await asyncio.to_thread(connected.searchscrip, "NSE", "SBIN") is None
    logged = [m for r in caplog.records if r.name == NOREN_LOGGER and '"stat"' in (m := r.getMessage())]
    assert json.loads(logged[-1]) == {"stat": "Not_Ok", "emsg": "Session Expired :  Invalid Session Key"}
    # the dropped feed reconnects and its connect is refused, with the client's error callback told
    await eventually(lambda: connected.closes >= 1, what="the client to see the drop")
    refusals = lambda: [e for e in connected.errors if isinstance(e, dict)]  # noqa: E731
    await eventually(refusals, what="the refused connect")
    assert refusals()[0] == {"t": "ck", "s": "Not_Ok", "emsg": "Invalid Session Key"}
    assert connected.opens == 1


async def test_logout_ends_the_session(noren_sim, client):
    reply = await asyncio.to_thread(client.login_to_sim)
    assert (await asyncio.to_thread(client.logout))["stat"] == "Ok"
    assert reply["susertoken"] not in noren_sim.session_tokens


# The feed -------------------------------------------------------------------------------------
async def test_touchline_snapshot_then_partial_updates_merge_to_what_the_simulator_meant(noren_sim, connected):
    connected.subscribe(["NSE|2885", "NSE|26000"])
    await eventually(lambda: len(of(connected.ticks, "tf", "2885")) >= 40, what="40 touchline updates")
    noren_sim.frozen = True  # the market stands still; what was sent arrives
    for token, first in (("2885", "RELIANCE-EQ"), ("26000", "Nifty 50")):
        (snapshot,) = of(connected.ticks, "tk", token)
        assert snapshot["ts"] == first and snapshot["e"] == "NSE"
        want = noren_sim.state("NSE", token)
        fields = {"e", "tk", *noren_sim.fields("t", "NSE", token)}

        def same(token: str = token, fields: set[str] = fields, want: dict[str, str] = want) -> bool:
            return merged(connected.ticks, token, ("tk", "tf")) == {k: want[k] for k in fields}

        await eventually(same, what=f"the merged touchline of {token} to equal the simulator's state")
    everything = [v for m in connected.ticks for v in m.values()]
    assert everything and all(isinstance(v, str) for v in everything)
    index = of(connected.ticks, "tk", "26000")[0]
    assert "v" not in index and "bp1" not in index  # an index has no volume or depth
    assert "oi" not in of(connected.ticks, "tk", "2885")[0]  # a share has no open interest


async def test_depth_snapshot_then_partial_updates_merge_to_what_the_simulator_meant(noren_sim, connected):
    option = next(s for s in noren_sim.scrips if s.exchange == "NFO" and s.option_type == "CE")
    connected.subscribe(["NSE|1594", f"NFO|{option.token}"], feed_type=FeedType.SNAPQUOTE)
    await eventually(lambda: len(of(connected.ticks, "df", "1594")) >= 40, what="40 depth updates")
    noren_sim.frozen = True
    for exchange, token in (("NSE", "1594"), ("NFO", option.token)):
        (snapshot,) = of(connected.ticks, "dk", token)
        for name in ("bp5", "sq5", "bo3", "so1", "tbq", "tsq", "uc", "lc", "52h", "52l", "c", "ltt", "ft"):
            assert name in snapshot, name
        want = noren_sim.state(exchange, token)
        fields = {"e", "tk", *noren_sim.fields("d", exchange, token)}
        await eventually(
            lambda token=token, fields=fields, want=want: (
                merged(connected.ticks, token, ("dk", "df")) == {k: want[k] for k in fields}
            ),
            what="the merged depth to equal the simulator's state",
        )
    assert float(want["oi"]) > 0  # the option has open interest
    assert len(want["ltt"]) == 8 and want["ltt"][2] == ":"  # HH:MM:SS


async def test_updates_carry_only_fields_that_changed(noren_sim, connected):
    connected.subscribe("NSE|2885")
    connected.subscribe("NSE|3045", feed_type=FeedType.SNAPQUOTE)
    await eventually(lambda: len(of(connected.ticks, "tf", "2885")) >= 60, what="60 touchline updates")
    await eventually(lambda: len(of(connected.ticks, "df", "3045")) >= 60, what="60 depth updates")
    for token, kinds in (("2885", ("tk", "tf")), ("3045", ("dk", "df"))):
        view: dict[str, Any] = {}
        updates = []
        for message in (m for m in connected.ticks if m.get("tk") == token and m["t"] in kinds):
            if message["t"] == kinds[1]:
                changed = {k: v for k, v in message.items() if k not in ("t", "e", "tk")}
                assert changed, "an update with nothing in it"
                assert all(view[k] != v for k, v in changed.items()), f"a field that did not change: {message}"
                updates.append(changed)
            view.update(message)
        assert any("lp" not in u for u in updates), "every update carried lp"
        assert any(set(u) == {"v"} for u in updates), "no update carried the volume alone"
        assert any("lp" in u for u in updates)
        assert all("ts" not in u and "c" not in u for u in updates)  # static fields come in the snapshot only
    one_level = [{f"{side}q{i}", f"{side}o{i}", "tbq" if side == "b" else "tsq"} for side in "bs" for i in range(2, 6)]
    depth_updates = [set(m) - {"t", "e", "tk"} for m in of(connected.ticks, "df", "3045")]
    assert any(any(u <= level for level in one_level) for u in depth_updates), "no update of one depth level alone"


async def test_each_scrip_is_acknowledged_on_its_own_and_unknown_ones_hold_nothing(noren_sim, connected):
    connected.subscribe(["NSE|2885", "NSE|1594", "NSE|999999", "bad-key"])
    await eventually(lambda: len([m for m in connected.ticks if m["t"] == "tk"]) == 3, what="three tk")
    acks = {m["tk"]: m for m in connected.ticks if m["t"] == "tk"}
    assert acks["999999"] == {"t": "tk", "e": "NSE", "tk": "999999"}
    assert acks["1594"]["ts"] == "INFY-EQ" and acks["2885"]["ts"] == "RELIANCE-EQ"
    await eventually(lambda: len(of(connected.ticks, "tf", "1594")) >= 3, what="updates of INFY")
    assert of(connected.ticks, "tf", "999999") == []
    assert ("t", "NSE", "999999") in noren_sim.subscriptions()


async def test_unsubscribe_stops_the_updates(noren_sim, connected):
    connected.subscribe("NSE|2885")
    connected.subscribe("NSE|2885", feed_type=FeedType.SNAPQUOTE)
    await eventually(lambda: of(connected.ticks, "df", "2885"), what="depth updates")
    connected.unsubscribe("NSE|2885", feed_type=FeedType.SNAPQUOTE)
    await eventually(lambda: ("d", "NSE", "2885") not in noren_sim.subscriptions(), what="the unsubscribe")
    sent = noren_sim.last_sent[max(noren_sim.last_sent)]
    acked = list(sent).index({"t": "udk", "k": "NSE|2885"})
    await eventually(lambda: len([m for m in list(sent)[acked:] if m.get("t") == "tf"]) > 5, what="touchline on")
    assert [m for m in list(sent)[acked:] if m.get("t") == "df"] == []


async def test_heartbeats_are_answered_and_break_nothing(noren_sim, connected):
    connected.send_raw('{"t":"h"}')
    connected.subscribe("NSE|11536")
    await eventually(lambda: of(connected.ticks, "tf", "11536"), what="updates after a heartbeat")
    sent = noren_sim.last_sent[max(noren_sim.last_sent)]
    assert {"t": "h"} in sent
    assert connected.errors == [] and connected.closes == 0


async def test_order_updates_reach_subscribe_orders(noren_sim, connected):
    connected.subscribe_orders()
    await eventually(lambda: {"t": "ok"} in noren_sim.last_sent[max(noren_sim.last_sent)], what="the ok")
    rejected = {"norenordno": "24121300000001", "status": "REJECTED", "reporttype": "Rejected"}
    await noren_sim.push_order(
        {**rejected, "rejreason": "Insufficient funds", "exch": "NSE", "tsym": "SBIN-EQ", "qty": 1}
    )
    await eventually(lambda: connected.orders, what="the pushed order message")
    pushed = connected.orders[0]
    assert pushed["t"] == "om" and pushed["actid"] == noren_sim.user_id and pushed["qty"] == "1"
    assert pushed["rejreason"] == "Insufficient funds" and pushed["norentm"]
    reply = await asyncio.to_thread(connected.place_order, "B", "I", "NSE", "SBIN-EQ", 2, 0, "LMT", price=811.5)
    assert reply["stat"] == "Ok"
    number = reply["norenordno"]
    await eventually(lambda: len([o for o in connected.orders if o["norenordno"] == number]) == 2, what="New, Fill")
    new, fill = [o for o in connected.orders if o["norenordno"] == number]
    assert (new["status"], new["reporttype"], new["fillshares"]) == ("OPEN", "New", "0")
    assert (fill["status"], fill["reporttype"], fill["fillshares"], fill["avgprc"]) == (
        "COMPLETE",
        "Fill",
        "2",
        "811.5",
    )
    assert fill["trantype"] == "B" and fill["prctyp"] == "LMT" and fill["tsym"] == "SBIN-EQ"


async def test_get_quotes_answers_the_simulators_state(noren_sim, connected):
    connected.subscribe("NSE|1333")
    await eventually(lambda: len(of(connected.ticks, "tf", "1333")) >= 5, what="updates")
    noren_sim.frozen = True
    quote = await asyncio.to_thread(connected.get_quotes, "NSE", "1333")
    state = noren_sim.state("NSE", "1333")
    assert quote["tsym"] == "HDFCBANK-EQ" and quote["token"] == "1333"
    for name in ("lp", "v", "o", "h", "l", "c", "bp1", "sq5", "uc", "lc"):
        assert quote[name] == state[name], name


# The connect --------------------------------------------------------------------------------
async def test_anything_before_the_connect_closes_the_socket(noren_sim):
    async with connect(noren_sim.feed_url) as ws:
        await ws.send('{"t":"t","k":"NSE|2885"}')
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert noren_sim.handshakes == 1


async def test_a_bad_session_token_is_refused_then_closed(noren_sim):
    async with connect(noren_sim.feed_url) as ws:
        await ws.send(json.dumps({"t": "c", "uid": noren_sim.user_id, "actid": noren_sim.user_id,
                                  "susertoken": "forged", "source": "API"}))  # fmt: skip
        assert json.loads(await ws.recv()) == {"t": "ck", "s": "Not_Ok", "emsg": "Invalid Session Key"}
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_the_feed_lives_only_at_the_hosts_path(noren_sim):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(noren_sim.feed_url.replace("/NorenWSTP/", "/elsewhere/")):
            pass
    assert refused.value.response.status_code == 404


# OAuth ----------------------------------------------------------------------------------------
def no_redirects(url: str, **params: str) -> requests.Response:
    return requests.get(url, params=params, allow_redirects=False, timeout=5)


async def test_shoonya_oauth_code_access_token_bearer_and_the_feeds_a_connect(noren_sim):
    page = await asyncio.to_thread(
        no_redirects, noren_sim.auth_url, client_id=noren_sim.api_key, redirect_uri="http://127.0.0.1:9/cb"
    )
    assert page.status_code == 302
    location = urlsplit(page.headers["Location"])
    assert location.netloc == "127.0.0.1:9" and location.path == "/cb"
    code = parse_qs(location.query)["code"][0]
    # as OpenAlgo's broker/shoonya/api/auth_api.py sends it
    checksum = hashlib.sha256(f"{noren_sim.api_key}{noren_sim.api_secret}{code}".encode()).hexdigest()
    body = "jData=" + json.dumps({"code": code, "checksum": checksum})
    answer = await asyncio.to_thread(
        requests.post, noren_sim.token_url, data=body, headers={"Content-Type": "text/plain"}, timeout=5
    )
    token = answer.json()["access_token"]
    assert answer.json()["stat"] == "Ok" and token in noren_sim.access_tokens
    again = await asyncio.to_thread(requests.post, noren_sim.token_url, data=body, timeout=5)
    assert again.json() == {"stat": "Not_Ok", "emsg": "Invalid Input : Invalid Code"}  # a code works once
    # REST with the Bearer header, at the OAuth releases' path, as OpenAlgo's shoonya data.py does
    quotes = await asyncio.to_thread(
        requests.post,
        noren_sim.root_url + "/NorenWClientAPI/GetQuotes",
        data="jData=" + json.dumps({"uid": noren_sim.user_id, "exch": "NSE", "token": "2885"}),
        headers={"Content-Type": "text/plain", "Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert quotes.json()["stat"] == "Ok" and quotes.json()["tsym"] == "RELIANCE-EQ"
    async with connect(noren_sim.feed_url) as ws:
        await ws.send(json.dumps({"t": "a", "uid": noren_sim.user_id, "actid": noren_sim.user_id,
                                  "source": "API", "accesstoken": token}))  # fmt: skip
        assert json.loads(await ws.recv()) == {"t": "ak", "s": "OK", "uid": noren_sim.user_id}
        await ws.send('{"t":"t","k":"NSE|2885"}')
        assert json.loads(await ws.recv())["t"] == "tk"


async def test_shoonya_oauth_refuses_a_wrong_checksum_and_a_wrong_client(noren_sim):
    code = noren_sim.issue_oauth_code()
    body = "jData=" + json.dumps({"code": code, "checksum": "0" * 64})
    answer = await asyncio.to_thread(requests.post, noren_sim.token_url, data=body, timeout=5)
    assert answer.json() == {"stat": "Not_Ok", "emsg": "Invalid Input : Invalid Checksum"}
    page = await asyncio.to_thread(no_redirects, noren_sim.auth_url, client_id="someone-else")
    assert page.status_code == 400 and "Location" not in page.headers


async def test_flattrade_oauth_and_norens_client_with_the_token_as_jkey(flattrade_sim):
    sim = flattrade_sim
    assert sim.api_url.endswith("/PiConnectTP") and sim.feed_url.endswith("/PiConnectWSTp/")
    page = await asyncio.to_thread(no_redirects, sim.auth_url, app_key=sim.api_key)
    assert page.status_code == 302
    query = parse_qs(urlsplit(page.headers["Location"]).query)
    code, client_id = query["code"][0], query["client"][0]
    assert client_id == sim.user_id
    # as OpenAlgo's broker/flattrade/api/auth_api.py sends it
    secret = hashlib.sha256(f"{sim.api_key}{code}{sim.api_secret}".encode()).hexdigest()
    answer = await asyncio.to_thread(
        requests.post,
        sim.token_url,
        json={"api_key": sim.api_key, "request_code": code, "api_secret": secret},
        timeout=5,
    )
    assert answer.json()["stat"] == "Ok"
    token = answer.json()["token"]
    api = Client(sim)
    try:
        api.set_session(sim.user_id, "", token)
        quote = await asyncio.to_thread(api.get_quotes, "NSE", "3045")
        assert quote["stat"] == "Ok" and quote["tsym"] == "SBIN-EQ"
        api.start()
        await eventually(lambda: api.opens == 1, what="the ck of a jKey token")
        api.subscribe("NSE|3045")
        await eventually(lambda: of(api.ticks, "tf", "3045"), what="Flattrade's updates")
    finally:
        await api.aclose()


async def test_issued_codes_and_tokens_work(flattrade_sim):
    sim = flattrade_sim
    token = sim.issue_access_token()
    assert token in sim.session_tokens
    code = sim.issue_oauth_code()
    secret = hashlib.sha256(f"{sim.api_key}{code}{sim.api_secret}".encode()).hexdigest()
    body = {"api_key": sim.api_key, "request_code": code, "api_secret": secret}
    first = await asyncio.to_thread(requests.post, sim.token_url, json=body, timeout=5)
    assert first.json()["stat"] == "Ok"
    wrong_key = await asyncio.to_thread(requests.post, sim.token_url, json={**body, "api_key": "x"}, timeout=5)
    assert wrong_key.json()["emsg"] == "Invalid Input : Invalid App Key"


# Masters ------------------------------------------------------------------------------------
def _read_master(url: str) -> tuple[requests.Response, list[list[str]]]:
    answer = requests.get(url, timeout=5)
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        (name,) = archive.namelist()
        text = archive.read(name).decode()
    assert name == urlsplit(url).path.rsplit("/", 1)[-1].removesuffix(".zip")
    return answer, [line.split(",") for line in text.splitlines()]


@pytest.mark.parametrize("name", ["shoonya", "flattrade"])
async def test_masters_at_the_host_root_in_norens_format(name):
    async with NorenSimulator(HOSTS[name]) as sim:
        assert set(sim.masters()) == {f"{e}_symbols.txt.zip" for e in ("NSE", "NFO", "BSE", "BFO", "CDS", "MCX")}
        answer, lines = await asyncio.to_thread(_read_master, f"{sim.master_url}/NSE_symbols.txt.zip")
        assert answer.headers["Content-Length"] == str(len(answer.content))
        assert answer.content == sim.masters()["NSE_symbols.txt.zip"]
        header, *rows = lines
        assert header == ["Exchange", "Token", "LotSize", "Symbol", "TradingSymbol", "Instrument", "TickSize", ""]
        assert all(row[-1] == "" for row in rows)  # every line ends with a comma
        by_symbol = {row[4]: row[1] for row in rows}
        for tsym, token in NOREN_TOKENS.items():
            assert by_symbol[tsym] == token, tsym
        _, bse = await asyncio.to_thread(_read_master, f"{sim.master_url}/BSE_symbols.txt.zip")
        assert bse[[r[4] for r in bse].index("SENSEX")][:2] == ["BSE", "1"]


async def test_flattrade_also_serves_its_own_csv_files(flattrade_sim):
    url = f"{flattrade_sim.master_url}/NSE_Equity.csv"
    assert url.endswith("/scripmaster/NSE_Equity.csv")
    answer = await asyncio.to_thread(requests.get, url, timeout=5)
    header, *rows = [line.split(",") for line in answer.text.splitlines()]
    assert {"Token", "Lotsize", "Symbol", "Tradingsymbol", "Instrument"} <= set(header)  # what OpenAlgo reads
    column = {name: i for i, name in enumerate(header)}
    reliance = next(r for r in rows if r[column["Tradingsymbol"]] == "RELIANCE-EQ")
    assert reliance[column["Token"]] == "2885"
    index = await asyncio.to_thread(requests.get, f"{flattrade_sim.master_url}/Nfo_Index_Derivatives.csv", timeout=5)
    assert "NIFTY" in index.text and "FUTSTK" not in index.text
    assert set(flattrade_sim.flattrade_csvs()) >= {"NSE_Equity.csv", "BSE_Equity.csv", "Commodity.csv"}


async def test_derivatives_expire_from_today_on(noren_sim):
    _, lines = await asyncio.to_thread(_read_master, f"{noren_sim.master_url}/NFO_symbols.txt.zip")
    header, *rows = lines
    assert header[:-1] == ["Exchange", "Token", "LotSize", "Symbol", "TradingSymbol", "Expiry", "Instrument",
                           "OptionType", "StrikePrice", "TickSize"]  # fmt: skip
    today = dt.date.today()
    expiries = {dt.datetime.strptime(row[5], "%d-%b-%Y").date() for row in rows}
    assert expiries and min(expiries) >= today
    assert {row[6] for row in rows} >= {"FUTIDX", "OPTIDX", "FUTSTK", "OPTSTK"}
    futures = [row for row in rows if row[7] == "XX"]
    assert futures and all(row[4].endswith("F") for row in futures)
    calls = [row for row in rows if row[3] == "NIFTY" and row[7] == "CE"]
    strikes = sorted(float(row[8]) for row in calls)
    assert strikes[0] < 24350 < strikes[-1]  # around the money
    for exchange, first in (("CDS", "Precision"), ("MCX", "GNGD")):
        _, lines = await asyncio.to_thread(_read_master, f"{noren_sim.master_url}/{exchange}_symbols.txt.zip")
        assert first in lines[0] and len(lines) > 1


async def test_tick_moves_a_frozen_market_on_demand(noren_sim, connected):
    noren_sim.frozen = True
    connected.subscribe("NSE|2885", feed_type=FeedType.SNAPQUOTE)
    await eventually(lambda: of(connected.ticks, "dk", "2885"), what="the snapshot")
    for _ in range(30):
        await noren_sim.tick()
    await eventually(lambda: of(connected.ticks, "df", "2885"), what="updates of the ticks asked for")
    want = noren_sim.state("NSE", "2885")
    fields = {"e", "tk", *noren_sim.fields("d", "NSE", "2885")}
    await eventually(
        lambda: merged(connected.ticks, "2885", ("dk", "df")) == {k: want[k] for k in fields},
        what="the merged depth to equal the state after the ticks",
    )


# Faults ---------------------------------------------------------------------------------------
async def test_drop_all_and_the_client_sees_a_close(noren_sim, connected):
    noren_sim.drop_all()
    await eventually(lambda: connected.closes >= 1, what="the client's close callback")
    await eventually(lambda: connected.opens == 2, what="the client's reconnect")  # the session still holds
    assert noren_sim.handshakes == 2


async def test_go_silent_stops_everything_then_speaks_again(noren_sim, connected):
    connected.subscribe("NSE|2885")
    await eventually(lambda: of(connected.ticks, "tf", "2885"), what="updates")
    noren_sim.go_silent(seconds=None)
    (conn,) = noren_sim.connections
    sent = len(conn.sent)
    connected.send_raw('{"t":"h"}')
    for _ in range(5):
        await asyncio.sleep(noren_sim.tick_interval)  # ticks go by without a message
    assert len(conn.sent) == sent
    noren_sim.go_silent(silent=False)
    await eventually(lambda: len(conn.sent) > sent + 3, what="updates after the silence")
    assert {"t": "h"} in list(conn.sent)[sent:]  # the heartbeat read after the silence is answered


async def test_garbage_reaches_the_client_and_the_connection_stays(noren_sim):
    token = await asyncio.to_thread(Client(noren_sim).login_to_sim)
    async with connect(noren_sim.feed_url) as ws:
        await ws.send(json.dumps({"t": "c", "uid": noren_sim.user_id, "actid": noren_sim.user_id,
                                  "susertoken": token["susertoken"], "source": "API"}))  # fmt: skip
        assert json.loads(await ws.recv())["s"] == "OK"
        assert noren_sim.send_garbage() >= 4
        frames = [await asyncio.wait_for(ws.recv(), 5) for _ in range(5)]
        decoded = []
        for frame in frames:
            try:
                decoded.append(json.loads(frame))
            except ValueError:
                decoded.append(None)
        assert None in decoded  # not JSON
        assert any(isinstance(d, dict) and "t" not in d for d in decoded)
        assert any(isinstance(d, dict) and d.get("t") == "zz" for d in decoded)
        assert any(isinstance(d, dict) and isinstance(d.get("tk"), int) for d in decoded)
        noren_sim.send_garbage("{{{")
        assert await asyncio.wait_for(ws.recv(), 5) == "{{{"
        await ws.send('{"t":"t","k":"NSE|2885"}')
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["t"] == "tk"


async def test_rest_fault_and_restart(noren_sim, client):
    noren_sim.rest_fault(502, 2)
    for _ in range(2):
        answer = await asyncio.to_thread(requests.get, f"{noren_sim.master_url}/NSE_symbols.txt.zip", timeout=5)
        assert answer.status_code == 502 and answer.headers["Content-Type"] == "text/html"
    answer = await asyncio.to_thread(requests.get, f"{noren_sim.master_url}/NSE_symbols.txt.zip", timeout=5)
    assert answer.status_code == 200
    noren_sim.restart(seconds=0.5)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(noren_sim.feed_url):
            pass
    assert refused.value.response.status_code == 503

    async def accepted() -> bool:
        try:
            async with connect(noren_sim.feed_url):
                return True
        except InvalidStatus:
            return False

    async with asyncio.timeout(10):
        while not await accepted():
            await asyncio.sleep(0.05)


async def test_controls_over_http(noren_sim, connected):
    def post(action: str, **kwargs: Any) -> requests.Response:
        return requests.post(f"{noren_sim.control_url}/{action}", timeout=5, **kwargs)

    connected.subscribe_orders()
    await eventually(lambda: {"t": "ok"} in noren_sim.last_sent[max(noren_sim.last_sent)], what="the ok")
    order = await asyncio.to_thread(post, "order", data=json.dumps({"norenordno": "7", "status": "OPEN"}))
    assert order.status_code == 200 and order.json()["action"] == "order"
    await eventually(lambda: connected.orders, what="the order message")
    assert connected.orders[0]["norenordno"] == "7"
    garbage = await asyncio.to_thread(post, "garbage", params={"text": "not json"})
    assert garbage.json()["connections"] == 1
    bad = await asyncio.to_thread(post, "silent", params={"seconds": "nan"})
    assert bad.status_code == 400 and "seconds" in bad.json()["error"]
    unknown = await asyncio.to_thread(post, "explode")
    assert unknown.status_code == 404
    get = await asyncio.to_thread(requests.get, f"{noren_sim.control_url}/drop", timeout=5)
    assert get.status_code == 405
    block = await asyncio.to_thread(post, "block")
    assert block.json()["action"] == "block" and noren_sim.blocked
    expire = await asyncio.to_thread(post, "expire")
    assert expire.status_code == 200 and noren_sim.session_tokens == set()
    assert noren_sim.controls == ["order", "garbage", "block", "expire"]


async def test_nothing_secret_in_reprs_or_logs(noren_sim, connected, caplog):
    caplog.set_level(logging.DEBUG, logger="oaws")
    connected.subscribe("NSE|2885")
    await eventually(lambda: of(connected.ticks, "tf", "2885"), what="updates")
    token = next(iter(noren_sim.session_tokens))
    text = repr(noren_sim) + "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("oaws"))
    for secret in (noren_sim.password, noren_sim.totp_secret, noren_sim.api_secret, noren_sim.api_key, token):
        assert secret not in text


async def test_env_names_the_hosts_prefix(noren_sim, flattrade_sim):
    names = ("USER_ID", "PASSWORD", "TOTP_SECRET", "VENDOR_CODE", "API_SECRET", "API_KEY", "API_URL", "FEED_URL",
             "MASTER_URL", "AUTH_URL", "TOKEN_URL")  # fmt: skip
    assert set(noren_sim.env()) == {f"SHOONYA_{n}" for n in names}
    assert set(flattrade_sim.env()) == {f"FLATTRADE_{n}" for n in names}
    assert noren_sim.env()["SHOONYA_API_URL"] == noren_sim.api_url.rstrip("/")
    assert noren_sim.api_url.endswith("/NorenWClientTP") and noren_sim.feed_url.endswith("/NorenWSTP/")
