"""The OpenAlgo feed's settings: the environment, then the ``[openalgo]`` section of the config file.

The API key is OpenAlgo's (the one its dashboard gives a user), a secret: never on the
command line, never in a log line. ``OAWS_API_KEY`` is something else, the key oaws's own
proxy asks of its clients.
"""

from __future__ import annotations

from oaws.brokers.settings import Setting, SettingsSpec

SPEC = SettingsSpec(
    "openalgo",
    (
        Setting("api_key", "OPENALGO_API_KEY", secret=True, required=True, help="the OpenAlgo user's API key"),
        Setting(
            "upstream", "OPENALGO_WS_URL", help="the OpenAlgo WebSocket server (ws://HOST:8765) without --upstream"
        ),
    ),
)
