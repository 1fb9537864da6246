"""Instruments, exchanges and bus topics: every exchange OpenAlgo serves, topics read back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oaws.instruments import (
    DEPTH,
    EXCHANGES,
    KNOWN_DEPTHS,
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


@pytest.mark.parametrize(
    ("symbol", "exchange", "twin"),
    [
        ("INDEX_NIFTY", "NSE", "NIFTY:NSE_INDEX"),
        ("INDEX_SENSEX", "BSE", "SENSEX:BSE_INDEX"),
        ("INDEX_MCXCOMDEX", "MCX", "MCXCOMDEX:MCX_INDEX"),
        ("index_nifty 50", "nse", "NIFTY 50:NSE_INDEX"),
    ],
)
def test_an_instrument_whose_topic_reads_back_as_another_is_refused(symbol, exchange, twin):
    """Issue 14 item 4: the topic EXCHANGE_SYMBOL_MODE is OpenAlgo's and stays; a symbol
    that would make it another instrument's topic is no instrument oaws can serve."""
    with pytest.raises(InstrumentError, match=f"is that of {twin}"):
        make(symbol, exchange)
    with pytest.raises(InstrumentError, match="bus topic"):
        parse(f"{symbol}:{exchange}")
    with pytest.raises(InstrumentError, match="no instrument's"):
        make("INDEX_", "NSE")  # NSE_INDEX_ with an empty symbol


#: real symbols of every kind, on every exchange (OpenAlgo's symbol format)
REAL = [
    ("RELIANCE", "NSE"), ("M&M", "NSE"), ("BAJAJ-AUTO", "NSE"), ("INDEXTECK", "NSE"), ("INDEX", "BSE"),
    ("NIFTY", "NSE_INDEX"), ("NIFTY 50", "NSE_INDEX"), ("INDIAVIX", "NSE_INDEX"), ("NIFTYNXT50", "NSE_INDEX"),
    ("SENSEX", "BSE_INDEX"), ("BANKEX", "BSE_INDEX"), ("MCXCOMDEX", "MCX_INDEX"), ("MCXBULLDEX", "MCX_INDEX"),
    ("US30", "GLOBAL_INDEX"), ("NIKKEI225", "GLOBAL_INDEX"), ("CRUDEOIL19DEC25FUT", "MCX"),
    ("GOLDM05JAN26FUT", "MCX"), ("NATURALGAS25DEC25300CE", "MCX"), ("NIFTY30DEC2525900CE", "NFO"),
    ("SENSEX25DEC2585000PE", "BFO"), ("USDINR26DEC25FUT", "CDS"), ("EURINR26DEC2590CE", "BCD"),
    ("GUARSEED10", "NCDEX"), ("CASTOR20DEC25FUT", "NCDEX"), ("SOL_INR", "CRYPTO"), ("BTC_USDT", "CRYPTO"),
    ("ELECDMBL", "NCO"),
]  # fmt: skip


@pytest.mark.parametrize(("symbol", "exchange"), REAL)
def test_no_real_instrument_is_refused_for_its_topic(symbol, exchange):
    instrument = make(symbol, exchange)
    for mode in MODES:
        for depth in KNOWN_DEPTHS:
            assert parse_stream(instrument.topic(mode, depth)) == Stream(
                instrument, mode, depth if mode == DEPTH else 5
            )


@given(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9&\-_. ]{0,63}", fullmatch=True),
    st.sampled_from(EXCHANGES),
    st.sampled_from(MODES),
    st.sampled_from(KNOWN_DEPTHS),
)
def test_every_instrument_made_has_a_topic_that_reads_back_as_itself(symbol, exchange, mode, depth):
    """What ``make`` accepts, the bus can route: its topic at every mode and depth reads back
    as that very stream, so no two instruments ever share a route."""
    try:
        instrument = make(symbol, exchange)
    except InstrumentError:
        assert symbol.upper().startswith("INDEX_") and exchange in ("NSE", "BSE", "MCX")
        return
    depth = depth if mode == DEPTH else 5
    assert parse_stream(instrument.topic(mode, depth)) == Stream(instrument, mode, depth)
