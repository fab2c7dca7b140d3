"""How times and raw mail are written to the database, and server text to a terminal.

Kept apart from `store` and `schema` so that the parsing workers, which need both, do
not import sqlite_utils (about 15 MB of memory in every worker).
"""

from __future__ import annotations

import re
import time
import zlib
from datetime import UTC, datetime

import zstandard

RAW_COMPRESSION = "zstd"


def compress_raw(raw: bytes) -> bytes:
    # zstd level 1: as small as zlib level 1 on bulletins and three times faster (0.09 ms
    # against 0.29 ms for 20 KB, a twelfth of a message's whole analysis; issue I).
    return zstandard.compress(raw, 1)


def decompress_raw(data: bytes, compression: str | None) -> bytes:
    """The raw bytes as stored; rows written before zstd say "zlib" and stay readable."""
    if compression == RAW_COMPRESSION:
        return zstandard.decompress(data)
    if compression == "zlib":
        return zlib.decompress(data)
    return bytes(data)


_now: list[tuple[int, str]] = [(-1, "")]  # the last second formatted, and its text


def utc_now() -> str:
    """Now, as `iso` writes it. The text changes once a second: a write of four stamps per
    message formatted each of them anew (a few percent of the writer's time)."""
    second = int(time.time())
    cached_second, text = _now[0]
    if second != cached_second:
        text = iso(datetime.fromtimestamp(second, UTC)) or ""
        _now[0] = (second, text)
    return text


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC, to the second, with a Z: the one time format in the database."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# C0 and C1 controls, DEL, and the bidirectional overrides that can reorder a line.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` safe for a terminal: control characters from a server or a sender (an
    escape sequence in a folder name or an error text) shown as `\\x1b`, never obeyed."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
