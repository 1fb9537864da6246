"""What the market watch shows, decided without a screen: one model a module.

Ticks land here at whatever rate the feed sends them; the screen asks, a few times a
second, which rows changed and what each of them says now. Nothing in this package knows
Textual: a row is described as ``(text, style name)`` pieces that the grid widget turns
into a strip with the styles of ``app.tcss``. That keeps the hot path (``apply``) down to
a few dict operations and lets the tests check every decision without a terminal.

Modules: ``columns`` (the grid's columns and how numbers read in them), ``watch`` (rows,
watchlists, order, cursor), ``depth`` (the depth view's figures), ``health`` (the status
line: connection, rates, latency), ``completion`` (the add dialog's instruments).
"""
