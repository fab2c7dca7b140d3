"""The IMAP source: one logged-in connection to one configured mailbox.

Fetches raw bytes and IMAP facts (UIDs, UIDVALIDITY, INTERNALDATE) and nothing else: no
parsing, no database. Every imapclient, socket and TLS failure leaves this module as
`ImapError` (or `ImapAuthError` for rejected credentials), and no message carries a secret.

Nothing here trusts the server (see `govfeed.imapio` for the wire): every command has a
deadline and a byte budget, UIDs are searched in windows so no answer depends on a line
limit, messages are fetched in batches bounded in count and bytes, sizes are asked first
so an oversized message is never downloaded, and numbers are checked before use. An
answer that makes no sense is an `ImapError` naming it, never a traceback.
"""

from __future__ import annotations

import functools
import imaplib
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any

import structlog
from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, LoginError, ProtocolError
from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_fetch_response, parse_response

from govfeed.config import MailboxSettings, Secret, read_secret
from govfeed.errors import (
    ConfigError,
    ImapAuthError,
    ImapError,
    ImapLimitError,
    ImapRuleViolation,
)
from govfeed.imapdata import MAX_UID, Batch, groups, number, split_fetch
from govfeed.imapio import BoundedClient, Cutoff
from govfeed.models import RawMessage

log = structlog.get_logger(__name__)

# imaplib refuses commands it does not know; NOTIFY (RFC 5465) is valid once logged in.
imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))

# RFC 2177: servers may drop an IDLE after 30 minutes; one wait never goes past 29.
IDLE_MAX_SECONDS = 29 * 60
IDLE_STOP_CHECK_SECONDS = 1.0  # how soon a waiting IDLE notices that it should stop
_STORE_CHUNK = 500  # UIDs per STORE/COPY/MOVE command, to keep command lines short
_NEW_MAIL = (b"EXISTS", b"RECENT")
# What imapclient, imaplib, ssl and socket raise for a failed, refused or cut connection.
_FAILURES = (imaplib.IMAP4.error, OSError, EOFError)
# Those of them after which the connection is unusable (rather than a NO or BAD answer).
_BROKEN = (imaplib.IMAP4.abort, ProtocolError, OSError, EOFError)
# What imapclient's and imaplib's parsers raise on an answer that makes no sense (a
# UIDVALIDITY of "abc", a truncated FETCH): the server's fault, so an ImapError.
_GARBAGE = (ValueError, IndexError, KeyError, TypeError, AttributeError)
SEARCH_WINDOW = 50_000  # UIDs per UID SEARCH: the answer stays far below 1 MB
FETCH_BYTES_PER_SECOND = 128 * 1024  # a FETCH's deadline grows by a second per 128 KiB
HEADER_BYTES = 64 * 1024  # what is kept of an oversized message: its first 64 KiB of header
_COMMAND_BYTES = 4 << 20  # what any other command's answer may carry, all lines together
# A refusal for a limit rather than for the credentials: RFC 5530's UNAVAILABLE and LIMIT,
# and the wording of servers that say it in words (Dovecot's "Maximum number of connections
# from user+IP exceeded", Gmail's "Too many simultaneous connections").
_LIMIT_WORDING = re.compile(
    r"\[(UNAVAILABLE|LIMIT)\]|too many (simultaneous |concurrent )?connections"
    r"|maximum number of connections|connection limit",
    re.IGNORECASE,
)
# TCP keepalive on every IMAP socket: a NAT box or firewall that forgot a quiet flow (AWS
# NAT: 350 s) drops its packets without a word; unanswered probes end the socket instead
# after about KEEPIDLE + KEEPCNT * KEEPINTVL = 2 minutes.
TCP_KEEPIDLE_SECONDS = 60
TCP_KEEPINTVL_SECONDS = 15
TCP_KEEPCNT = 4
FolderNumbers = tuple[int, int, int]  # (UIDVALIDITY, UIDNEXT, MESSAGES) of a folder


