"""The WebSocket proxy: clients in, ticks from the bus out (SPEC §1).

One module per job, put together by ``Proxy``:

* ``gate``: the HTTP side of the handshake: ``/health`` (with the API key), browser
  origins, the connection limits;
* ``fanout``: routes, and each tick framed once and written to every client that wants it;
* ``slow``: conflation past ``soft_limit``, and 1008 for a client that stays behind;
* ``feeds``: the feeds' announcements (broker name, depths) and refusals;
* ``auth``: delays for repeated failed authentication, per address across its
  connections, and 4401 for none in time;
* ``flood``: a token bucket per client, LIMIT_EXCEEDED, and 1008 for a flood;
* ``connection``: one client's state, the frames written to it, and its one budget of
  bytes (reading paused past the soft limit, aborted past the hard cap);
* ``logs``: what a client can cause at will, logged at a bounded rate; ``options``: the knobs.
"""

from oaws.server.proxy.connection import text_frame
from oaws.server.proxy.options import ProxyOptions
from oaws.server.proxy.proxy import Proxy, ServeError

__all__ = ["Proxy", "ProxyOptions", "ServeError", "text_frame"]
