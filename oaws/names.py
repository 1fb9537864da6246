"""Names people read: contracts spelt out (``NIFTY 26 DEC 24000 CE``) and companies' names.

OpenAlgo writes a future as ``BASE + DDMMMYY + FUT`` (``BANKNIFTY24DEC24FUT``) and an
option as ``BASE + DDMMMYY + STRIKE + CE/PE`` (``NIFTY26DEC2424000CE``, a fractional
strike as it is: ``USDINR26DEC2484.5CE``), on the derivative exchanges
(``oaws.ticks.DERIVATIVE_EXCHANGES``). ``readable`` spells such a symbol out with spaces:
``NIFTY 26 DEC 24000 CE``, ``BANKNIFTY 24 DEC FUT``. Anything else (an equity, an index,
a symbol of another shape) is returned as it is.

The year: left out while the expiry lies in the twelve months from a month ago (today's
and the coming contracts, and those that just expired: no two of them share a day and a
month), written in full otherwise (``NIFTY 26 DEC 2024 24000 CE`` seen in 2026, from a
recording).

``NAMES`` is the built-in table of company (and index) names of the instruments the
simulated market and the default watchlist know, for the add dialog's search by name;
brokers' instrument masters add theirs (``InstrumentMaster.names``).

No I/O here, and nothing above the foundations.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import NamedTuple

from oaws.config import IST
from oaws.instruments import Instrument
from oaws.ticks import DERIVATIVE_EXCHANGES

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_NUMBER = {m: n for n, m in enumerate(MONTHS, start=1)}
#: the base is as short as it can be, so that a base ending in digits (NIFTYNXT50) still reads
_CONTRACT = re.compile(
    r"^(?P<base>[A-Z0-9&\-_.]+?)(?P<day>\d{2})(?P<month>" + "|".join(MONTHS) + r")(?P<year>\d{2})"
    r"(?:(?P<future>FUT)|(?P<strike>\d+(?:\.\d+)?)(?P<kind>CE|PE))$"
)
#: the expiries shown without their year: from this long ago ...
YEAR_OMITTED_FROM = timedelta(days=31)
#: ... for this long (under a year: a day and a month name one expiry)
YEAR_OMITTED_FOR = timedelta(days=365)


class Contract(NamedTuple):
    """The parts of an OpenAlgo derivative symbol."""

    base: str
    expiry: date
    #: the strike as the symbol writes it ("24000", "84.5"); "" for a future
    strike: str
    #: FUT, CE or PE
    kind: str


def contract(symbol: str) -> Contract | None:
    """The parts of an OpenAlgo future or option symbol; None for any other symbol."""
    found = _CONTRACT.match(symbol.upper())
    if found is None:
        return None
    try:
        expiry = date(2000 + int(found["year"]), _MONTH_NUMBER[found["month"]], int(found["day"]))
    except ValueError:  # 31FEB: not a date, so not a contract
        return None
    if found["future"]:
        return Contract(found["base"], expiry, "", "FUT")
    return Contract(found["base"], expiry, found["strike"], found["kind"])


def today() -> date:
    """Today at the exchange (IST)."""
    return datetime.now(IST).date()


def expiry_text(expiry: date, on: date | None = None) -> str:
    """``26 DEC`` (the year left out near ``on``, today by default), else ``26 DEC 2024``."""
    on = on or today()
    text = f"{expiry.day:02d} {MONTHS[expiry.month - 1]}"
    start = on - YEAR_OMITTED_FROM
    if start <= expiry < start + YEAR_OMITTED_FOR:
        return text
    return f"{text} {expiry.year}"


def readable(instrument: Instrument | str, on: date | None = None) -> str:
    """``NIFTY 26 DEC 24000 CE`` for ``NIFTY26DEC2424000CE:NFO``; other symbols unchanged.

    An ``Instrument`` is spelt out only on a derivative exchange (an NSE symbol that looks
    like a contract stays as it is); a bare symbol (str) whatever it looks like. ``on`` is
    the day the year is judged from (today by default)."""
    if isinstance(instrument, Instrument):
        symbol = instrument.symbol
        if instrument.exchange not in DERIVATIVE_EXCHANGES:
            return symbol
    else:
        symbol = instrument
    parts = contract(symbol)
    if parts is None:
        return symbol
    when = expiry_text(parts.expiry, on)
    if parts.kind == "FUT":
        return f"{parts.base} {when} FUT"
    return f"{parts.base} {when} {parts.strike} {parts.kind}"


# Company names ------------------------------------------------------------------------
#: the companies of the simulated market's stocks (on NSE and BSE): the NIFTY 50 and the others it lists
COMPANIES: dict[str, str] = {
    "ADANIENT": "Adani Enterprises",
    "ADANIPORTS": "Adani Ports and Special Economic Zone",
    "APOLLOHOSP": "Apollo Hospitals Enterprise",
    "ASIANPAINT": "Asian Paints",
    "AXISBANK": "Axis Bank",
    "BAJAJ-AUTO": "Bajaj Auto",
    "BAJAJFINSV": "Bajaj Finserv",
    "BAJFINANCE": "Bajaj Finance",
    "BEL": "Bharat Electronics",
    "BHARTIARTL": "Bharti Airtel",
    "CIPLA": "Cipla",
    "COALINDIA": "Coal India",
    "DRREDDY": "Dr. Reddy's Laboratories",
    "EICHERMOT": "Eicher Motors",
    "ETERNAL": "Eternal (Zomato)",
    "GRASIM": "Grasim Industries",
    "HCLTECH": "HCL Technologies",
    "HDFCBANK": "HDFC Bank",
    "HDFCLIFE": "HDFC Life Insurance Company",
    "HINDALCO": "Hindalco Industries",
    "HINDUNILVR": "Hindustan Unilever",
    "ICICIBANK": "ICICI Bank",
    "INDIGO": "InterGlobe Aviation (IndiGo)",
    "INFY": "Infosys",
    "ITC": "ITC",
    "JIOFIN": "Jio Financial Services",
    "JSWSTEEL": "JSW Steel",
    "KOTAKBANK": "Kotak Mahindra Bank",
    "LT": "Larsen & Toubro",
    "M&M": "Mahindra & Mahindra",
    "MARUTI": "Maruti Suzuki India",
    "MAXHEALTH": "Max Healthcare Institute",
    "NESTLEIND": "Nestle India",
    "NTPC": "NTPC",
    "ONGC": "Oil and Natural Gas Corporation",
    "POWERGRID": "Power Grid Corporation of India",
    "RELIANCE": "Reliance Industries",
    "SBILIFE": "SBI Life Insurance Company",
    "SBIN": "State Bank of India",
    "SHRIRAMFIN": "Shriram Finance",
    "SUNPHARMA": "Sun Pharmaceutical Industries",
    "TATACONSUM": "Tata Consumer Products",
    "TATAMOTORS": "Tata Motors",
    "TATASTEEL": "Tata Steel",
    "TCS": "Tata Consultancy Services",
    "TECHM": "Tech Mahindra",
    "TITAN": "Titan Company",
    "TMPV": "Tata Motors Passenger Vehicles",
    "TRENT": "Trent",
    "ULTRACEMCO": "UltraTech Cement",
    "WIPRO": "Wipro",
    # the simulated market's other stocks (oaws/brokers/sim/universe.py)
    "ABB": "ABB India",
    "ADANIGREEN": "Adani Green Energy",
    "ADANIPOWER": "Adani Power",
    "AMBUJACEM": "Ambuja Cements",
    "ANGELONE": "Angel One",
    "ASHOKLEY": "Ashok Leyland",
    "AUBANK": "AU Small Finance Bank",
    "AUROPHARMA": "Aurobindo Pharma",
    "BAJAJHLDNG": "Bajaj Holdings & Investment",
    "BANDHANBNK": "Bandhan Bank",
    "BANKBARODA": "Bank of Baroda",
    "BERGEPAINT": "Berger Paints India",
    "BHEL": "Bharat Heavy Electricals",
    "BIOCON": "Biocon",
    "BOSCHLTD": "Bosch",
    "BPCL": "Bharat Petroleum Corporation",
    "BRITANNIA": "Britannia Industries",
    "BSE": "BSE",
    "CANBK": "Canara Bank",
    "CGPOWER": "CG Power and Industrial Solutions",
    "CHOLAFIN": "Cholamandalam Investment and Finance",
    "COLPAL": "Colgate-Palmolive (India)",
    "DABUR": "Dabur India",
    "DIVISLAB": "Divi's Laboratories",
    "DIXON": "Dixon Technologies (India)",
    "DLF": "DLF",
    "DMART": "Avenue Supermarts",
    "FEDERALBNK": "The Federal Bank",
    "GAIL": "GAIL (India)",
    "GODREJCP": "Godrej Consumer Products",
    "HAL": "Hindustan Aeronautics",
    "HAVELLS": "Havells India",
    "HDFCAMC": "HDFC Asset Management Company",
    "HEROMOTOCO": "Hero MotoCorp",
    "HINDZINC": "Hindustan Zinc",
    "ICICIGI": "ICICI Lombard General Insurance",
    "ICICIPRULI": "ICICI Prudential Life Insurance",
    "IDEA": "Vodafone Idea",
    "IDFCFIRSTB": "IDFC First Bank",
    "INDHOTEL": "The Indian Hotels Company",
    "INDUSINDBK": "IndusInd Bank",
    "IOC": "Indian Oil Corporation",
    "IRCTC": "Indian Railway Catering and Tourism Corporation",
    "IRFC": "Indian Railway Finance Corporation",
    "JINDALSTEL": "Jindal Steel",
    "LICI": "Life Insurance Corporation of India",
    "LODHA": "Lodha Developers",
    "LTIM": "LTIMindtree",
    "LUPIN": "Lupin",
    "MARICO": "Marico",
    "MAZDOCK": "Mazagon Dock Shipbuilders",
    "MCX": "Multi Commodity Exchange of India",
    "MOTHERSON": "Samvardhana Motherson International",
    "MRF": "MRF",
    "NAUKRI": "Info Edge (India)",
    "NMDC": "NMDC",
    "NYKAA": "FSN E-Commerce Ventures",
    "PAGEIND": "Page Industries",
    "PAYTM": "One 97 Communications",
    "PERSISTENT": "Persistent Systems",
    "PFC": "Power Finance Corporation",
    "PIDILITIND": "Pidilite Industries",
    "PNB": "Punjab National Bank",
    "POLYCAB": "Polycab India",
    "RECLTD": "REC",
    "SAIL": "Steel Authority of India",
    "SHREECEM": "Shree Cement",
    "SIEMENS": "Siemens",
    "SOLARINDS": "Solar Industries India",
    "SUZLON": "Suzlon Energy",
    "TATACOMM": "Tata Communications",
    "TATAELXSI": "Tata Elxsi",
    "TATAPOWER": "The Tata Power Company",
    "TORNTPHARM": "Torrent Pharmaceuticals",
    "TVSMOTOR": "TVS Motor Company",
    "UNITDSPR": "United Spirits",
    "VBL": "Varun Beverages",
    "VEDL": "Vedanta",
    "YESBANK": "Yes Bank",
    "ZYDUSLIFE": "Zydus Lifesciences",
}
#: the indices people watch, by their OpenAlgo names
INDICES: dict[str, str] = {
    "NIFTY:NSE_INDEX": "Nifty 50",
    "BANKNIFTY:NSE_INDEX": "Nifty Bank",
    "FINNIFTY:NSE_INDEX": "Nifty Financial Services",
    "MIDCPNIFTY:NSE_INDEX": "Nifty Midcap Select",
    "NIFTYNXT50:NSE_INDEX": "Nifty Next 50",
    "NIFTYIT:NSE_INDEX": "Nifty IT",
    "INDIAVIX:NSE_INDEX": "India VIX",
    "SENSEX:BSE_INDEX": "BSE Sensex",
    "BANKEX:BSE_INDEX": "BSE Bankex",
    "SENSEX50:BSE_INDEX": "BSE Sensex 50",
    "MCXCOMDEX:MCX_INDEX": "MCX iCOMDEX Composite",
    "MCXMETAL:MCX_INDEX": "MCX iCOMDEX Base Metals",
    "MCXENERGY:MCX_INDEX": "MCX iCOMDEX Energy",
    "US30:GLOBAL_INDEX": "Dow Jones Industrial Average",
    "US100:GLOBAL_INDEX": "Nasdaq 100",
    "US500:GLOBAL_INDEX": "S&P 500",
    "JP225:GLOBAL_INDEX": "Nikkei 225",
    "HK50:GLOBAL_INDEX": "Hang Seng",
    "UK100:GLOBAL_INDEX": "FTSE 100",
    "DE40:GLOBAL_INDEX": "DAX",
}
#: ``SYMBOL:EXCHANGE`` -> the company's or the index's name
NAMES: dict[str, str] = {
    **INDICES,
    **{f"{symbol}:{exchange}": name for exchange in ("NSE", "BSE") for symbol, name in COMPANIES.items()},
}


def name_of(instrument: Instrument | str) -> str:
    """The built-in name of ``instrument`` (``SYMBOL:EXCHANGE``), "" when the table has none."""
    return NAMES.get(str(instrument), "")
