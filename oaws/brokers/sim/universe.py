"""What the simulated market lists: its stocks, indices, commodities and currencies, the
index names people type for the same index, and the futures and options of all of them.

The simulator serves these and refuses anything else with SYMBOL_NOT_FOUND, as a broker
would (``oaws serve --any-symbol`` lets it trade any symbol, priced from its name). The
prices are previous closes near late-2025 levels: a simulator's, not a data vendor's.

- Stocks: the NIFTY 50 and about eighty more of the most traded NSE
  stocks, on NSE and on BSE at the same level.
- Indices: OpenAlgo's names (``NIFTY``, ``BANKNIFTY``, ``INDIAVIX``, ``SENSEX``...) and the
  names brokers and exchanges print (``NIFTY 50``, ``Nifty Bank``, ``INDIA VIX``), which
  are the same index at the same price: an alias mirrors its index's ticks.
- MCX's and the world's indices, crypto pairs, NCDEX's agricultural commodities.
- Derivatives: any OpenAlgo future or option symbol (``NIFTY30DEC25FUT``,
  ``RELIANCE30DEC251500CE``) on its exchange (NFO for NSE's stocks and indices, BFO for
  BSE's, MCX and NCO for commodities, NCDEX for its crops, CDS and BCD for currencies)
  whose underlying is listed here.
  The options of NFO and BFO keep the exchanges' calendar (``options``: weekly and monthly
  index expiries, monthly ones for a few stocks, strikes around the underlying) and are
  priced from the live underlying on a volatility smile; a future of any date is listed
  (a 7 % carry), and so is an option of MCX or the currency segments (Black-Scholes at a
  fixed volatility).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta

from oaws.brokers.sim import options
from oaws.config import IST
from oaws.instruments import Instrument
from oaws.names import Contract, contract
from oaws.ticks import INDEX_EXCHANGES

# Previous closes near late-2025 levels (HDFCBANK and BAJFINANCE after their 2025 bonus
# and split; TMPV is Tata Motors' passenger-vehicle arm after the October 2025 demerger).
NIFTY50: dict[str, float] = {
    "ADANIENT": 2300.0, "ADANIPORTS": 1480.0, "APOLLOHOSP": 7200.0, "ASIANPAINT": 2880.0,
    "AXISBANK": 1270.0, "BAJAJ-AUTO": 9000.0, "BAJAJFINSV": 2050.0, "BAJFINANCE": 1030.0,
    "BEL": 410.0, "BHARTIARTL": 2100.0, "CIPLA": 1520.0, "COALINDIA": 380.0,
    "DRREDDY": 1250.0, "EICHERMOT": 7000.0, "ETERNAL": 300.0, "GRASIM": 2750.0,
    "HCLTECH": 1600.0, "HDFCBANK": 1000.0, "HDFCLIFE": 770.0, "HINDALCO": 820.0,
    "HINDUNILVR": 2450.0, "ICICIBANK": 1360.0, "INDIGO": 5800.0, "INFY": 1520.0,
    "ITC": 405.0, "JIOFIN": 300.0, "JSWSTEEL": 1150.0, "KOTAKBANK": 2100.0,
    "LT": 4000.0, "M&M": 3700.0, "MARUTI": 16000.0, "MAXHEALTH": 1100.0,
    "NESTLEIND": 1250.0, "NTPC": 330.0, "ONGC": 245.0, "POWERGRID": 270.0,
    "RELIANCE": 1480.0, "SBILIFE": 2000.0, "SBIN": 900.0, "SHRIRAMFIN": 780.0,
    "SUNPHARMA": 1780.0, "TATACONSUM": 1170.0, "TATASTEEL": 170.0, "TCS": 3100.0,
    "TECHM": 1500.0, "TITAN": 3800.0, "TMPV": 410.0, "TRENT": 4300.0,
    "ULTRACEMCO": 11800.0, "WIPRO": 250.0,
}  # fmt: skip

# Previous closes of the most traded stocks beyond the NIFTY 50.
MORE_STOCKS: dict[str, float] = {
    "ABB": 5200.0, "ADANIGREEN": 1000.0, "ADANIPOWER": 145.0, "AMBUJACEM": 560.0, "ANGELONE": 2500.0,
    "ASHOKLEY": 150.0, "AUBANK": 850.0, "AUROPHARMA": 1200.0, "BAJAJHLDNG": 12000.0, "BANDHANBNK": 160.0,
    "BANKBARODA": 280.0, "BERGEPAINT": 520.0, "BHEL": 280.0, "BIOCON": 380.0, "BOSCHLTD": 38000.0,
    "BPCL": 360.0, "BRITANNIA": 5900.0, "BSE": 2600.0, "CANBK": 140.0, "CGPOWER": 700.0,
    "CHOLAFIN": 1650.0, "COLPAL": 2200.0, "DABUR": 500.0, "DIVISLAB": 6500.0, "DIXON": 15000.0,
    "DLF": 750.0, "DMART": 4200.0, "FEDERALBNK": 230.0, "GAIL": 180.0, "GODREJCP": 1150.0,
    "HAL": 4700.0, "HAVELLS": 1500.0, "HDFCAMC": 5500.0, "HEROMOTOCO": 5600.0, "HINDZINC": 480.0,
    "ICICIGI": 1950.0, "ICICIPRULI": 600.0, "IDEA": 9.0, "IDFCFIRSTB": 80.0, "INDHOTEL": 750.0,
    "INDUSINDBK": 850.0, "IOC": 165.0, "IRCTC": 720.0, "IRFC": 125.0, "JINDALSTEL": 1000.0,
    "LICI": 900.0, "LODHA": 1200.0, "LTIM": 5800.0, "LUPIN": 2000.0, "MARICO": 720.0,
    "MAZDOCK": 2800.0, "MCX": 9000.0, "MOTHERSON": 105.0, "MRF": 150000.0, "NAUKRI": 1400.0,
    "NMDC": 75.0, "NYKAA": 250.0, "PAGEIND": 41000.0, "PAYTM": 1250.0, "PERSISTENT": 6000.0,
    "PFC": 380.0, "PIDILITIND": 1500.0, "PNB": 115.0, "POLYCAB": 7300.0, "RECLTD": 370.0,
    "SAIL": 130.0, "SHREECEM": 27000.0, "SIEMENS": 3100.0, "SOLARINDS": 13500.0, "SUZLON": 55.0,
    "TATACOMM": 1800.0, "TATAELXSI": 5400.0, "TATAPOWER": 390.0, "TORNTPHARM": 3600.0, "TVSMOTOR": 3500.0,
    "UNITDSPR": 1400.0, "VBL": 470.0, "VEDL": 500.0, "YESBANK": 22.0, "ZYDUSLIFE": 950.0,
}  # fmt: skip

#: the indices, by OpenAlgo's names
INDICES: dict[tuple[str, str], float] = {
    ("NIFTY", "NSE_INDEX"): 25900.0,
    ("BANKNIFTY", "NSE_INDEX"): 58000.0,
    ("FINNIFTY", "NSE_INDEX"): 27400.0,
    ("MIDCPNIFTY", "NSE_INDEX"): 13500.0,
    ("NIFTYNXT50", "NSE_INDEX"): 69000.0,
    ("NIFTYIT", "NSE_INDEX"): 37000.0,
    ("INDIAVIX", "NSE_INDEX"): 12.5,
    ("SENSEX", "BSE_INDEX"): 84500.0,
    ("BANKEX", "BSE_INDEX"): 65000.0,
    ("SENSEX50", "BSE_INDEX"): 27000.0,
    ("MCXCOMDEX", "MCX_INDEX"): 21000.0,
    ("MCXMETAL", "MCX_INDEX"): 24000.0,
    ("MCXENERGY", "MCX_INDEX"): 6500.0,
    ("US30", "GLOBAL_INDEX"): 44000.0,
    ("US100", "GLOBAL_INDEX"): 20500.0,
    ("US500", "GLOBAL_INDEX"): 6000.0,
    ("JP225", "GLOBAL_INDEX"): 39000.0,
    ("HK50", "GLOBAL_INDEX"): 20000.0,
    ("UK100", "GLOBAL_INDEX"): 8300.0,
    ("DE40", "GLOBAL_INDEX"): 20000.0,
}

#: crypto pairs (OpenAlgo's CRYPTO exchange), in the pair's quote currency
CRYPTO: dict[str, float] = {"BTCUSDT": 90000.0, "ETHUSDT": 3000.0, "SOLUSDT": 140.0, "XRPUSDT": 2.2, "BNBUSDT": 600.0}

#: NCDEX's agricultural commodities (rupees a quintal), spot and futures
AGRI: dict[str, float] = {
    "GUARSEED10": 5400.0, "GUARGUM5": 10500.0, "DHANIYA": 7500.0, "JEERAUNJHA": 21000.0,
    "CASTOR": 6300.0, "COCUDAKL": 2900.0, "TMCFGRNZM": 13000.0, "KAPAS": 1500.0,
}  # fmt: skip

#: the names people type for those indices (compared without case or spaces)
INDEX_ALIASES: dict[str, tuple[str, str]] = {
    "NIFTY 50": ("NIFTY", "NSE_INDEX"),
    "NIFTY BANK": ("BANKNIFTY", "NSE_INDEX"),
    "NIFTY FIN SERVICE": ("FINNIFTY", "NSE_INDEX"),
    "NIFTY FINANCIAL SERVICES": ("FINNIFTY", "NSE_INDEX"),
    "NIFTY MID SELECT": ("MIDCPNIFTY", "NSE_INDEX"),
    "NIFTY MIDCAP SELECT": ("MIDCPNIFTY", "NSE_INDEX"),
    "NIFTY NEXT 50": ("NIFTYNXT50", "NSE_INDEX"),
    "NIFTY IT": ("NIFTYIT", "NSE_INDEX"),
    "INDIA VIX": ("INDIAVIX", "NSE_INDEX"),
    "BSE SENSEX": ("SENSEX", "BSE_INDEX"),
    "SENSEX 50": ("SENSEX50", "BSE_INDEX"),
    "BSE BANKEX": ("BANKEX", "BSE_INDEX"),
}

#: MCX futures' underlyings (a contract's price per its unit: 10 g of gold, 1 kg of silver...)
COMMODITIES: dict[str, float] = {
    "CRUDEOIL": 5400.0, "CRUDEOILM": 5400.0, "NATURALGAS": 380.0, "NATGASMINI": 380.0,
    "GOLD": 128000.0, "GOLDM": 128000.0, "GOLDPETAL": 12800.0, "SILVER": 160000.0, "SILVERM": 160000.0,
    "COPPER": 1000.0, "ZINC": 300.0, "ALUMINIUM": 270.0, "LEAD": 180.0,
}  # fmt: skip

#: currency pairs of CDS and BCD (rupees per unit; JPY per 100 yen as the exchanges quote it)
CURRENCIES: dict[str, float] = {"USDINR": 88.5, "EURINR": 103.0, "GBPINR": 117.0, "JPYINR": 59.0}

#: the derivative exchange of each underlying's exchange
DERIVATIVES_OF: dict[str, tuple[str, ...]] = {
    "NFO": ("NSE", "NSE_INDEX"),
    "BFO": ("BSE", "BSE_INDEX"),
}

#: the sim's option prices: a volatility (a year) for indices and for stocks, and the rate
INDEX_VOLATILITY = 0.14
STOCK_VOLATILITY = 0.28
RATE = 0.07
#: the lowest price a contract trades at (one tick of 0.05)
FLOOR = 0.05


def _key(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().upper())


_ALIASES = {(_key(name), target[1]): target for name, target in INDEX_ALIASES.items()}


_STOCKS = {**NIFTY50, **MORE_STOCKS}


def stocks() -> dict[str, float]:
    return _STOCKS


def canonical(instrument: Instrument) -> Instrument:
    """The index an alias names (``NIFTY 50:NSE_INDEX`` is ``NIFTY:NSE_INDEX``); anything
    else is itself."""
    target = _ALIASES.get((_key(instrument.symbol), instrument.exchange))
    if target is None or target == (instrument.symbol, instrument.exchange):
        return instrument
    return Instrument(*target)


def _underlying(base: str, exchange: str) -> float | None:
    """The previous close of a derivative's underlying ``base`` on derivative ``exchange``."""
    if exchange in DERIVATIVES_OF:
        _, index = DERIVATIVES_OF[exchange]
        price = INDICES.get((base, index))
        return price if price is not None else stocks().get(base)
    if exchange in ("MCX", "NCO"):
        return COMMODITIES.get(base)
    if exchange == "NCDEX":
        return AGRI.get(base)
    if exchange in ("CDS", "BCD"):
        return CURRENCIES.get(base)
    return None


