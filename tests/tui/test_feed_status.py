"""The watch says what the server knows of its feed (issue 19, defect 16): a proxy with no
feed on its bus tells its clients so, and the watch shows it on the status line and in a
notification instead of waiting in silence."""

from __future__ import annotations

from oaws.server.proxy import Proxy, ProxyOptions
from oaws.server.proxy import feeds as proxy_feeds
from tests.tui.conftest import live_app, until


async def test_the_watch_says_the_server_has_no_feed(bus, monkeypatch):
    monkeypatch.setattr(proxy_feeds, "HEARD_WITHIN", 0.0)  # no waiting for the first announcement
    proxy = Proxy(bus.endpoint, ProxyOptions(port=0))
    await proxy.start()
    try:
        await bus.control_ready()
        app = live_app(proxy.url, ["RELIANCE:NSE"], ribbon=[])
        async with app.run_test(size=(120, 30)) as pilot:
            said = f"the server has no feed on its bus ({bus.endpoint})"
            await until(pilot, lambda: said in app.health.notice, timeout=10, what="the feed's state")
            assert any(said in str(n.message) for n in app._notifications)
            assert said in "".join(text for text, _ in app.health.pieces())
    finally:
        await proxy.close()