class ImapSession:
    """A connection to one mailbox; `with ImapSession(mailbox) as imap: ...`.

    Folders are opened read-only (EXAMINE) unless a post-action needs to write. The socket
    timeout of the mailbox settings applies to every command, the connection included.
    """

    def __init__(
        self,
        mailbox: MailboxSettings,
        secret: Secret | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.mailbox = mailbox
        self._secret = secret  # None: read_secret() at each connect
        # Set (SIGTERM): every network call gives up within about a second.
        self.stop = stop or threading.Event()
        self._client: BoundedClient | None = None
        self._selected: tuple[str, bool] | None = None  # (folder, readonly)
        self._last_select: dict[bytes, Any] = {}
        self._log = log.bind(mailbox=mailbox.name)

    def __enter__(self) -> ImapSession:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- connection ----------------------------------------------------------------------

    def connect(self) -> None:
        """Connect (verified TLS unless the config says otherwise) and log in.

        Raises ImapAuthError when the server rejects the credentials, ImapError when it
        cannot be reached, times out or fails, ConfigError when the secret or CA file is
        unusable. After an ImapError that broke the connection, `connected` is False:
        `connect()` again (or open a new session)."""
        m = self.mailbox
        if m.security == "none" and not m.allow_plaintext:
            raise ImapError(f"{self._where}: plaintext IMAP is not allowed for this mailbox")
        self.close()
        secret = self._secret or read_secret(m)
        try:
            context = _tls_context(str(m.ca_file) if m.ca_file else None)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"mailbox {m.name}: ca_file: cannot load {m.ca_file}: {err}") from err
        with self._errors("connect"):
            client = BoundedClient(
                m.host,
                m.port,
                tls=context if m.security == "imaps" else None,
                timeout=m.timeout,
                stop=self.stop,
            )
        client.normalise_times = False  # INTERNALDATE with its offset, made UTC below
        _set_keepalive(client.socket())
        try:
            if m.security == "starttls":
                with self._errors("STARTTLS", client):
                    try:
                        client.starttls(context)
                    except CapabilityError as err:
                        raise ImapError(f"{self._where}: the server offers no STARTTLS") from err
            self._login(client, secret)
        except BaseException:
            _shutdown(client)
            raise
        self._client = client
        self._selected = None
        self._log.debug("imap_connected", host=m.host, port=m.port, security=m.security)

    def _login(self, client: BoundedClient, secret: Secret) -> None:
        value = secret.reveal()
        self._arm(client, "LOGIN")
        try:
            if secret.kind == "oauth2":
                client.oauth2_login(self.mailbox.username, value)
            else:
                client.login(self.mailbox.username, value)
        except LoginError as err:
            text = _text(err).replace(value, "********")
            # imapclient turns every failure during login into LoginError, a dropped
            # connection included; and RFC 5530 UNAVAILABLE is no verdict on the password.
            if is_connection_limit(text):
                raise ImapLimitError(f"{self._where}: connection limit: {text}") from None
            if isinstance(err.__context__, imaplib.IMAP4.abort):
                raise ImapError(f"{self._where}: login failed: {text}") from None
            raise ImapAuthError(
                f"{self._where}: login as {self.mailbox.username} rejected: {text}"
            ) from None
        except (*_FAILURES, *_GARBAGE) as err:
            raise ImapError(f"{self._where}: login failed: {_describe(err)}") from None

    def close(self) -> None:
        """Log out; a connection that is already gone is just dropped."""
        client, self._client, self._selected = self._client, None, None
        if client is None:
            return
        try:
            self._arm(client, "LOGOUT", min(self.mailbox.timeout, 5.0))
            client.logout()
        except (*_FAILURES, *_GARBAGE):
            _shutdown(client)

    def _drop(self) -> None:
        client, self._client, self._selected = self._client, None, None
        if client is not None:
            _shutdown(client)

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def tls_version(self) -> str | None:
        """The TLS version in use ("TLSv1.3"), or None on a plaintext connection."""
        sock = self._imap.socket()
        return sock.version() if isinstance(sock, ssl.SSLSocket) else None

    def has_idle(self) -> bool:
        return self._has("IDLE")

    def noop(self) -> None:
        """Keep the connection alive during long work (and notice a dead one)."""
        with self._errors("NOOP"):
            self._imap.noop()

    def list_folders(self) -> list[str]:
        with self._errors("LIST"):
            return [str(name) for _flags, _delimiter, name in self._imap.list_folders()]

    # -- reading -------------------------------------------------------------------------

    def folder_status(self, folder: str) -> tuple[int, int]:
        """(UIDVALIDITY, UIDNEXT) of `folder`, from a fresh EXAMINE, both checked."""
        response = self._select(folder, readonly=True, fresh=True)
        return self._uidvalidity(folder, response), self._uidnumber(folder, response, b"UIDNEXT")

    def message_count(self, folder: str) -> int:
        """EXISTS of `folder` as its last EXAMINE said."""
        response = self._select(folder, readonly=True)
        return number(response.get(b"EXISTS"), f"{self._where}: {folder}: EXISTS", 0)

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

    # -- many folders on few connections (NOTIFY, LIST-STATUS, STATUS) ------------------

    def has(self, capability: str) -> bool:
        """Whether the server announced `capability` (IDLE, NOTIFY, LIST-STATUS...)."""
        return self._has(capability)

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
                raise ImapError(f"{self._where}: LIST-STATUS: {_text(ImapError(*data))}")
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
                raise ImapError(f"{self._where}: NOTIFY SET: {_text(ImapError(*data))}")

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

    # -- helpers -------------------------------------------------------------------------

    @property
    def _imap(self) -> IMAPClient:
        if self._client is None:
            raise ImapError(f"{self._where}: not connected")
        return self._client

    @property
    def _where(self) -> str:
        m = self.mailbox
        return f"{m.name} ({m.host}:{m.port})"

    def _has(self, capability: str) -> bool:
        with self._errors("CAPABILITY"):
            return bool(self._imap.has_capability(capability))

    def _select(self, folder: str, *, readonly: bool, fresh: bool = False) -> dict[bytes, Any]:
        """SELECT/EXAMINE `folder` unless it is open already in a mode that will do."""
        # A read-write SELECT serves reads too: BODY.PEEK[] never sets \Seen.
        open_ok = self._selected in ((folder, readonly), (folder, False))
        if open_ok and not fresh:
            return self._last_select
        command = "EXAMINE" if readonly else "SELECT"
        with self._errors(f"{folder}: {command}"):
            self._selected = None
            response: dict[bytes, Any] = self._imap.select_folder(folder, readonly=readonly)
        self._selected = (folder, readonly)
        self._last_select = response
        return response

    def _uidvalidity(self, folder: str, response: dict[bytes, Any]) -> int:
        return self._uidnumber(folder, response, b"UIDVALIDITY")

    def _uidnumber(self, folder: str, response: dict[bytes, Any], key: bytes) -> int:
        if key not in response:
            raise ImapError(f"{self._where}: {folder}: EXAMINE gave no {key.decode()}")
        top = MAX_UID + 1 if key == b"UIDNEXT" else MAX_UID
        return number(response[key], f"{self._where}: {folder}: {key.decode()}", 1, top)

    def _arm(
        self,
        client: BoundedClient,
        action: str,
        seconds: float | None = None,
        budget: int = 0,
    ) -> None:
        """The limits of the next command: `seconds` (default: the mailbox's timeout, plus
        time for the `budget` bytes of messages it may carry) and its bytes."""
        limit = self.mailbox.max_message_bytes
        if seconds is None:
            seconds = self.mailbox.timeout + budget / FETCH_BYTES_PER_SECOND
        client.reader.arm(
            action,
            seconds,
            max_bytes=_COMMAND_BYTES + budget + budget // 8,
            max_literal=limit if budget else 1 << 20,
        )

    @contextmanager
    def _errors(
        self, action: str, client: BoundedClient | None = None, *, budget: int = 0
    ) -> Iterator[None]:
        """Arm the deadline and budget of the command(s) inside, and turn imapclient,
        socket and TLS failures and unreadable answers into ImapError naming the server
        and action."""
        try:
            client = client or self._client
            if client is not None:
                self._arm(client, action, budget=budget)
            yield
        except ImapError:
            raise
        except _FAILURES as err:  # first: an SSL error is a ValueError too
            if isinstance(err, _BROKEN):
                self._drop()
            text = _describe(err)
            if action == "connect" and is_connection_limit(text):  # a greeting of BYE
                raise ImapLimitError(f"{self._where}: connection limit: {text}") from err
            if action == "connect" and _not_tls(err):
                m = self.mailbox
                raise ImapError(
                    f"{m.name}: the server at {m.host}:{m.port} did not answer TLS; if it"
                    ' offers STARTTLS set security = "starttls"'
                ) from err
            raise ImapError(f"{self._where}: {action}: {text}") from err
        except _GARBAGE as err:
            self._drop()
            raise ImapError(
                f"{self._where}: {action}: unreadable answer from the server"
                f" ({type(err).__name__}: {err})"
            ) from err