def reference(instrument: Instrument, on: date | None = None) -> float | None:
    """The previous close of a listed instrument (None: the market does not list it)."""
    instrument = canonical(instrument)
    exchange = instrument.exchange
    if exchange in ("NSE", "BSE"):
        return stocks().get(instrument.symbol)
    if exchange in INDEX_EXCHANGES:
        return INDICES.get((instrument.symbol, exchange))
    if exchange == "CRYPTO":
        return CRYPTO.get(instrument.symbol)
    if exchange == "NCDEX" and instrument.symbol in AGRI:
        return AGRI[instrument.symbol]
    parts = contract(instrument.symbol)
    if parts is None:
        return None
    spot = _underlying(parts.base, exchange)
    if spot is None:
        return None
    if parts.kind != "FUT" and exchange in DERIVATIVES_OF:
        return _listed_option(instrument, parts, spot, on)
    on = on or datetime.now(IST).date()
    years = max((parts.expiry - on).days, 0) / 365
    if parts.kind == "FUT":
        return spot * (1 + RATE * years)
    if float(parts.strike) <= 0:
        return None
    volatility = INDEX_VOLATILITY if (parts.base, f"{exchange[0]}SE_INDEX") in INDICES else STOCK_VOLATILITY
    return max(FLOOR, black_scholes(parts.kind, spot, float(parts.strike), max(years, 1 / 365), volatility))


