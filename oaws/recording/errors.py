"""What every part of the recording package shares: its error, its warnings, its constants."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("oaws.recording")

FORMAT = "oaws-recording"
VERSION = 1
READ_CHUNK = 1 << 20

Warn = Callable[[str], None]


class RecordingError(Exception):
    """A recording cannot be written or read; the message is one sentence for the user."""


def log_warning(message: str) -> None:
    log.warning("%s", message)
