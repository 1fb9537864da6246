"""oaws: a market watch for Indian markets with a built-in market-data proxy."""

__version__ = "0.1.0"
