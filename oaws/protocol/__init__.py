"""The client protocol (SPEC §1), without I/O: its vocabulary (``codes``), its server half
(``server``: one client's session, requests in, replies and route changes out), its client
half (``client``) and the bus's message format (``bus``).

Nothing here imports asyncio, websockets or zmq: the proxy, the client and the tests drive
these classes with frames, never with sockets.
"""