def _listed_option(
    instrument: Instrument, parts: Contract, spot: float, on: date | None, *, calendar: bool = True
) -> float | None:
    """An index's or stock's option on NFO or BFO: listed only as the calendar lists it
    (``options``); its previous close is its price at the underlying's previous close.
    Without ``calendar``, the price of any such option of an underlying with options."""
    on = on or datetime.now(IST).date()
    if calendar and not options.is_listed(instrument.symbol, instrument.exchange, on):
        return None
    if not options.has_options(parts.base) or float(parts.strike) <= 0:
        return None
    # the previous session's close: a day more to expiry
    closed = datetime.combine(on - timedelta(days=1), time(15, 30), IST).timestamp()
    worth = options.price(parts.base, parts.kind, spot, float(parts.strike), parts.expiry, closed, RATE)
    return max(FLOOR, worth)


def unlisted_option(instrument: Instrument, on: date | None = None) -> float | None:
    """The previous close of an NFO or BFO option the calendar does not list, on an underlying
    with options (served with ``--any-symbol``: priced like the listed ones); None otherwise."""
    parts = contract(instrument.symbol)
    if parts is None or parts.kind == "FUT" or instrument.exchange not in DERIVATIVES_OF:
        return None
    spot = _underlying(parts.base, instrument.exchange)
    if spot is None:
        return None
    on = on or datetime.now(IST).date()
    if parts.expiry < on:  # expired: priced as a day from expiry, as ever
        volatility = (
            INDEX_VOLATILITY if (parts.base, f"{instrument.exchange[0]}SE_INDEX") in INDICES else STOCK_VOLATILITY
        )
        return max(FLOOR, black_scholes(parts.kind, spot, float(parts.strike), 1 / 365, volatility))
    return _listed_option(instrument, parts, spot, on, calendar=False)


def listed(instrument: Instrument) -> bool:
    return reference(instrument) is not None


def black_scholes(kind: str, spot: float, strike: float, years: float, volatility: float, rate: float = RATE) -> float:
    """The Black-Scholes price of a European call (CE) or put (PE), for the simulator's opening prices."""
    root = volatility * math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate + volatility * volatility / 2) * years) / root
    d2 = d1 - root
    discount = strike * math.exp(-rate * years)
    if kind == "CE":
        return spot * _normal(d1) - discount * _normal(d2)
    return discount * _normal(-d2) - spot * _normal(-d1)


def _normal(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def symbols() -> list[str]:
    """Every listed instrument but the derivatives, as ``SYMBOL:EXCHANGE`` (for completion)."""
    return [f"{s}:{e}" for s, e in INDICES] + [f"{s}:NSE" for s in sorted(stocks())]


options.previous_close = reference  # options centre their strikes on it (see there why not an import)
