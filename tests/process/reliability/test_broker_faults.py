"""Broker-side faults: Angel drops, goes silent, sends garbage, refuses credentials, restarts.

The chain is real: the Angel simulator -> AngelFeed -> ZeroMQ bus -> proxy -> WebSocket clients
(two bare ``websockets`` connections and one ``oaws.client.Client``, six instruments, all three
modes, one subscription shared by two clients). After every fault each test checks that

- every subscription of every client gets fresh ticks again, while the clients do nothing:
  their connections stay open and they send nothing more (``untouched``);
- every tick a client got is a packet the simulator encoded, with its ltp, in order, once
  (``audit``), and how many encoded packets never arrived;
- reconnects and logins stay within what the backoff allows (no retry storm).

Timing-sensitive faults run ``Service`` in this process around an AngelFeed with short timeouts
(``oaws serve`` has no option for them); refused credentials and the secrets check run the real
``oaws`` commands as subprocesses. Each test records its row of the fault table as the
``fault_row`` property (``--junitxml`` shows them).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from oaws import background
from oaws.brokers.angel import wire
from oaws.brokers.angel.session import SESSION_FILE
from oaws.brokers.angel.wire import DepthLevel, Packet
from oaws.instruments import Instrument
from tests.process.reliability.conftest import (
    FEED_DEFAULTS,
    Foreground,
    LibClient,
    RawClient,
    Upstream,
    all_fresh_after,
    all_keys,
    audit,
    cli_env,
    distinct_secrets,
    eventually,
    feed_delays,
    most_reconnects,
    oaws,
    open_clients,
    serve_in_process,
    untouched,
)

FEED_LOG = "oaws.brokers.angel.feed"
BASE, CAP = FEED_DEFAULTS["backoff_base"], FEED_DEFAULTS["backoff_cap"]


def report(record_property: Any, **row: Any) -> None:
    """One row of the fault table, for the report (``--junitxml``) and for a failing test's output."""
    record_property("fault_row", json.dumps(row))
    print("fault_row", json.dumps(row))


def frames_sent(clients: list[RawClient | LibClient]) -> dict[str, int]:
    return {c.name: c.frames_sent for c in clients if isinstance(c, RawClient)}


def resubscribed(sim: Any, keys: set[tuple[int, int, str]], handshakes: int) -> Any:
    """A new connection since ``handshakes``, the only one, holding every subscription again."""
    return lambda: sim.handshakes > handshakes and [c.subscriptions for c in sim.connections] == [keys]


def backoff_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [
        r.args[2]
        for r in caplog.records
        if r.name == FEED_LOG and "reconnecting in" in r.msg and isinstance(r.args, tuple)
    ]


async def figures_when(url: str, predicate: Any, timeout: float = 10.0, api_key: str | None = None) -> dict[str, Any]:
    """The server's /health figures once ``predicate(figures)`` holds (a server with an API
    key shows them only with it)."""
    deadline = time.monotonic() + timeout
    while True:
        figures = await asyncio.to_thread(background.health, url, 5.0, api_key)
        if figures is not None and predicate(figures):
            return figures
        assert time.monotonic() < deadline, f"the server's figures never got there: {figures}"
        await asyncio.sleep(0.05)


