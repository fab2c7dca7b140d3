"""What `govfeed.imap` makes of a server's answers before trusting them: numbers checked
against their RFC range, a FETCH answer cut into its responses, fetches cut into batches
bounded in bytes.

Pure functions over imaplib's data; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from govfeed.errors import ImapError
from govfeed.models import RawMessage

MAX_UID = 2**32 - 1  # RFC 3501: UIDs and UIDVALIDITY are non-zero 32-bit numbers


class Batch(list[RawMessage]):
    """Fetched messages; `last_uid` ends the range of UIDs they cover (the cursor may move
    there once they are stored), `too_large` maps the UIDs fetched only by their header
    (over max_message_bytes) to their size."""

    def __init__(self, messages: Iterable[RawMessage] = (), last_uid: int = 0) -> None:
        super().__init__(messages)
        self.last_uid = last_uid
        self.too_large: dict[int, int] = {}


def groups(uids: list[int], sizes: dict[int, int], limit: int) -> Iterator[tuple[list[int], bool]]:
    """`uids` cut into runs of at most `limit` bytes in all, in order; an oversized
    message comes alone, as ([uid], True)."""
    group: list[int] = []
    total = 0
    for uid in uids:
        size = sizes[uid]
        if group and (size > limit or total + size > limit):
            yield group, False
            group, total = [], 0
        if size > limit:
            yield [uid], True
        else:
            group.append(uid)
            total += size
    if group:
        yield group, False


_FETCH_START = re.compile(rb"^\d+ \(")


def split_fetch(data: list[Any]) -> Iterator[list[Any]]:
    """imaplib's FETCH data cut into one list per response: a response begins with
    "N (", a piece that follows a literal with " " or ")"."""
    response: list[Any] = []
    for piece in data:
        head = piece[0] if isinstance(piece, tuple) else piece
        if isinstance(head, bytes) and _FETCH_START.match(head) and response:
            yield response
            response = []
        response.append(piece)
    if response:
        yield response


def number(value: Any, what: str, low: int = 1, high: int = MAX_UID) -> int:
    """`value` as an int in low..high, or an ImapError quoting it (escaped)."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    if isinstance(value, int) or text.isdigit():
        number = int(text)
        if low <= number <= high:
            return number
    raise ImapError(f"{what}: the server sent {text[:40]!r}, not a number in {low}..{high}")