_IMAPLIB_PREFIX = re.compile(r"^command: [A-Z]+ => ")


def _not_tls(err: BaseException) -> bool:
    """A TLS handshake answered by something that is no TLS (a plain IMAP greeting)."""
    reason = getattr(err, "reason", None)
    return isinstance(err, ssl.SSLError) and reason in (
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "HTTP_REQUEST",
    )


def _describe(err: BaseException) -> str:
    if isinstance(err, Cutoff):
        return _text(err)
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {err.verify_message}"
    return _text(err) or type(err).__name__


def _text(err: BaseException) -> str:
    text = str(err.args[0]) if len(err.args) == 1 else str(err)
    if text.startswith(("b'", 'b"')):  # imapclient passes the server's bytes through str()
        text = text[2:-1]
    text = _IMAPLIB_PREFIX.sub("", text)  # the action is named by the caller already
    if isinstance(err, imaplib.IMAP4.abort) and text.endswith("socket error: EOF"):
        text = text.removesuffix("socket error: EOF") + "the server closed the connection"
    elif isinstance(err, imaplib.IMAP4.abort) and not isinstance(err, Cutoff):
        text = f"connection lost: {text}"  # BYE (its text), or an answer imaplib gave up on
    return text


def is_connection_limit(text: str) -> bool:
    """Whether a server's refusal speaks of a connection limit rather than credentials."""
    return _LIMIT_WORDING.search(text) is not None


