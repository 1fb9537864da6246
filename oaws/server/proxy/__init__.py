"""The WebSocket proxy: clients in, ticks from the bus out (SPEC §1).

One module per job, put together by ``Proxy``:

* ``gate``: the HTTP side of the handshake, ``/health`` and browser origins;
* ``fanout``: routes, and each tick framed once and written to every client that wants it;
* ``slow``: conflation past ``soft_limit``, and 1008 for a client that stays behind;
* ``feeds``: the feeds' announcements (broker name, depths) and refusals;
* ``auth``: delays for repeated failed authentication, and 4401 for none in time;
* ``flood``: a token bucket per client, LIMIT_EXCEEDED, and 1008 for a flood;
* ``connection``: one client's state and the frames written to it; ``options``: the knobs.
"""

from oaws.server.proxy.connection import text_frame
from oaws.server.proxy.options import ProxyOptions
from oaws.server.proxy.proxy import Proxy, ServeError

__all__ = ["Proxy", "ProxyOptions", "ServeError", "text_frame"]
