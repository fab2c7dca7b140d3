"""The watching connections of a mailbox: IDLE on one folder, or NOTIFY on all of them.

Each watcher is a thread holding one connection in its budget slot (`govfeed.connections`).
It tells its host (the mailbox's `Runner`) about new mail (`wake`), asks it to check its
folders after every (re)connection, as mail may have come while nobody watched (`check`),
and reports a refusal for the server's connection limit (`limited`) and then ends: the
runner sweeps its folders until the budget allows the slot again. IDLE and NOTIFY are
renewed every `keepalive_interval` with a reply deadline (the mailbox's `timeout`), so a
connection that went silent is noticed and replaced. Setting `stop` ends a watcher within a
second or so (it logs out); watchers are daemon threads and never hold up an exit.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from typing import Protocol

import structlog

from govfeed.config import MailboxSettings
from govfeed.connections import (
    IDLE,
    NOTIFY,
    retry_delay,
)
from govfeed.errors import ConfigError, ImapAuthError, ImapError, ImapLimitError
from govfeed.formats import utc_now
from govfeed.imap import ImapSession
from govfeed.store import Store

log = structlog.get_logger(__name__)

BACKOFF_FIRST_SECONDS = 1.0  # first retry after a connection failure; doubles, with jitter
BACKOFF_MAX_SECONDS = 300.0
AUTH_RETRY_SECONDS = 300.0  # a rejected login is retried slowly: accounts get locked
AUTH_RETRY_MAX_SECONDS = 3600.0


class WatchHost(Protocol):
    """What a watcher reports to (the mailbox's runner)."""

    def wake(self, folders: Collection[str]) -> None: ...
    def check(self, folders: Collection[str]) -> None: ...
    def limited(self, slot: int) -> None: ...


class Watcher:
    """The thread of one watching connection; `IdleWatcher` and `NotifyWatcher` say how
    it waits."""

    mode = ""

    def __init__(
        self, mailbox: MailboxSettings, slot: int, folders: Sequence[str], host: WatchHost
    ) -> None:
        self.mailbox = mailbox
        self.slot = slot
        self.folders = tuple(folders)
        self.host = host
        self.stop = threading.Event()
        self.live = False  # connected and waiting: its folders need no sweep
        self.checked_at: str | None = None  # when the server last answered it
        name = folders[0] if len(folders) == 1 else f"{len(folders)} folders"
        self._thread = threading.Thread(
            target=self._run, name=f"{self.mode}:{mailbox.name}/{name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread (after `stop.set()`); True once it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        folder = self.folders[0] if len(self.folders) == 1 else None
        context = {"mailbox": self.mailbox.name, "watch": self.mode, "slot": self.slot}
        with structlog.contextvars.bound_contextvars(**context, folder=folder):
            session = ImapSession(self.mailbox, stop=self.stop)
            try:
                self._loop(session)
            finally:
                self.live = False
                session.close()

    def _loop(self, session: ImapSession) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                if not session.connected:
                    self.live = False
                    session.connect()
                    if not self._begin(session):
                        return
                    failures, self.live = 0, True
                    self.checked_at = utc_now()
                    log.debug(f"{self.mode}_watching", folders=len(self.folders))
                    self.host.check(self.folders)  # mail may have come while nobody watched
                changed = self._wait(session)
                self.checked_at = utc_now()
                if changed:
                    log.info(f"{self.mode}_new_mail", folders=sorted(changed)[:10])
                    self.host.wake(changed)
                elif not self.stop.is_set():
                    log.debug(f"{self.mode}_renewed")
            except ImapLimitError as err:
                log.warning("connection_limit", error=str(err), slot=self.slot)
                self.host.limited(self.slot)
                return  # the runner sweeps these folders while the budget is lower
            except ImapAuthError as err:
                failures += 1
                delay = retry_delay(failures, AUTH_RETRY_SECONDS, AUTH_RETRY_MAX_SECONDS)
                log.error("login_failed", error=str(err), retry_in=round(delay, 1))
                self.stop.wait(delay)
            except (ImapError, ConfigError) as err:
                failures += 1
                self.live = False
                delay = retry_delay(failures, BACKOFF_FIRST_SECONDS, BACKOFF_MAX_SECONDS)
                log.warning(f"{self.mode}_failed", error=str(err), retry_in=round(delay, 1))
                session.close()
                self.stop.wait(delay)

    def _begin(self, session: ImapSession) -> bool:
        """Set up a fresh connection; False when the server cannot watch this way."""
        raise NotImplementedError

    def _wait(self, session: ImapSession) -> Collection[str]:
        """Wait up to `keepalive_interval` (renewing once); the folders with new mail."""
        raise NotImplementedError


class IdleWatcher(Watcher):
    """IMAP IDLE (RFC 2177) on one folder."""

    mode = IDLE

    def __init__(
        self, mailbox: MailboxSettings, slot: int, folders: Sequence[str], host: WatchHost
    ) -> None:
        super().__init__(mailbox, slot, folders[:1], host)
        self._uidnext = 0

    def _begin(self, session: ImapSession) -> bool:
        if not session.has_idle():
            log.info("idle_unsupported")
            return False
        self._uidnext = session.folder_status(self.folders[0])[1]
        return True

    def _wait(self, session: ImapSession) -> Collection[str]:
        folder = self.folders[0]
        interval = self.mailbox.keepalive_interval
        if not session.idle_wait(folder, interval, self._uidnext, self.stop):
            return ()
        self._uidnext = session.folder_status(folder)[1]
        return (folder,)


class NotifyWatcher(Watcher):
    """IMAP NOTIFY (RFC 5465): one connection learns of new mail in every folder."""

    mode = NOTIFY

    def _begin(self, session: ImapSession) -> bool:
        if not (session.has("NOTIFY") and session.has_idle()):
            log.info("notify_unsupported")
            return False
        session.notify_set(self.folders)
        return True

    def _wait(self, session: ImapSession) -> Collection[str]:
        changed = session.notify_wait(self.mailbox.keepalive_interval, self.stop)
        return changed & set(self.folders)


def swept_changes(session: ImapSession, store: Store, folders: Sequence[str]) -> list[str]:
    """Those of `folders` with mail not yet stored (or a new UIDVALIDITY), judged by their
    numbers on the server (one LIST-STATUS, or STATUS each) against the stored cursors; a
    folder the server did not describe is counted in, so that its sync says why."""
    numbers = session.folder_numbers(folders)
    name = session.mailbox.name
    moved = []
    for folder in folders:
        found = numbers.get(folder)
        known_validity, last_uid, _since_until = store.load_cursor(name, folder)
        if found is None or found[0] != known_validity or found[1] - 1 > last_uid:
            moved.append(folder)
    return moved
