"""TLS, origins, request floods and repeated failed authentication, on a real proxy."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from oaws.client import Client, Tick
from oaws.instruments import Instrument
from oaws.server.proxy import ProxyOptions
from oaws.server.service import Service, ServiceError, tls_context
from oaws.server.settings import ServeSettings
from tests.helpers import raw_websocket, recv_json


@pytest.fixture
def certificate(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_serves_wss_to_a_client_that_trusts_the_certificate(certificate, monkeypatch):
    cert, key = certificate
    service = Service(
        ServeSettings(port=0, bus="tcp://127.0.0.1:*", tls_cert=str(cert), tls_key=str(key), feed={"rate": 50})
    )
    await service.start()
    try:
        assert service.url.startswith("wss://")
        # an untrusting client is refused at the handshake
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(service.url):
                pass
        # the oaws client trusts what SSL_CERT_FILE names, like every Python program
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        async for event in Client(service.url, instruments=[Instrument("RELIANCE", "NSE")]):
            if isinstance(event, Tick):
                assert event.data["symbol"] == "RELIANCE"
                break
    finally:
        await service.stop()


def test_tls_needs_cert_and_key(tmp_path):
    with pytest.raises(ServiceError, match="both --tls-cert and --tls-key"):
        tls_context(ServeSettings(tls_cert="x.pem"))
    with pytest.raises(ServiceError, match="cannot load the TLS certificate"):
        tls_context(ServeSettings(tls_cert=str(tmp_path / "no.pem"), tls_key=str(tmp_path / "no.key")))


@pytest.mark.parametrize("proxy_options", [ProxyOptions(port=0, allowed_origins=("https://screen.example",))])
async def test_origin_check(bus, proxy):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(proxy.url, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    async with connect(proxy.url, origin="https://screen.example") as ws:
        await ws.send('{"action":"ping"}')
        assert (await recv_json(ws))["type"] == "pong"
    async with connect(proxy.url) as ws:  # scripts send no Origin
        await ws.send('{"action":"ping"}')
        assert (await recv_json(ws))["type"] == "pong"


@pytest.mark.parametrize("proxy_options", [ProxyOptions(port=0, work_rate=20, flood_close=200)])
async def test_request_flood_is_limited_then_closed(bus, proxy):
    async with connect(proxy.url) as calm:
        async with connect(proxy.url, max_queue=None) as ws:
            for _ in range(300):
                await ws.send('{"action":"ping"}')
            replies = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    replies.append(await recv_json(ws))
            pongs = sum(r.get("type") == "pong" for r in replies)
            assert 40 <= pongs <= 60  # the bucket: two seconds' worth, plus a little refill
            assert any(r.get("code") == "LIMIT_EXCEEDED" for r in replies)
            assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason == "request flood"
        # another client was not affected
        await calm.send('{"action":"ping"}')
        assert (await recv_json(calm))["type"] == "pong"


@pytest.mark.parametrize("proxy_options", [ProxyOptions(port=0, work_rate=20, flood_close=200)])
async def test_flood_control_counts_instruments_not_requests(bus, proxy):
    async with connect(proxy.url) as ws:
        symbols = [{"symbol": f"S{i}", "exchange": "NSE"} for i in range(100)]
        await ws.send(orjson.dumps({"action": "subscribe", "mode": 1, "symbols": symbols}).decode())
        reply = await recv_json(ws)
        assert reply["status"] == "success" and len(reply["subscriptions"]) == 100  # one request, served whole
        await ws.send('{"action":"ping"}')  # but it spent five seconds' worth of work
        reply = await recv_json(ws)
        assert reply["code"] == "LIMIT_EXCEEDED" and "instruments changed per second" in reply["message"]


@pytest.mark.parametrize("proxy_options", [ProxyOptions(port=0, api_key="right")])
async def test_repeated_failed_authentication_is_slowed_down(bus, proxy):
    async with connect(proxy.url) as ws:
        times = []
        for _ in range(6):
            start = time.monotonic()
            await ws.send('{"action":"authenticate","api_key":"guess"}')
            assert (await recv_json(ws, timeout=10))["code"] == "AUTHENTICATION_ERROR"
            times.append(time.monotonic() - start)
    assert max(times[:3]) < 0.2  # the first few are answered at once
    assert times[4] >= 0.45 and times[5] >= 0.9  # then 0.25 s doubling
    # the right key from that address still works, and clears the record
    async with connect(proxy.url) as ws:
        await ws.send('{"action":"authenticate","api_key":"right"}')
        assert (await recv_json(ws, timeout=10))["status"] == "success"
    assert proxy.failed_auth == {}


async def test_without_a_key_failed_authentication_never_slows_seed_clients(bus, proxy):
    """Without a key nobody needs to authenticate: an address that sent keyless
    `authenticate`s keeps being answered at once."""
    async with connect(proxy.url) as ws:
        for _ in range(5):
            await ws.send('{"action":"authenticate"}')
            assert (await recv_json(ws))["code"] == "AUTHENTICATION_ERROR"
        start = time.monotonic()
        for _ in range(3):
            await ws.send('{"action":"subscribe","symbol":"RELIANCE","exchange":"NSE"}')
            assert (await recv_json(ws))["type"] == "subscription"
    assert time.monotonic() - start < 0.9  # slowed down, the last would wait 1 s alone


async def test_invalid_utf8_closes_with_1007_and_the_server_goes_on(bus, proxy):
    import os

    reader, writer = await raw_websocket(proxy.url)
    body, mask = b'{"action":"\xff\xfe"}', os.urandom(4)
    writer.write(bytes((0x81, 0x80 | len(body))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(body)))
    head = await asyncio.wait_for(reader.readexactly(4), 3)
    assert head[0] == 0x88 and int.from_bytes(head[2:4], "big") == 1007  # a close frame: invalid data
    writer.close()
    async with connect(proxy.url) as ws:
        await ws.send('{"action":"ping"}')
        assert (await recv_json(ws))["type"] == "pong"


async def test_off_loopback_only_pages_of_the_server_itself_may_connect_unless_allowed():
    """Off loopback with no --allowed-origin, a browser page from elsewhere is refused;
    scripts (no Origin) and clients that send the server's own origin, as websocket-client
    and so OpenAlgo's SDK do, are not. On loopback the check is off."""
    import websocket  # websocket-client, what OpenAlgo's Python SDK connects with

    wide = Service(ServeSettings(host="0.0.0.0", port=0, bus="tcp://127.0.0.1:*", api_key="k", feed={"rate": 5}))
    local = Service(ServeSettings(port=0, bus="tcp://127.0.0.1:*", feed={"rate": 5}))
    await wide.start()
    await local.start()
    try:
        url = f"ws://127.0.0.1:{wide.proxy.port}"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin="https://evil.example"):
                pass
        assert refused.value.response.status_code == 403
        for origin in (None, f"http://127.0.0.1:{wide.proxy.port}"):
            async with connect(url, origin=origin) as ws:
                await ws.send('{"action":"authenticate","api_key":"k"}')
                assert (await recv_json(ws))["status"] == "success"

        def sdk_style() -> str:
            ws = websocket.create_connection(url, timeout=5)  # sends Origin: http://127.0.0.1:PORT
            try:
                ws.send('{"action":"authenticate","api_key":"k"}')
                return ws.recv()
            finally:
                ws.close()

        assert orjson.loads(await asyncio.to_thread(sdk_style))["status"] == "success"
        async with connect(local.url, origin="https://evil.example") as ws:  # loopback: off
            await ws.send('{"action":"ping"}')
            assert (await recv_json(ws))["type"] == "pong"
    finally:
        await wide.stop()
        await local.stop()