def _numbers(items: dict[Any, Any]) -> FolderNumbers:
    values = {(k.decode() if isinstance(k, bytes) else str(k)).upper(): v for k, v in items.items()}
    try:
        return int(values["UIDVALIDITY"]), int(values["UIDNEXT"]), int(values["MESSAGES"])
    except (KeyError, TypeError, ValueError) as err:
        raise ImapError(f"STATUS gave no usable numbers: {items!r}") from err


def _set_keepalive(sock: socket.socket) -> None:
    """TCP keepalive with short timers (where the platform has them; Linux does)."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (
            ("TCP_KEEPIDLE", TCP_KEEPIDLE_SECONDS),
            ("TCP_KEEPINTVL", TCP_KEEPINTVL_SECONDS),
            ("TCP_KEEPCNT", TCP_KEEPCNT),
        ):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _has_new_mail(responses: Iterable[tuple[Any, ...]]) -> bool:
    return any(len(r) > 1 and r[1] in _NEW_MAIL and r[0] != 0 for r in responses)


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _chunks(uids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(uids), _STORE_CHUNK):
        yield list(uids[start : start + _STORE_CHUNK])


def _shutdown(client: IMAPClient) -> None:
    with suppress(*_FAILURES):
        client.shutdown()


@functools.lru_cache(maxsize=16)
def _tls_context(cafile: str | None) -> ssl.SSLContext:
    """A verifying TLS context per CA file, made once: loading the system CA bundle costs
    20-30 ms, most of an empty poll. (A changed CA file is read again after a restart.)"""
    return ssl.create_default_context(cafile=cafile)
