"""What the brokers' instrument masters and REST calls share: the mechanism, not the wording.

- ``describe_request_error``: why a ``requests`` call failed, in a few words, from the
  exception and what it wraps (each broker passes its own wordings for bad URLs).
- ``stream_body``: a response's body written chunk by chunk, with progress by Content-Length.
- ``save_download``: a download saved with its index in the cache directory through
  temporary files renamed over the old ones, which stay when anything fails.
- ``write_atomic`` / ``write_private``: a file replaced atomically (the session file: mode
  0600, made afresh with O_EXCL | O_NOFOLLOW, never written through a planted link).
- ``stale_days``: how old an index is, when older than ``STALE_AFTER``.

Each broker keeps its URLs, columns, names, messages and error classes; they come in as
arguments (callables that make the broker's exception from the facts).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

#: An index older than this earns a warning: new F&O contracts appear in the masters daily.
STALE_AFTER = 3 * 86400
CHUNK = 1 << 16

Progress = Callable[[int, int | None], None]
Rows = TypeVar("Rows")


# Request errors ----------------------------------------------------------------------
def request_causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests -> urllib3 (``reason``, ``args``) -> the socket error."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args)
        todo.extend(e for e in linked if isinstance(e, BaseException))


def describe_request_error(
    exc: BaseException,
    url: str,
    *,
    invalid: Sequence[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] | None = None,
    broke_off: str = "the download broke off",
    last_cause: bool = True,
) -> str:
    """Why a ``requests`` call failed in a few words ("connection refused"), never the URL's query.

    ``invalid`` pairs exception classes (bad URLs) with the broker's words for them, the
    first that matches wins; ``{scheme}`` in a wording is the URL's scheme, as repr.
    ``broke_off`` is said of a body cut short. Otherwise a timeout is "timed out", a name
    that does not resolve says so, an OSError says its strerror; else the last cause's
    first line (``last_cause``) or the exception's class name. The defaults are the
    wordings Angel One's and Dhan's messages use.
    """
    import requests

    if invalid is None:
        invalid = (
            (requests.exceptions.InvalidSchema, "unsupported URL scheme {scheme} (use http:// or https://)"),
            (requests.exceptions.MissingSchema, "not a URL (it needs http:// or https://)"),
            ((requests.exceptions.InvalidURL, requests.exceptions.URLRequired), "not a valid URL"),
        )

    for kinds, wording in invalid:
        if isinstance(exc, kinds):
            return wording.format(scheme=repr(urlsplit(url).scheme)) if "{scheme}" in wording else wording
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return broke_off
    causes = list(request_causes(exc))
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name {urlsplit(url).hostname!r}"
        if isinstance(cause, TimeoutError):
            return "timed out"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[:1].lower() + cause.strerror[1:]  # "connection refused"
    if last_cause:
        text = str(causes[-1]).strip().splitlines()
        return text[0][:200] if text else exc.__class__.__name__
    return exc.__class__.__name__


def status_text(response: Any) -> str:
    """``HTTP 503 Service Unavailable`` of a response."""
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


def content_length(response: Any) -> int | None:
    """The response's Content-Length, None when absent, zero or not a number."""
    try:
        return int(response.headers.get("Content-Length") or 0) or None
    except ValueError:
        return None


def wire_bytes(response: Any, decoded: int) -> int:
    """How many bytes of the body have come over the wire (urllib3 counts them); ``decoded`` when unknown."""
    if not response.headers.get("Content-Encoding"):
        return decoded
    try:
        return int(response.raw.tell())
    except (AttributeError, TypeError, ValueError, OSError):
        return decoded


