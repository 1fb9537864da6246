"""A request storm beside a quiet client (issue 14 #7), on the all-in-one server.

`oaws serve` on the simulated market (a free port, a private state directory); for 10 s a
quiet client pings every 20 ms and the round trips are measured; then for 10 s more the
same while a second client subscribes and unsubscribes 1,000 instruments every 0.4 s,
right at the request-work limit (5,000 instruments a second). One JSON line per phase.
A starved event loop shows as long round trips. To compare with another checkout, run
it with PYTHONPATH=THAT_CHECKOUT (the server is `python -m oaws` of this interpreter).

    python benchmarks/storm.py
"""
import asyncio, json, os, subprocess, sys, tempfile, time, socket
import websockets

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

async def quiet(url, gaps, stop):
    """ping round trips every 20 ms: the server's loop starved shows as a long one"""
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"action": "subscribe", "mode": 1, "symbols": [{"symbol": "RELIANCE", "exchange": "NSE"}]}))
        while not stop.is_set():
            t = time.monotonic()
            await ws.send(json.dumps({"action": "ping", "timestamp": t}))
            while True:
                m = json.loads(await ws.recv())
                if m.get("type") == "pong":
                    break
            gaps.append(time.monotonic() - t)
            await asyncio.sleep(0.02)

async def storm(url, seconds):
    syms = [{"symbol": f"SYM{i}", "exchange": "NSE"} for i in range(1000)]
    n = 0
    async with websockets.connect(url, max_size=None) as ws:
        async def drain():
            async for _ in ws: pass
        d = asyncio.create_task(drain())
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await ws.send(json.dumps({"action": "subscribe", "mode": 2, "symbols": syms}))
            await ws.send(json.dumps({"action": "unsubscribe", "mode": 2, "symbols": syms}))
            n += 2
            await asyncio.sleep(0.4)  # 2,000 instruments / 0.4 s = 5,000/s, the work rate
        d.cancel()
    return n

def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")

async def main():
    port = free_port()
    state = tempfile.mkdtemp()
    env = {**os.environ, "OAWS_STATE_DIR": state, "OAWS_CONFIG_DIR": state, "OAWS_SIM_HOURS": "always"}
    p = subprocess.Popen([sys.executable, "-m", "oaws", "serve", "--port", str(port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"ws://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                async with websockets.connect(url): break
            except OSError:
                await asyncio.sleep(0.1)
        for phase, storming in (("quiet", False), ("storm", True)):
            gaps, stop = [], asyncio.Event()
            q = asyncio.create_task(quiet(url, gaps, stop))
            n = await storm(url, 10) if storming else await asyncio.sleep(10)
            stop.set(); await q
            print(json.dumps({"phase": phase, "requests": n, "pings": len(gaps),
                              "rtt_p50_ms": round(pct(gaps, .5) * 1e3, 1), "rtt_p99_ms": round(pct(gaps, .99) * 1e3, 1),
                              "rtt_max_ms": round(max(gaps) * 1e3, 1) if gaps else None}))
    finally:
        p.terminate(); p.wait(5)

asyncio.run(main())
