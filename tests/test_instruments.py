"""Instruments, exchanges and bus topics: every exchange OpenAlgo serves, topics read back."""

from __future__ import annotations

import pytest

from oaws.instruments import (
    DEPTH,
    EXCHANGES,
    LTP,
    MODES,
    QUOTE,
    Instrument,
    InstrumentError,
    Stream,
    make,
    parse,
    parse_stream,
    parse_topic,
)

#: VALID_EXCHANGES of OpenAlgo's utils/constants.py, written out: the authority, not oaws
OPENALGO_EXCHANGES = (
    "NSE", "NFO", "CDS", "BSE", "BFO", "BCD", "MCX", "NCDEX", "NCO",
    "NSE_INDEX", "BSE_INDEX", "MCX_INDEX", "GLOBAL_INDEX", "CRYPTO",
)  # fmt: skip


def test_every_exchange_openalgo_serves_is_known():
    assert set(OPENALGO_EXCHANGES) <= set(EXCHANGES)


@pytest.mark.parametrize("exchange", OPENALGO_EXCHANGES)
def test_an_instrument_of_each_exchange_is_accepted_both_ways_round(exchange):
    assert parse(f"X1:{exchange.lower()}") == Instrument("X1", exchange)
    assert parse(f"{exchange}:X1") == Instrument("X1", exchange)
    assert make("x1", exchange) == Instrument("X1", exchange)


def test_an_unknown_exchange_is_refused_with_the_known_ones():
    with pytest.raises(InstrumentError, match="GLOBAL_INDEX"):
        make("X", "NASDAQ")


@pytest.mark.parametrize("exchange", OPENALGO_EXCHANGES)
@pytest.mark.parametrize("symbol", ["NIFTY", "SOL_INR", "NIFTY 50", "M&M", "DEPTH"])
@pytest.mark.parametrize("mode", MODES)
def test_every_topic_reads_back_longest_exchange_first(exchange, symbol, mode):
    instrument = Instrument(symbol, exchange)
    assert parse_topic(instrument.topic(mode)) == (instrument, mode)
    assert parse_stream(instrument.topic(mode)) == Stream(instrument, mode, 5)


def test_openalgos_own_topics_read_as_its_server_reads_them():
    # websocket_proxy/server.py: the mode last, two-part exchange prefixes first
    assert parse_topic("MCX_INDEX_MCXCOMDEX_LTP") == (Instrument("MCXCOMDEX", "MCX_INDEX"), LTP)
    assert parse_topic("GLOBAL_INDEX_US30_QUOTE") == (Instrument("US30", "GLOBAL_INDEX"), QUOTE)
    assert parse_topic("CRYPTO_SOL_INR_LTP") == (Instrument("SOL_INR", "CRYPTO"), LTP)
    assert parse_topic("NCDEX_GUARSEED10_DEPTH") == (Instrument("GUARSEED10", "NCDEX"), DEPTH)


def test_a_symbol_that_starts_like_an_index_exchange_reads_as_the_index_as_in_openalgo():
    assert parse_topic("NSE_INDEX_X_LTP") == (Instrument("X", "NSE_INDEX"), LTP)


def test_a_depth_of_twenty_has_its_own_topic():
    reliance = Instrument("RELIANCE", "NSE")
    assert reliance.topic(DEPTH) == reliance.topic(DEPTH, 5) == "NSE_RELIANCE_DEPTH"
    assert reliance.topic(DEPTH, 20) == "NSE_RELIANCE_DEPTH_20"
    assert reliance.topic(LTP, 20) == "NSE_RELIANCE_LTP"  # depth means nothing below Depth
    assert parse_stream("NSE_RELIANCE_DEPTH_20") == Stream(reliance, DEPTH, 20)
    assert parse_stream("NSE_INDEX_NIFTY_DEPTH_20") == Stream(Instrument("NIFTY", "NSE_INDEX"), DEPTH, 20)
    # the two-part form is for tools that know depths; for the rest it is no topic of theirs
    assert parse_topic("NSE_RELIANCE_DEPTH_20") is None


@pytest.mark.parametrize(
    "topic",
    ["NSE_RELIANCE_DEPTH_5", "NSE_RELIANCE_DEPTH_020", "NSE_RELIANCE_DEPTH_51", "NSE_RELIANCE_LTP_20", "NSE_X_20"],
)
def test_depth_topics_other_than_as_written_are_refused(topic):
    assert parse_stream(topic) is None and parse_topic(topic) is None