# Downloads ---------------------------------------------------------------------------
def stream_body(
    response: Any,
    write: Callable[[bytes], object],
    progress: Progress | None = None,
    *,
    wire: bool = False,
    announce: bool = False,
) -> tuple[int, int | None]:
    """Write the body chunk by chunk; returns (bytes counted, Content-Length or None).

    ``progress(done, total)`` after each chunk (and once at 0 first with ``announce``).
    With ``wire`` the bytes counted are those on the wire (Content-Length counts the
    compressed body when the server gzips it), else the decoded bytes written.
    """
    total = content_length(response)
    done = 0
    if announce and progress is not None:
        progress(0, total)
    for chunk in response.iter_content(chunk_size=CHUNK):
        write(chunk)
        done = wire_bytes(response, done + len(chunk)) if wire else done + len(chunk)
        if progress is not None:
            progress(done, total)
    return done, total


@contextlib.contextmanager
def _file_errors(not_saved: Callable[[OSError], Exception]) -> Iterator[None]:
    """File errors as the broker's exception; only around file operations (requests' errors are OSErrors too)."""
    try:
        yield
    except OSError as exc:
        raise not_saved(exc) from None


def save_download(
    directory: Path,
    raw_name: str,
    index_name: str,
    *,
    open_response: Callable[[], Any],
    parse: Callable[[bytes], Rows],
    index: Callable[[Rows], bytes],
    not_saved: Callable[[OSError], Exception],
    bad_status: Callable[[str], Exception],
    unreachable: Callable[[Exception], Exception],
    cut_short: Callable[[int, int], Exception] | None = None,
    progress: Progress | None = None,
    wire: bool = False,
    announce: bool = False,
) -> tuple[Path, Rows]:
    """Download into ``directory/raw_name``, index it into ``directory/index_name``; (index path, rows).

    ``open_response()`` makes the request (stream=True). The old files stay until the new
    ones are complete and valid: written beside as ``.NAME.PID.part`` and renamed over.
    Raises what the callables make: ``not_saved(OSError)`` for the directory (checked
    before the request), ``bad_status("HTTP 503 ...")`` for an answer other than 200,
    ``cut_short(done, total)`` for a body shorter than its Content-Length (no check
    without it), ``unreachable(RequestException)`` for the network; ``parse`` raises
    the broker's own exception for what is not a master.
    """
    import requests

    raw_path, index_path = directory / raw_name, directory / index_name
    tmp = directory / f".{raw_name}.{os.getpid()}.part"
    index_tmp = directory / f".{index_name}.{os.getpid()}.part"
    saving = _file_errors(not_saved)

    def write(chunk: bytes) -> None:
        with _file_errors(not_saved):
            out.write(chunk)

    try:
        with saving:
            directory.mkdir(parents=True, exist_ok=True)
            out = tmp.open("wb")
        with out, open_response() as response:
            if response.status_code != 200:
                raise bad_status(status_text(response))
            done, total = stream_body(response, write, progress, wire=wire, announce=announce)
        if cut_short is not None and total is not None and done < total:
            raise cut_short(done, total)
        with _file_errors(not_saved):
            data = tmp.read_bytes()
        rows = parse(data)
        with _file_errors(not_saved):
            index_tmp.write_bytes(index(rows))
            os.replace(tmp, raw_path)
            os.replace(index_tmp, index_path)
    except requests.RequestException as exc:
        raise unreachable(exc) from None
    finally:
        for part in (tmp, index_tmp):
            with contextlib.suppress(OSError):  # the directory may not exist at all
                part.unlink(missing_ok=True)
    return index_path, rows


# Files -------------------------------------------------------------------------------
def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` through a temporary file beside it; the old file stays on failure (OSError)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` with mode 0600, atomically (a reader never sees half a file); raises OSError.

    A link planted in the temporary file's place is removed, never written through
    (issue 14 #15): the file is made afresh (O_EXCL | O_NOFOLLOW), the user's alone.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):  # a half-written temporary file, if any
            tmp.unlink(missing_ok=True)
        raise


def stale_days(built: float, now: float | None = None) -> int | None:
    """Whole days since ``built`` when that is more than STALE_AFTER ago, else None (and for no date)."""
    age = (time.time() if now is None else now) - built
    return int(age // 86400) if built and age > STALE_AFTER else None