async def close_all(clients: list[RawClient | LibClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


# 1. Dropped connections -------------------------------------------------------------------
DROPS = 10


async def test_ten_drops_in_a_row_each_recovered_with_growing_bounded_backoff(
    upstream, master, tmp_path, monkeypatch, caplog, record_property
):
    caplog.set_level(logging.INFO, logger=FEED_LOG)
    sim, keys = upstream.sim, all_keys(master)
    recoveries: list[float] = []
    async with serve_in_process(upstream, master, tmp_path, monkeypatch) as server:
        clients = await open_clients(server.url)
        try:
            frames = frames_sent(clients)
            await eventually(resubscribed(sim, keys, 0))
            started = time.monotonic()
            for _ in range(DROPS):
                handshakes, dropped = sim.handshakes, time.monotonic()
                sim.drop_all()  # TCP reset, no close frame
                await eventually(resubscribed(sim, keys, handshakes), what="the feed to resubscribe")
                await all_fresh_after(clients, time.monotonic())
                recoveries.append(time.monotonic() - dropped)
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - started
            health = await server.health()
            assert untouched(clients, frames) == []
        finally:
            await close_all(clients)
    result = audit(clients, upstream, master)
    delays = backoff_delays(caplog)
    report(
        record_property,
        fault="feed connection dropped (TCP reset)",
        times=DROPS,
        ticks=result.ticks,
        lost=result.lost,
        longest_gap_s=round(result.longest_gap, 3),
        recovery_s=[round(r, 3) for r in recoveries],
        backoff_s=[round(d, 3) for d in delays],
        reconnects=health["feed"]["reconnects"],
        reconnects_per_min=round(health["feed"]["reconnects"] * 60 / elapsed, 1),
        logins=sim.logins,
    )
    assert result.problems == []
    # one reconnect and one handshake per drop, no more; no login (the session is still good)
    assert health["feed"]["reconnects"] == DROPS and sim.handshakes == DROPS + 1
    assert sim.logins == 1 and health["feed"]["logins"] == 1 and health["feed"]["adapter_status"] == "connected"
    assert health["bus_missing"] == 0
    # back to back, each wait is drawn below a bound that doubles up to the cap ("full jitter"), never
    # below the floor, and they are the very sleeps the feed's seeded rng gives
    assert len(delays) == DROPS
    for attempt, delay in enumerate(delays):
        bound = min(CAP, BASE * 2**attempt)
        assert BASE / 10 <= delay <= bound, (attempt, delay)
    assert delays == pytest.approx(list(itertools.islice(feed_delays(BASE, CAP), DROPS)))
    # a packet in flight when the connection was reset may be lost; nothing else
    assert result.lost <= DROPS * len(keys)


# 2. Silence --------------------------------------------------------------------------------
SILENCES = 3
SILENCE = 0.3


async def test_silence_during_market_hours_is_detected_and_every_subscription_resumes(
    upstream, master, tmp_path, monkeypatch, record_property
):
    sim, keys = upstream.sim, all_keys(master)
    detected: list[float] = []
    async with serve_in_process(upstream, master, tmp_path, monkeypatch, silence_timeout=SILENCE) as server:
        clients = await open_clients(server.url)
        try:
            frames = frames_sent(clients)
            await eventually(resubscribed(sim, keys, 0))
            for _ in range(SILENCES):
                handshakes = sim.handshakes
                sim.go_silent()  # no ticks, no pongs; the TCP connection stays up
                silent_at = time.monotonic()
                await eventually(resubscribed(sim, keys, handshakes), what="the silence to be noticed")
                detected.append(time.monotonic() - silent_at)
                await all_fresh_after(clients, time.monotonic())
                await asyncio.sleep(0.2)
            health = await server.health()
            assert untouched(clients, frames) == []
        finally:
            await close_all(clients)
        causes = server.feed.disconnects
    result = audit(clients, upstream, master)
    report(
        record_property,
        fault=f"Angel silent (no ticks, no pongs) during market hours, window {SILENCE} s",
        times=SILENCES,
        ticks=result.ticks,
        lost=result.lost,
        longest_gap_s=round(result.longest_gap, 3),
        detected_after_s=[round(d, 3) for d in detected],
        reconnects=health["feed"]["reconnects"],
        logins=sim.logins,
    )
    assert result.problems == [] and result.lost == 0
    assert len(causes) == SILENCES and all("during market hours" in c for c in causes), causes
    assert health["feed"]["reconnects"] == SILENCES and sim.handshakes == SILENCES + 1 and sim.logins == 1
    # noticed one window after the last tick (at most one tick interval before going silent), not much later
    assert all(SILENCE - upstream.options["tick_interval"] <= d < SILENCE + 2.0 for d in detected), detected


#: Production timings (silence 30 s, backoff 1 s doubling to 60 s, stable after 30 s), 150 times faster.
SCALE = 0.2 / 30
HOLIDAY = 3.0


async def test_a_market_silent_all_day_costs_a_few_reconnects_not_one_per_window(
    upstream, master, tmp_path, monkeypatch, record_property
):
    sim = upstream.sim
    timings = {
        "silence_timeout": 30 * SCALE,
        "backoff_base": 1 * SCALE,
        "backoff_cap": 60 * SCALE,
        "stable_after": 30 * SCALE,
    }
    async with serve_in_process(upstream, master, tmp_path, monkeypatch, **timings) as server:
        client = await RawClient("raw", server.url, [(Instrument("RELIANCE", "NSE"), 1)]).open()
        try:
            await client.fresh_after(0)
            # a holiday the market-hours table does not know: each subscription is answered with the
            # last tick, then nothing
            sim.silence_new = True
            sim.go_silent()
            before = server.feed.reconnects
            await asyncio.sleep(HOLIDAY)
            reconnects = server.feed.reconnects - before
            causes = server.feed.disconnects[-3:]
        finally:
            await client.close()
    production_hours = HOLIDAY / SCALE / 3600
    report(
        record_property,
        fault="Angel silent all session (holiday), production timings scaled 1:150",
        times=1,
        reconnects=reconnects,
        reconnects_per_hour_in_production=round(reconnects / production_hours),
        last_causes=causes,
    )
    # "each silent reconnect in a row doubles the window": 0.2 + 0.4 + 0.8 + 1.6 s = 3 s, so at most 4 (+1 slack)
    assert reconnects <= 5, f"{reconnects} reconnects in {HOLIDAY} s of silence; last causes {causes}"


# 3. Garbage --------------------------------------------------------------------------------
def garbage(rng: random.Random) -> list[bytes]:
    """Binary frames a broken or hostile upstream might send: cut, empty, wrong mode, noise, and
    well-formed packets nobody subscribed to (another token, another mode, depth 20)."""
    now = int(time.time() * 1000)
    level = DepthLevel(1, 100, 1)
    frames = [
        bytes([wire.SNAP_QUOTE, wire.NSE_CM]) + b"2885".ljust(25, b"\0") + b"\x01" * 40,  # a cut snap quote
        b"\x01",
        b"",
        bytes([99]) + b"\0" * 50,  # unknown mode
        bytes([wire.LTP, 42]) + b"2885".ljust(25, b"\0") + b"\0" * 24,  # unknown exchange type
        wire.encode(Packet(wire.LTP, wire.NSE_CM, "99999", 1, now, 123)),  # a token nobody asked for
        wire.encode(Packet(wire.QUOTE, wire.NSE_CM, "2885", 1, now, 123)),  # RELIANCE, a mode nobody asked for
        wire.encode(Packet(wire.DEPTH, wire.NSE_CM, "2885", depth_buy=(level,) * 20, depth_sell=(level,) * 20)),
    ]
    for _ in range(12):
        noise = bytearray(rng.randbytes(rng.choice((1, 51, 123, 379, 443, rng.randint(2, 600)))))
        noise[0] = rng.choice((1, 2, 3, 4, 7, 200))
        frames.append(bytes(noise))
    return frames


TEXT_GARBAGE = ["}{", "[1, 2, 3]", '{"errorCode": "E9999", "errorMessage": "bogus"}', "pong", "\x00\xff", "null"]
GARBAGE_ROUNDS = 5


async def test_garbage_frames_are_counted_and_skipped_and_no_wrong_tick_reaches_a_client(
    upstream, master, tmp_path, monkeypatch, caplog, record_property
):
    caplog.set_level(logging.INFO, logger=FEED_LOG)
    sim, keys = upstream.sim, all_keys(master)
    rng = random.Random(5)
    malformed = unexpected = 0
    async with serve_in_process(upstream, master, tmp_path, monkeypatch) as server:
        clients = await open_clients(server.url)
        try:
            frames = frames_sent(clients)
            await eventually(resubscribed(sim, keys, 0))
            connection = sim.connections[0]
            for _ in range(GARBAGE_ROUNDS):
                for frame in garbage(rng):
                    try:
                        packet = wire.decode(frame)
                    except wire.MalformedFrame:
                        malformed += 1
                    else:
                        assert (packet.mode, packet.exchange_type, packet.token) not in keys
                        unexpected += 1
                    await connection.ws.send(frame)
                for text in TEXT_GARBAGE:
                    await connection.ws.send(text)
                await asyncio.sleep(0.1)
            await eventually(lambda: server.feed.malformed + server.feed.unexpected == malformed + unexpected)
            await all_fresh_after(clients, time.monotonic())
            health = await server.health()
            connections = list(sim.connections)
            assert untouched(clients, frames) == []
        finally:
            await close_all(clients)
    result = audit(clients, upstream, master)
    sent = GARBAGE_ROUNDS * (len(garbage(rng)) + len(TEXT_GARBAGE))
    report(
        record_property,
        fault="garbage frames (binary and text)",
        times=sent,
        malformed_counted=health["feed"]["malformed_frames"],
        unexpected_counted=health["feed"]["unexpected_ticks"],
        ticks=result.ticks,
        lost=result.lost,
        wrong_ticks=len(result.problems),
        reconnects=health["feed"]["reconnects"],
    )
    assert result.problems == [] and result.lost == 0
    assert health["feed"]["malformed_frames"] == malformed and health["feed"]["unexpected_ticks"] == unexpected
    # the connection stayed: same socket, one handshake, no reconnect
    assert connections == [connection] and sim.handshakes == 1 and health["feed"]["reconnects"] == 0
    # and the log is not flooded: one line for the malformed frames (at most one per 10 s)
    assert sum("malformed frame" in r.getMessage() for r in caplog.records) == 1


# 4. Credentials ----------------------------------------------------------------------------
EXPIRIES = 3
LOGIN_OUTAGE = 1.5


async def test_expired_tokens_cost_one_login_each_and_a_login_outage_is_retried_with_backoff(
    upstream, master, tmp_path, monkeypatch, record_property
):
    sim, keys = upstream.sim, all_keys(master)
    async with serve_in_process(upstream, master, tmp_path, monkeypatch) as server:
        clients = await open_clients(server.url)
        try:
            frames = frames_sent(clients)
            await eventually(resubscribed(sim, keys, 0))
            for i in range(EXPIRIES):
                handshakes = sim.handshakes
                sim.expire_tokens()  # Angel's nightly rollover: every token refused, connections dropped
                await eventually(resubscribed(sim, keys, handshakes), what="a new session")
                assert sim.logins == 2 + i
                await all_fresh_after(clients, time.monotonic())
                await asyncio.sleep(0.2)
            assert sim.login_attempts == 1 + EXPIRIES
            assert sim.refused == [(401, "Invalid Auth Token")] * EXPIRIES

            # the login API down (503 page) just when a new session is needed
            attempts, handshakes = sim.login_attempts, sim.handshakes
            sim.rest_unavailable = True
            sim.expire_tokens()
            started = time.monotonic()
            await asyncio.sleep(LOGIN_OUTAGE)
            tried = sim.login_attempts - attempts
            sim.rest_unavailable = False
            outage = time.monotonic() - started
            await eventually(resubscribed(sim, keys, handshakes), what="the login to get through")
            await all_fresh_after(clients, time.monotonic())
            health = await server.health()
            assert untouched(clients, frames) == []
        finally:
            await close_all(clients)
    result = audit(clients, upstream, master)
    # after three reconnects in a row the backoff stands at attempt 3: the waits are its 4th, 5th...
    allowed = most_reconnects(outage, BASE, CAP, start=EXPIRIES)
    report(
        record_property,
        fault="session tokens expired (401 at the handshake)",
        times=EXPIRIES,
        logins=EXPIRIES,
        ticks=result.ticks,
        lost=result.lost,
        longest_gap_s=round(result.longest_gap, 3),
        login_outage_s=round(outage, 2),
        login_attempts_in_outage=tried,
        allowed_by_backoff=allowed,
        login_attempts_per_min_in_outage=round(tried * 60 / outage),
    )
    assert result.problems == []
    assert 1 <= tried <= allowed
    assert sim.logins == 2 + EXPIRIES  # the first login, one per expiry, one after the outage
    assert health["feed"]["logins"] == sim.login_attempts  # every attempt the feed made, none hidden
    assert health["feed"]["adapter_status"] == "connected" and health["bus_missing"] == 0


REFUSALS = {
    "refused login at start": "Invalid PIN (AB1000)",
    "refused login after the tokens expired": "Invalid PIN (AB1000)",
    "feed refuses a fresh session": "Angel One refused the feed tokens of a fresh login (Feed access disabled)",
}


@pytest.mark.parametrize("fault", list(REFUSALS))
async def test_refused_credentials_stop_the_server_with_one_sentence_and_no_retry_storm(
    fault, upstream, tmp_path, record_property
):
    sim = upstream.sim
    env = cli_env(tmp_path, upstream)
    updated = await oaws(env, "instruments", "update", "--broker", "angel")
    assert updated.returncode == 0, updated.stderr
    if fault == "refused login at start":
        sim.pin = "9999"  # the PIN changed on Angel's side; ANGEL_PIN still holds the old one
    server = await Foreground(env, "--broker", "angel", "--port", "0", "--bus", "tcp://127.0.0.1:*").start()
    client = None
    try:
        if fault != "refused login at start":
            assert server.url, server.lines
            client = await RawClient("raw", server.url, [(Instrument("RELIANCE", "NSE"), 1)]).open()
            await client.fresh_after(0)
            if fault == "refused login after the tokens expired":
                sim.pin = "9999"
                sim.expire_tokens()
            else:
                sim.refuse_feed = "Feed access disabled"
                sim.drop_all()
        faulted = time.monotonic()
        code = await server.wait(20)
        stopped_after = time.monotonic() - faulted
    finally:
        if client is not None:
            await client.close()
        await server.kill()
    errors = [line for line in server.lines if line.startswith("oaws: ") and "serving on" not in line]
    report(
        record_property,
        fault=fault,
        times=1,
        login_attempts=sim.login_attempts,
        refused_logins=sim.login_failures,
        feed_handshakes_refused=sim.refused,
        stopped_after_s=round(stopped_after, 2),
        said=errors,
    )
    assert code == 1
    assert not any("Traceback" in line for line in server.lines), "\n".join(server.lines)
    assert len(errors) == 1 and errors == server.lines[-1:], server.lines
    assert errors[0].startswith("oaws: the angel feed stopped: ") and REFUSALS[fault] in errors[0]
    # once refused, never asked again: the server stops instead of hammering a locked account
    if fault == "refused login at start":
        assert sim.login_attempts == 1 and sim.login_failures == ["Invalid PIN"]
    elif fault == "refused login after the tokens expired":
        assert sim.login_attempts == 2 and sim.login_failures == ["Invalid PIN"]
    else:
        assert sim.login_attempts == 2 and sim.refused == [(401, "Feed access disabled")] * 2


async def test_a_detached_server_whose_login_is_refused_says_why(upstream, tmp_path, record_property):
    sim = upstream.sim
    env = cli_env(tmp_path, upstream)
    updated = await oaws(env, "instruments", "update", "--broker", "angel")
    assert updated.returncode == 0, updated.stderr
    sim.pin = "9999"
    try:
        done = await oaws(env, "serve", "--broker", "angel", "--port", "0", "--bus", "tcp://127.0.0.1:*", "--detach")
        await asyncio.sleep(0.5)
        status = await oaws(env, "status")
    finally:
        await oaws(env, "stop")
    report(
        record_property,
        fault="refused login at start, serve --detach",
        times=1,
        login_attempts=sim.login_attempts,
        serve_exit=done.returncode,
        serve_said=(done.stdout + done.stderr).strip().splitlines(),
        status_said=(status.stdout + status.stderr).strip().splitlines(),
    )
    assert sim.login_attempts == 1
    assert done.returncode == 1 and "Invalid PIN (AB1000)" in done.stderr, done.stdout + done.stderr


# 5. Restarts -------------------------------------------------------------------------------
DOWNTIMES = (0.3, 0.3, 0.3, 0.3, 1.5)


async def test_angel_restarted_five_times_in_a_row_recovers_each_time_without_a_retry_storm(
    upstream, master, tmp_path, monkeypatch, record_property
):
    keys = all_keys(master)
    recoveries: list[float] = []
    async with serve_in_process(upstream, master, tmp_path, monkeypatch) as server:
        clients = await open_clients(server.url)
        try:
            frames = frames_sent(clients)
            await eventually(resubscribed(upstream.sim, keys, 0))
            started = time.monotonic()
            for downtime in DOWNTIMES:
                down_at, reconnects_before = time.monotonic(), server.feed.reconnects
                sim = await upstream.restart(downtime)  # same ports, a fresh Angel that knows no token
                during_downtime = server.feed.reconnects - reconnects_before
                await eventually(resubscribed(sim, keys, 0), what="the feed to come back")
                await all_fresh_after(clients, time.monotonic())
                recoveries.append(time.monotonic() - down_at)
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - started
            health = await server.health()
            assert untouched(clients, frames) == []
        finally:
            await close_all(clients)
    result = audit(clients, upstream, master)
    reconnects = health["feed"]["reconnects"]
    report(
        record_property,
        fault="Angel restarted (stopped, started again on the same ports)",
        times=len(DOWNTIMES),
        downtimes_s=list(DOWNTIMES),
        ticks=result.ticks,
        lost=result.lost,
        longest_gap_s=round(result.longest_gap, 3),
        recovery_s=[round(r, 3) for r in recoveries],
        reconnects=reconnects,
        allowed_by_backoff=most_reconnects(elapsed, BASE, CAP),
        reconnects_per_min=round(reconnects * 60 / elapsed, 1),
        reconnects_in_last_downtime=during_downtime,
        logins=[life.sim.logins for life in upstream.lives],
    )
    assert result.problems == []
    assert reconnects <= most_reconnects(elapsed, BASE, CAP)
    # during the long outage, with the backoff at its cap, no more attempts than its sleeps allow
    assert during_downtime <= most_reconnects(DOWNTIMES[-1], BASE, CAP, start=reconnects_before)
    # one login per Angel instance: the old tokens refused once, then a fresh session
    assert [life.sim.login_attempts for life in upstream.lives] == [1] * (len(DOWNTIMES) + 1)
    assert health["feed"]["logins"] == len(DOWNTIMES) + 1 and health["bus_missing"] == 0


# 6. Secrets --------------------------------------------------------------------------------
def process_cmdlines() -> dict[int, bytes]:
    """Every process's command line, as ``ps -eo args`` shows them."""
    lines = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                pass  # gone meanwhile, or not ours to read
    return lines


async def test_a_full_session_keeps_every_secret_out_of_logs_state_output_and_ps(tmp_path, master, record_property):
    secret = distinct_secrets()
    up = Upstream(api_key=secret["ANGEL_API_KEY"], pin=secret["ANGEL_PIN"], totp_secret=secret["ANGEL_TOTP_SECRET"])
    sim = await up.start()
    env = cli_env(tmp_path, up, OAWS_API_KEY=secret["OAWS_API_KEY"])
    state_dir = tmp_path / "state"
    outputs: list[str] = []
    keys = all_keys(master)
    clients: list[RawClient | LibClient] = []
    try:
        for args in (["instruments", "update", "--broker", "angel"], ["login", "angel"]):
            done = await oaws(env, *args)
            outputs += [done.stdout, done.stderr]
            assert done.returncode == 0, done.stderr
        session_after_login = (state_dir / SESSION_FILE).read_text()
        done = await oaws(env, "serve", "--broker", "angel", "--port", "0", "--bus", "tcp://127.0.0.1:*", "--detach")
        outputs += [done.stdout, done.stderr]
        assert done.returncode == 0, done.stderr
        info = json.loads((state_dir / "server.json").read_text())
        server_cmdline = Path(f"/proc/{info['pid']}/cmdline").read_bytes()
        cmdlines = process_cmdlines()
        ps = await asyncio.to_thread(subprocess.run, ["ps", "-eo", "pid,args"], capture_output=True, text=True)
        assert b"--background" in server_cmdline and f"{info['pid']} " in ps.stdout

        clients = await open_clients(info["url"], api_key=secret["OAWS_API_KEY"])
        frames = frames_sent(clients)
        await eventually(resubscribed(sim, keys, 0))
        handshakes = sim.handshakes
        sim.drop_all()
        await eventually(resubscribed(sim, keys, handshakes), what="a reconnect after the drop")
        await all_fresh_after(clients, time.monotonic())
        for _ in range(3):
            sim.send_garbage()
        await figures_when(
            info["url"], lambda figures: figures["feed"]["malformed_frames"] == 3, api_key=secret["OAWS_API_KEY"]
        )
        handshakes = sim.handshakes
        sim.expire_tokens()
        await eventually(resubscribed(sim, keys, handshakes), what="a new session")
        await all_fresh_after(clients, time.monotonic())
        status = await oaws(env, "status", "--json")
        outputs += [status.stdout, status.stderr]
        figures = json.loads(status.stdout)
        assert untouched(clients, frames) == []
    finally:
        await close_all(clients)
        stopped = await oaws(env, "stop")
        outputs += [stopped.stdout, stopped.stderr]
        await up.stop()
    result = audit(clients, up, master)
    feed = figures["feed"]

    files = {p: p.read_bytes() for root in (state_dir, tmp_path / "cache") for p in root.rglob("*") if p.is_file()}
    session_file = state_dir / SESSION_FILE
    log = files[state_dir / "server.log"].decode()
    tokens = sorted(sim.issued)
    leaks = [
        f"{name} in {where}"
        for name, value in [*secret.items(), *((f"token {t[:12]}...", t) for t in tokens)]
        for where, text in [
            *((str(p.relative_to(tmp_path)), data) for p, data in files.items()),
            *((f"command line of pid {pid}", line) for pid, line in cmdlines.items()),
            ("ps -eo pid,args", ps.stdout.encode()),
            *((f"output {i}", out.encode()) for i, out in enumerate(outputs)),
        ]
        if value.encode() in text and not (name.startswith("token") and where == f"state/{SESSION_FILE}")
    ]
    report(
        record_property,
        fault="full session: login, serve --detach, drop, 3 garbage frames, expired tokens, stop",
        times=1,
        ticks=result.ticks,
        lost=result.lost,
        lost_by=result.lost_by,
        files_checked=len(files),
        processes_checked=len(cmdlines),
        tokens_issued=len(tokens),
        leaks=leaks,
        reconnects=feed.get("reconnects"),
        logins=sim.logins,
    )
    assert result.problems == []
    assert leaks == []
    assert stopped.returncode == 0 and "stopped the background server" in stopped.stderr
    # the figures of the run: the stored session used at start, one login after the expiry
    assert feed.get("reconnects") == 2 and feed.get("logins") == 1 and feed.get("malformed_frames") == 3, feed
    assert sim.logins == 2 and len(tokens) == 6
    # the tokens live in the session file only, the current ones, readable by the user alone
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    current = json.loads(files[session_file])
    assert current["jwt"] in tokens and current["jwt"] not in session_after_login
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0 or path.is_relative_to(tmp_path / "cache"), path
    # and the log is a real one: it saw the faults
    assert "dropped without a close frame" in log and "refused the stored session tokens" in log, log[-2000:]
