"""The IMAP source: reading one configured mailbox over one logged-in connection.

Fetches raw bytes and IMAP facts (UIDs, UIDVALIDITY, INTERNALDATE) and nothing else: no
parsing, no database. `ImapSession` is built in layers: `govfeed.imapconn` connects, logs
in and turns every imapclient, socket and TLS failure into `ImapError` (or
`ImapAuthError` for rejected credentials), with no secret in any message;
`govfeed.imapwatch` waits for new mail (IDLE, NOTIFY, LIST-STATUS); this module lists,
searches, fetches and runs the post-actions.

Nothing here trusts the server (see `govfeed.imapio` for the wire): every command has a
deadline and a byte budget, UIDs are searched in windows so no answer depends on a line
limit, messages are fetched in batches bounded in count and bytes, sizes are asked first
so an oversized message is never downloaded, and numbers are checked before use. An
answer that makes no sense is an `ImapError` naming it, never a traceback.
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from imapclient.response_parser import parse_fetch_response

from govfeed.errors import ImapError, ImapRuleViolation
from govfeed.imapconn import is_connection_limit
from govfeed.imapdata import Batch, groups, number, split_fetch
from govfeed.imapwatch import FolderNumbers, ImapWatching
from govfeed.models import RawMessage

__all__ = ["FolderNumbers", "ImapSession", "is_connection_limit"]

_STORE_CHUNK = 500  # UIDs per STORE/COPY/MOVE command, to keep command lines short
SEARCH_WINDOW = 50_000  # UIDs per UID SEARCH: the answer stays far below 1 MB
HEADER_BYTES = 64 * 1024  # what is kept of an oversized message: its first 64 KiB of header


class ImapSession(ImapWatching):
    """A connection to one mailbox that reads it: `with ImapSession(mailbox) as imap: ...`.

    Connecting, limits and errors come from `ImapConnection`, waiting for mail from
    `ImapWatching`; here: listing, searching and fetching, and the post-actions.
    """

    def list_folders(self) -> list[str]:
        with self._errors("LIST"):
            return [str(name) for _flags, _delimiter, name in self._imap.list_folders()]

    def new_uids(
        self,
        folder: str,
        after_uid: int,
        since: date | None = None,
        since_until: int | None = None,
        upto: int | None = None,
    ) -> list[int]:
        """UIDs above `after_uid` up to `upto` (default: below UIDNEXT, from a fresh EXAMINE),
        ascending: `iter_new_uids` in one list."""
        top = self.folder_status(folder)[1] - 1 if upto is None else upto
        windows = self.iter_new_uids(folder, after_uid, since, since_until, top)
        return [uid for window in windows for uid in window]

    def iter_new_uids(
        self,
        folder: str,
        after_uid: int,
        since: date | None,
        since_until: int | None,
        top: int,
    ) -> Iterator[list[int]]:
        """UIDs above `after_uid` up to `top`, ascending, a window of at most SEARCH_WINDOW
        UIDs at a time (searched as it is asked for): no answer nears imaplib's line limit
        and memory does not grow with the folder. With `since`, only mail received on or
        after it, among the UIDs up to `since_until` when that is given (all when not).
        Raises ImapRuleViolation when the server answers with a UID outside the window it
        was asked about."""
        if since is None or since_until is None:
            yield from self._search_windows(folder, after_uid, top, since)
            return
        yield from self._search_windows(folder, after_uid, min(since_until, top), since)
        yield from self._search_windows(folder, max(after_uid, since_until), top, None)

    def uid_above(self, folder: str, top: int) -> int | None:
        """The highest UID above `top` (UIDNEXT - 1 of an EXAMINE) that is still above
        UIDNEXT after a fresh EXAMINE: the server broke the rule that UIDNEXT is above every
        UID. None when there is none (mail that came meanwhile is no violation)."""
        # "n:*" also matches the highest UID when it is below n (RFC 3501 6.4.8).
        above = [uid for uid in self._search(folder, ["UID", f"{top + 1}:*"]) if uid > top]
        if not above:
            return None
        _uidvalidity, uidnext = self.folder_status(folder)
        return above[-1] if above[-1] >= uidnext else None

    def _search_windows(
        self, folder: str, after_uid: int, top: int, since: date | None
    ) -> Iterator[list[int]]:
        low = after_uid + 1
        while low <= top:
            high = min(low + SEARCH_WINDOW - 1, top)
            criteria: list[Any] = ["UID", f"{low}:{high}"]
            window = self._search(folder, criteria + (["SINCE", since] if since else []))
            strays = [uid for uid in window if not low <= uid <= high]
            if strays:
                raise ImapRuleViolation(
                    f"{self._where}: {folder}: UID SEARCH {low}:{high} answered UID"
                    f" {strays[0]}, outside what was asked",
                    "uid_outside_search",
                )
            if window:
                yield window
            low = high + 1
            if not window and low <= top and self._has("ESEARCH"):
                low = self._next_uid(folder, low, top)  # skip an empty stretch at once

    def _search(self, folder: str, criteria: list[Any]) -> list[int]:
        with self._errors(f"{folder}: UID SEARCH"):
            found = self._imap.search(criteria)
        return sorted({number(uid, f"{self._where}: {folder}: a UID") for uid in found})

    def _next_uid(self, folder: str, low: int, top: int) -> int:
        """The lowest UID in low:top by ESEARCH (RFC 4731), or top + 1 when there is none."""
        with self._errors(f"{folder}: UID SEARCH RETURN (MIN)"):
            imap = self._imap._imap
            typ, data = imap._simple_command("UID", "SEARCH", "RETURN", "(MIN)", f"{low}:{top}")
            _typ, lines = imap._untagged_response(typ, data, "ESEARCH")
        for line in lines:
            match = re.search(rb"\bMIN (\d+)", line if isinstance(line, bytes) else b"")
            if match:
                return max(low, min(number(match[1], f"{self._where}: {folder}: MIN"), top + 1))
        return top + 1

    def fetch_batches(self, folder: str, uids: Sequence[int], batch_size: int) -> Iterator[Batch]:
        """The messages `uids` in batches of at most `batch_size` messages and at most
        max_message_bytes (or one message), fetched with BODY.PEEK[] (which leaves \\Seen
        alone). Sizes come first (RFC822.SIZE): a message over max_message_bytes is only
        fetched as its first HEADER_BYTES of header, listed in the batch's `too_large`.
        A UID expunged meanwhile is skipped."""
        uidvalidity = self._uidvalidity(folder, self._select(folder, readonly=True))
        size = max(batch_size, 1)
        for start in range(0, len(uids), size):
            chunk = list(uids[start : start + size])
            sizes = self._sizes(folder, chunk)
            for uid in chunk:
                if uid not in sizes:
                    self._log.warning("imap_message_vanished", folder=folder, uid=uid)
            limit = self.mailbox.max_message_bytes
            runs = list(groups([u for u in chunk if u in sizes], sizes, limit))
            for n, (group, too_large) in enumerate(runs, start=1):
                batch = Batch(self._fetch(folder, uidvalidity, group, sizes, too_large))
                batch.too_large = {uid: sizes[uid] for uid in group if too_large}
                batch.last_uid = chunk[-1] if n == len(runs) else group[-1]
                yield batch
                del batch  # not held while the next is fetched: it may be 25 MB
            if not runs:
                yield Batch(last_uid=chunk[-1])  # all gone: the cursor still moves

    def _sizes(self, folder: str, uids: list[int]) -> dict[int, int]:
        with self._errors(f"{folder}: UID FETCH RFC822.SIZE"):
            fetched = self._imap.fetch(uids, [b"RFC822.SIZE"])
        sizes = {}
        for uid in uids:
            value = fetched.get(uid, {}).get(b"RFC822.SIZE")
            if value is not None:
                sizes[uid] = number(value, f"{self._where}: {folder}: RFC822.SIZE", 0)
        return sizes

    def _fetch(
        self,
        folder: str,
        uidvalidity: int,
        uids: list[int],
        sizes: dict[int, int],
        too_large: bool,
    ) -> list[RawMessage]:
        part = "BODY[HEADER]<0>" if too_large else "BODY[]"
        items = [f"BODY.PEEK[HEADER]<0.{HEADER_BYTES}>" if too_large else "BODY.PEEK[]"]
        expected = len(uids) * HEADER_BYTES if too_large else sum(sizes[u] for u in uids)
        action = f"{folder}: UID FETCH"
        with self._errors(action, budget=expected):
            responses = self._uid_fetch(folder, uids, [*items, "INTERNALDATE"])
        source = f"imap:{self.mailbox.name}/{folder}"
        batch = []
        for uid in uids:
            item = responses.get(uid)
            data = None if item is None else item.get(part.encode())
            if item is None or not isinstance(data, bytes):
                self._log.warning("imap_message_vanished", folder=folder, uid=uid)
                continue
            batch.append(
                RawMessage(
                    data=data,
                    source=source,
                    mailbox=self.mailbox.name,
                    folder=folder,
                    uid=uid,
                    uidvalidity=uidvalidity,
                    received_at=_utc(item.get(b"INTERNALDATE")),
                )
            )
        return batch

    def _uid_fetch(self, folder: str, uids: list[int], items: list[str]) -> dict[int, Any]:
        """UID FETCH, each FETCH response parsed on its own: a UID whose message comes twice
        is an error (imapclient would merge the two silently)."""
        imap = self._imap._imap
        wanted = ",".join(str(uid) for uid in uids)
        typ, data = imap._simple_command("UID", "FETCH", wanted, f"({' '.join(items)})")
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes))
            raise imaplib.IMAP4.error(f"failed: {text.decode('utf-8', 'replace')}")
        _typ, data = imap._untagged_response(typ, data, "FETCH")
        merged: dict[int, dict[bytes, Any]] = {}
        for response in split_fetch(data):
            for uid, values in parse_fetch_response(response, False, True).items():
                seen = merged.setdefault(number(uid, f"{self._where}: {folder}: a UID"), {})
                if any(k.startswith(b"BODY[") for k in values) and any(
                    k.startswith(b"BODY[") for k in seen
                ):
                    raise ImapError(
                        f"{self._where}: {folder}: UID FETCH sent UID {uid} twice;"
                        " the answer cannot be trusted"
                    )
                seen.update(values)
        return merged

    # -- post-actions (after the commit): these need a read-write SELECT -----------------

    def mark_seen(self, folder: str, uids: Sequence[int]) -> None:
        self._select(folder, readonly=False)
        for chunk in _chunks(uids):
            with self._errors(f"{folder}: UID STORE"):
                self._imap.add_flags(chunk, [b"\\Seen"], silent=True)

    def move(self, folder: str, uids: Sequence[int], target: str) -> None:
        """Move `uids` to `target` (created when missing): MOVE where the server has it,
        else COPY, flag \\Deleted and expunge (only these UIDs when it has UIDPLUS)."""
        self._select(folder, readonly=False)
        with self._errors(f"{folder}: CREATE {target}"):
            if not self._imap.folder_exists(target):
                self._imap.create_folder(target)
        for chunk in _chunks(uids):
            with self._errors(f"{folder}: MOVE to {target}"):
                if self._has("MOVE"):
                    self._imap.move(chunk, target)
                    continue
                self._imap.copy(chunk, target)
                self._imap.add_flags(chunk, [b"\\Deleted"], silent=True)
                if self._has("UIDPLUS"):
                    self._imap.uid_expunge(chunk)
                else:
                    self._imap.expunge()


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _chunks(uids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(uids), _STORE_CHUNK):
        yield list(uids[start : start + _STORE_CHUNK])
