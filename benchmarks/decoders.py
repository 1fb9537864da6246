"""The brokers' wire decoders: oaws's beside the brokers' own parsers, on the same bytes, in one run.

What a broker feed costs oaws per tick before the bus: decoding the broker's frame and
building the tick. For Kite and Dhan the same messages go through the broker's official
parser (kiteconnect's ``KiteTicker._parse_binary``, dhanhq's ``MarketFeed.process_data``),
so each figure stands beside the one a user of that library pays. Noren's frames are JSON;
its client has no parser, so its line is oaws's own cost: parse, merge onto the scrip's
state, build the whole tick.

    python benchmarks/decoders.py [--seconds 2] [--json]

Each line: what was decoded, µs per packet (the median of five timed repetitions), packets
per second of one core. Needs the test extra (kiteconnect, dhanhq).
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
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 5:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time each figure is measured over")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    args = parser.parse_args()

    from dhanhq import DhanContext
    from dhanhq.marketfeed import MarketFeed
    from kiteconnect import KiteTicker

    from oaws.brokers.dhan import ticks as dhan_ticks
    from oaws.brokers.dhan import wire as dhan_wire
    from oaws.brokers.kite import ticks as kite_ticks
    from oaws.brokers.kite import wire as kite_wire
    from oaws.brokers.noren import wire as noren_wire

    rows: list[tuple[str, float]] = []

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
