"""Waiting for new mail on a connection: IDLE on one folder (RFC 2177), NOTIFY on many
(RFC 5465), and the numbers of many folders without selecting them (LIST-STATUS, RFC 5819,
else STATUS per folder). Used by `govfeed.watch` and the daemon's sweep.

Every wait ends within about a second of a stop request, never outlasts what RFC 2177
allows, and leaves no connection half in IDLE: on any failure it is dropped.
"""

from __future__ import annotations

import imaplib
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_response

from govfeed.errors import ImapError
from govfeed.imapconn import ImapConnection, server_text
from govfeed.imapio import BoundedClient

# imaplib refuses commands it does not know; NOTIFY (RFC 5465) is valid once logged in.
imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))

# RFC 2177: servers may drop an IDLE after 30 minutes; one wait never goes past 29.
IDLE_MAX_SECONDS = 29 * 60
IDLE_STOP_CHECK_SECONDS = 1.0  # how soon a waiting IDLE notices that it should stop
_NEW_MAIL = (b"EXISTS", b"RECENT")
FolderNumbers = tuple[int, int, int]  # (UIDVALIDITY, UIDNEXT, MESSAGES) of a folder


class ImapWatching(ImapConnection):
    """An `ImapConnection` that can wait for new mail and read many folders' numbers."""

    def idle_wait(
        self,
        folder: str,
        timeout: float,
        known_uidnext: int | None = None,
        stop: threading.Event | None = None,
    ) -> bool:
        """Wait in IDLE on `folder` until new mail (True) or `timeout` seconds pass (False).

        With `known_uidnext`, mail that arrived before the IDLE began counts too (no race
        between the last poll and this wait). The wait is capped at 29 minutes; renewing it
        is the caller's loop. With `stop`, it also ends within a second of `stop` being
        set. IDLE is always ended with DONE before this returns.
        """
        _uidvalidity, uidnext = self.folder_status(folder)
        if known_uidnext is not None and uidnext > known_uidnext:
            return True
        if not self.has_idle():
            raise ImapError(f"{self._where}: the server does not support IDLE")
        deadline = time.monotonic() + min(timeout, IDLE_MAX_SECONDS)
        client = self._imap
        try:
            with self._errors(f"{folder}: IDLE"):
                client.idle()
                new_mail = self._idle_until(client, deadline, stop)
            with self._errors(f"{folder}: IDLE DONE"):
                _message, responses = client.idle_done()
        except ImapError:
            self._drop()  # whatever broke, never leave a connection half in IDLE
            raise
        return new_mail or _has_new_mail(responses)

    def _idle_until(
        self, client: BoundedClient, deadline: float, stop: threading.Event | None
    ) -> bool:
        quiet_wakeups = 0
        while (remaining := deadline - time.monotonic()) > 0:
            if stop is not None and stop.is_set():
                return False
            wait = min(remaining, IDLE_STOP_CHECK_SECONDS)
            started = time.monotonic()
            self._arm(client, "IDLE")  # a fresh byte budget for what this check reads
            responses = client.idle_check(timeout=wait)
            if _has_new_mail(responses):
                return True
            if any(len(r) > 0 and r[0] == b"BYE" for r in responses):
                raise ImapError(f"{self._where}: the server ended the session during IDLE")
            if not responses and time.monotonic() - started < wait - 0.01:
                # idle_check returns [] at once, forever, when the server has closed the
                # connection (it swallows EOF: mjs/imapclient#565). Three in a row: gone.
                quiet_wakeups += 1
                if quiet_wakeups >= 3:
                    raise ImapError(f"{self._where}: the connection closed during IDLE")
            else:
                quiet_wakeups = 0
        return False

    def folder_numbers(self, folders: Sequence[str]) -> dict[str, FolderNumbers]:
        """(UIDVALIDITY, UIDNEXT, MESSAGES) of each folder, without selecting any: one
        LIST-STATUS command (RFC 5819) where the server has it, else STATUS per folder.
        A folder the server does not list is left out."""
        if not folders:
            return {}
        if self._has("LIST-STATUS"):
            return self._list_status(folders)
        found = {}
        for folder in folders:
            try:
                with self._errors(f"{folder}: STATUS"):
                    items = self._imap.folder_status(folder, ["UIDVALIDITY", "UIDNEXT", "MESSAGES"])
                found[folder] = _numbers(items)
            except ImapError:
                if not self.connected:
                    raise
                # A folder the server refuses (deleted, say) is left out: its sync says why.
        return found

    def _list_status(self, folders: Sequence[str]) -> dict[str, FolderNumbers]:
        client = self._imap
        patterns = b"(" + b" ".join(client._normalise_folder(f) for f in folders) + b")"
        status = b"(STATUS (UIDVALIDITY UIDNEXT MESSAGES))"
        with self._errors("LIST-STATUS"):
            imap = client._imap
            imap.untagged_responses.pop("STATUS", None)
            typ, data = imap._simple_command("LIST", b'""', patterns, b"RETURN", status)
            imap.untagged_responses.pop("LIST", None)
            raw = imap.untagged_responses.pop("STATUS", [])
            if typ != "OK":
                raise ImapError(f"{self._where}: LIST-STATUS: {server_text(ImapError(*data))}")
            parsed = parse_response([line for line in raw if line is not None])
        wanted = set(folders)
        found = {}
        for name, items in zip(parsed[::2], parsed[1::2], strict=False):
            folder = self._folder_name(name)
            if folder in wanted and isinstance(items, tuple):
                found[folder] = _numbers(dict(zip(items[::2], items[1::2], strict=False)))
        return found

    def notify_set(self, folders: Sequence[str]) -> None:
        """NOTIFY SET (RFC 5465): the server reports new and expunged messages of
        `folders` (with a STATUS response) while this connection waits in `notify_wait`.
        A server that takes fewer names (Dovecot: 100) is asked for all of the user's
        own folders instead (`personal`); `notify_wait` ignores the others."""
        client = self._imap
        names = b" ".join(client._normalise_folder(f) for f in folders)
        events = b"(MessageNew MessageExpunge)"
        with self._errors("NOTIFY SET"):
            command = client._imap._simple_command
            typ, data = command("NOTIFY", b"SET", b"(mailboxes (" + names + b") " + events + b")")
            if typ != "OK" and b"NOTIFICATIONOVERFLOW" in b" ".join(map(bytes, data)).upper():
                typ, data = command("NOTIFY", b"SET", b"(personal " + events + b")")
            if typ != "OK":
                raise ImapError(f"{self._where}: NOTIFY SET: {server_text(ImapError(*data))}")

    def notify_wait(self, timeout: float, stop: threading.Event | None = None) -> set[str]:
        """Wait in IDLE (after `notify_set`) until a watched folder changes or `timeout`
        seconds pass; the folders the server reported as changed (empty on a timeout).
        Ends within a second of `stop`. The IDLE is ended with DONE, whose reply has the
        connection's timeout: a connection that went silent fails here."""
        deadline = time.monotonic() + min(timeout, IDLE_MAX_SECONDS)
        client = self._imap
        changed: set[str] = set()
        try:
            with self._errors("NOTIFY IDLE"):
                client.idle()
                quiet_wakeups = 0
                while not changed and (remaining := deadline - time.monotonic()) > 0:
                    if stop is not None and stop.is_set():
                        break
                    wait = min(remaining, IDLE_STOP_CHECK_SECONDS)
                    started = time.monotonic()
                    self._arm(client, "NOTIFY IDLE")  # a fresh byte budget for this check
                    responses = client.idle_check(timeout=wait)
                    changed |= self._changed_folders(responses)
                    # idle_check swallows EOF (see `_idle_until`): three empty, early
                    # returns in a row mean the server is gone.
                    early = not responses and time.monotonic() - started < wait - 0.01
                    quiet_wakeups = quiet_wakeups + 1 if early else 0
                    if quiet_wakeups >= 3:
                        raise ImapError(f"{self._where}: the connection closed during IDLE")
                self._arm(client, "NOTIFY IDLE DONE")  # its own deadline, from now
                _message, responses = client.idle_done()
                changed |= self._changed_folders(responses)
        except ImapError:
            self._drop()  # never leave a connection half in IDLE
            raise
        return changed

    def _changed_folders(self, responses: Iterable[tuple[Any, ...]]) -> set[str]:
        changed = set()
        for response in responses:
            if response and response[0] == b"BYE":
                raise ImapError(f"{self._where}: the server ended the session during IDLE")
            if len(response) >= 2 and response[0] == b"STATUS":
                changed.add(self._folder_name(response[1]))
        return changed

    def _folder_name(self, name: Any) -> str:
        """A folder name as the server sent it (parsed: bytes, or int when all digits)."""
        if isinstance(name, int):
            return str(name)
        if isinstance(name, bytes):
            return decode_utf7(name) if self._imap.folder_encode else name.decode()
        return str(name)


def _numbers(items: dict[Any, Any]) -> FolderNumbers:
    values = {(k.decode() if isinstance(k, bytes) else str(k)).upper(): v for k, v in items.items()}
    try:
        return int(values["UIDVALIDITY"]), int(values["UIDNEXT"]), int(values["MESSAGES"])
    except (KeyError, TypeError, ValueError) as err:
        raise ImapError(f"STATUS gave no usable numbers: {items!r}") from err


def _has_new_mail(responses: Iterable[tuple[Any, ...]]) -> bool:
    return any(len(r) > 1 and r[1] in _NEW_MAIL and r[0] != 0 for r in responses)
