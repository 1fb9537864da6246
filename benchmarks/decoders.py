"""The brokers' wire decoders: oaws's beside the brokers' own parsers, on the same bytes, in one run.

What a broker feed costs oaws per tick before the bus: decoding the broker's frame and
building the tick. For Kite and Dhan the same messages go through the broker's official
parser (kiteconnect's ``KiteTicker._parse_binary``, dhanhq's ``MarketFeed.process_data``),
so each figure stands beside the one a user of that library pays. Noren's frames are JSON;
its client has no parser, so its line is oaws's own cost: parse, merge onto the scrip's
state, build the whole tick. Angel's binary frames (SmartWebSocketV2, one packet a frame)
and an OpenAlgo upstream's JSON ``market_data`` messages are oaws's own cost too.

For every broker a last line, "publish path", is the whole of what its feed does for a
tick before ZeroMQ: decode, the normalised tick, ``orjson.dumps``, the topic and the
``fseq`` stamp of the bus frame (``oaws.server.bus.FeedHub.publish`` without the socket).

    python benchmarks/decoders.py [--seconds 2] [--json]

Each line: what was decoded, µs per packet (the median of five timed repetitions), packets
per second of one core. Time is this process's CPU time (``time.process_time``), so the
figures are per core even on a busy machine; ``--profile NAME`` runs cProfile over the
publish path of one broker (angel, kite, dhan, noren, openalgo) and prints its top
functions instead. Needs the test extra (kiteconnect, dhanhq).
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import time
from collections.abc import Callable


def _timed(work: Callable[[], int], seconds: float) -> float:
    """Seconds per packet of ``work`` (which returns the packets it decoded), the median of five runs."""
    per = []
    for _ in range(5):
        done, start = 0, time.process_time()
        while (elapsed := time.process_time() - start) < seconds / 5:
            done += work()
        per.append(elapsed / done)
    return statistics.median(per)


def kite_message(packets: int) -> bytes:
    """A ticker message of ``packets`` full packets (184 bytes, five bids and five offers), NSE equities."""
    body = []
    for i in range(packets):
        token = (2885 + i) << 8 | 1
        fields = struct.pack(
            ">IIIIIIIIIIIIIIIII",
            token,
            295000 + i,
            10,
            294950,
            1_000_000 + i,
            50_000,
            60_000,
            294000,
            296000,
            293000,
            294500,
            1_796_000_000,
            0,
            0,
            0,
            1_796_000_001,
            0,
        )[:64]
        depth = b"".join(struct.pack(">IIHxx", 100 + n, 294900 + n * 5, 3) for n in range(10))
        packet = fields + depth
        body.append(struct.pack(">H", len(packet)) + packet)
    return struct.pack(">H", packets) + b"".join(body)


def dhan_full(security_id: int) -> bytes:
    """One Dhan full response (162 bytes) of an NSE equity."""
    head = struct.pack(
        "<BHBIfHIfIIIIIIffff",
        8,
        162,
        1,
        security_id,
        2950.05,
        10,
        1_796_000_000,
        2949.5,
        1_000_000,
        60_000,
        50_000,
        0,
        0,
        0,
        2940.0,
        0.0,
        2960.0,
        2930.0,
    )
    levels = b"".join(struct.pack("<IIHHff", 100, 120, 3, 4, 2950.0 - n * 0.05, 2950.1 + n * 0.05) for n in range(5))
    return head + levels


def noren_frames(scrips: int) -> list[str]:
    """Noren depth updates (``df``) as a live feed sends them: a few changed fields each, as strings."""
    frames = []
    for i in range(scrips):
        frames.append(
            json.dumps(
                {
                    "t": "df",
                    "e": "NSE",
                    "tk": str(2885 + i),
                    "lp": "2950.05",
                    "v": "100234",
                    "bp1": "2950.00",
                    "bq1": "120",
                    "ft": "1796000000",
                }
            )
        )
        frames.append(json.dumps({"t": "df", "e": "NSE", "tk": str(2885 + i), "sq2": "300", "sp2": "2950.20"}))
    return frames


class Bus:
    """What ``FeedHub.publish`` does to a tick before the socket: the topic, the ``fseq`` count, the stamp."""

    def __init__(self) -> None:
        from oaws.protocol.bus import stamp_fseq

        self.stamp = stamp_fseq
        self.fseq: dict[bytes, int] = {}
        self.frames = 0

    def publish(self, instrument, mode: int, payload: bytes, depth: int = 5) -> None:
        topic = instrument.topic(mode, depth).encode()
        n = self.fseq.get(topic, 0) + 1
        self.fseq[topic] = n
        frame = [topic, self.stamp(payload, n)]
        self.frames += len(frame)


def angel_frames(packets: int, mode: int) -> list[bytes]:
    """Angel SmartWebSocketV2 binary frames (one packet each) of NSE equities at wire ``mode``."""
    from oaws.brokers.angel import wire

    five = tuple(
        wire.BestFiveEntry(flag=1 if n < 5 else 0, quantity=100 + n, price=294900 + n * 5, orders=3) for n in range(10)
    )
    frames = []
    for i in range(packets):
        p = wire.Packet(
            mode=mode,
            exchange_type=wire.NSE_CM,
            token=str(2885 + i),
            sequence=1000 + i,
            exchange_timestamp=1_796_000_000_000,
            ltp=295000 + i,
            last_traded_quantity=10,
            avg_traded_price=294950,
            volume=1_000_000 + i,
            total_buy_quantity=50_000.0,
            total_sell_quantity=60_000.0,
            open=294000,
            high=296000,
            low=293000,
            close=294500,
            last_traded_timestamp=1_796_000_000,
            open_interest=0,
            oi_change_percent=0.0,
            best_five=five if mode == wire.SNAP_QUOTE else (),
            upper_circuit=320000,
            lower_circuit=260000,
            week52_high=310000,
            week52_low=220000,
        )
        frames.append(wire.encode(p))
    return frames


def openalgo_frames(scrips: int) -> list[bytes]:
    """An OpenAlgo upstream's ``market_data`` messages at Quote (mode 2), one a frame, as its proxy sends them."""
    import orjson

    return [
        orjson.dumps(
            {
                "type": "market_data",
                "symbol": f"SYM{i}",
                "exchange": "NSE",
                "mode": 2,
                "broker": "angel",
                "data": {
                    "symbol": f"SYM{i}",
                    "exchange": "NSE",
                    "ltp": 2950.05 + i,
                    "open": 2940.0,
                    "high": 2960.0,
                    "low": 2930.0,
                    "close": 2945.0,
                    "volume": 1_000_000 + i,
                    "last_trade_quantity": 10,
                    "average_price": 2949.5,
                    "total_buy_quantity": 50_000,
                    "total_sell_quantity": 60_000,
                    "timestamp": 1_796_000_000_000,
                },
            }
        )
        for i in range(scrips)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time each figure is measured over")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    parser.add_argument(
        "--profile",
        choices=("angel", "kite", "dhan", "noren", "openalgo"),
        help="cProfile one broker's publish path for --seconds and print its top functions",
    )
    args = parser.parse_args()

    import orjson
    from dhanhq import DhanContext
    from dhanhq.marketfeed import MarketFeed
    from kiteconnect import KiteTicker

    from oaws.brokers.angel import ticks as angel_ticks
    from oaws.brokers.angel import wire as angel_wire
    from oaws.brokers.dhan import ticks as dhan_ticks
    from oaws.brokers.dhan import wire as dhan_wire
    from oaws.brokers.kite import ticks as kite_ticks
    from oaws.brokers.kite import wire as kite_wire
    from oaws.brokers.noren import wire as noren_wire
    from oaws.brokers.openalgo import wire as openalgo_wire
    from oaws.instruments import Instrument
    from oaws.protocol.bus import strip_fseq
    from oaws.ticks import at_mode

    rows: list[tuple[str, float]] = []
    paths: dict[str, Callable[[], int]] = {}  # each broker's publish path, for --profile
    bus = Bus()
    reliance = Instrument("RELIANCE", "NSE")

    message, packets = kite_message(50), 50
    ticker = KiteTicker("k", "t")
    rows.append(
        (
            "kite: kiteconnect _parse_binary (dicts, no oaws tick)",
            _timed(lambda: len(ticker._parse_binary(message)), args.seconds),
        )
    )
    rows.append(("kite: oaws wire.decode", _timed(lambda: len(kite_wire.decode(message)[0]), args.seconds)))

    def kite_ticks_of() -> int:
        decoded, _ = kite_wire.decode(message)
        for p in decoded:
            kite_ticks.tick(p, "RELIANCE", "NSE", 0)
        return len(decoded)

    rows.append(("kite: oaws wire.decode + ticks.tick (the whole tick)", _timed(kite_ticks_of, args.seconds)))

    def kite_path() -> int:
        decoded, _ = kite_wire.decode(message)
        for p in decoded:
            bus.publish(reliance, 3, orjson.dumps(kite_ticks.tick(p, "RELIANCE", "NSE", 0)))
        return len(decoded)

    paths["kite"] = kite_path

    responses = [dhan_full(2885 + i) for i in range(packets)]
    joined = b"".join(responses)
    feed = MarketFeed(DhanContext("1100000001", "not-a-token"), [], version="v2")

    def dhanhq_each() -> int:
        for r in responses:
            feed.process_data(r)
        return len(responses)

    rows.append(("dhan: dhanhq process_data (one response a call)", _timed(dhanhq_each, args.seconds)))
    rows.append(
        (
            "dhan: oaws wire.decode (50 responses a message)",
            _timed(lambda: len(dhan_wire.decode(joined).responses), args.seconds),
        )
    )

    book = dhan_ticks.Book()

    def dhan_ticks_of() -> int:
        decoded = dhan_wire.decode(joined).responses
        for r in decoded:
            dhan_ticks.tick(r, book, "RELIANCE", "NSE", 0)
        return len(decoded)

    rows.append(("dhan: oaws wire.decode + ticks.tick (the whole tick)", _timed(dhan_ticks_of, args.seconds)))

    def dhan_path() -> int:
        decoded = dhan_wire.decode(joined).responses
        for r in decoded:
            bus.publish(reliance, 3, orjson.dumps(dhan_ticks.tick(r, book, "RELIANCE", "NSE", 0)))
        return len(decoded)

    paths["dhan"] = dhan_path

    frames = noren_frames(25)
    noren_book = noren_wire.Book()
    for i in range(25):  # the snapshots the updates merge onto
        noren_book.apply(
            noren_wire.parse(
                json.dumps(
                    {
                        "t": "dk",
                        "e": "NSE",
                        "tk": str(2885 + i),
                        "lp": "2950",
                        "c": "2949",
                        "v": "100000",
                        "ft": "1796000000",
                    }
                )
            )
        )

    def noren_ticks_of() -> int:
        for f in frames:
            state = noren_book.apply(noren_wire.parse(f))
            noren_wire.tick(state, "RELIANCE", "NSE", 0, depth=True)
        return len(frames)

    rows.append(("noren: oaws parse + merge + wire.tick (JSON update)", _timed(noren_ticks_of, args.seconds)))

    def noren_path() -> int:
        for f in frames:
            state = noren_book.apply(noren_wire.parse(f))
            bus.publish(reliance, 3, orjson.dumps(noren_wire.tick(state, "RELIANCE", "NSE", 0, depth=True)))
        return len(frames)

    paths["noren"] = noren_path

    angel_modes = (("LTP", angel_wire.LTP), ("QUOTE", angel_wire.QUOTE), ("SNAP_QUOTE", angel_wire.SNAP_QUOTE))
    for name, wire_mode in angel_modes:
        angel = angel_frames(50, wire_mode)
        rows.append(
            (
                f"angel: oaws wire.decode ({name}, {len(angel[0])} bytes)",
                _timed(lambda angel=angel: len([angel_wire.decode(f) for f in angel]), args.seconds),
            )
        )

    def angel_ticks_of() -> int:
        for f in angel:  # the SNAP_QUOTE frames: the client's Depth mode, the costliest
            angel_ticks.tick(angel_wire.decode(f), "RELIANCE", "NSE", 100.0, 0)
        return len(angel)

    rows.append(("angel: oaws wire.decode + ticks.tick (SNAP_QUOTE)", _timed(angel_ticks_of, args.seconds)))

    def angel_path() -> int:
        for f in angel:
            payload = orjson.dumps(angel_ticks.tick(angel_wire.decode(f), "RELIANCE", "NSE", 100.0, 0))
            bus.publish(reliance, 3, payload)
        return len(angel)

    paths["angel"] = angel_path

    upstream = openalgo_frames(50)

    def openalgo_parse() -> int:
        return sum(len(openalgo_wire.messages(f)) for f in upstream)

    rows.append(("openalgo: oaws wire.messages (market_data, Quote)", _timed(openalgo_parse, args.seconds)))

    def openalgo_path() -> int:
        # OpenAlgoFeed.on_market_data without the subscription check
        for f in upstream:
            for m in openalgo_wire.messages(f):
                instrument, mode, data = openalgo_wire.instrument_of(m), openalgo_wire.mode_of(m.get("mode")), m["data"]
                strip_fseq(data)
                data.setdefault("symbol", instrument.symbol)
                data.setdefault("exchange", instrument.exchange)
                bus.publish(instrument, mode, orjson.dumps(at_mode(data, mode)))
        return len(upstream)

    paths["openalgo"] = openalgo_path

    if args.profile:
        import cProfile
        import pstats

        work = paths[args.profile]
        profiler = cProfile.Profile(time.process_time)
        start = time.process_time()
        profiler.enable()
        while time.process_time() - start < args.seconds:
            work()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        return

    for name, path in paths.items():
        rows.append((f"{name}: publish path (decode, tick, orjson, bus frame)", _timed(path, args.seconds)))

    for name, seconds in rows:
        if args.json:
            print(
                json.dumps(
                    {"what": name, "us_per_packet": round(seconds * 1e6, 2), "packets_per_s": round(1 / seconds)}
                )
            )
        else:
            print(f"{name:<58} {seconds * 1e6:8.2f} µs a packet  {1 / seconds:>12,.0f} a second")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
