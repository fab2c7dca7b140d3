"""The daemon's jobs: a mailbox's poll with its backoff, and the IDLE watcher of a folder.

`Runner.run` is what APScheduler calls for a mailbox; it is the per-job error boundary
(DESIGN.md): whatever fails is logged and retried with exponential backoff and jitter
(slowly after a rejected login), and the daemon lives on. `IdleWatcher` waits in IMAP IDLE
on its own connection and asks for a poll as soon as mail arrives. Neither calls the
scheduler: they post requests to the daemon's main loop (see `govfeed.daemon`).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Protocol

import structlog

from govfeed import sync
from govfeed.config import MailboxSettings, Settings
from govfeed.errors import ConfigError, GovfeedError, ImapAuthError, ImapError
from govfeed.imap import ImapSession
from govfeed.store import Store

log = structlog.get_logger(__name__)

BACKOFF_FIRST_SECONDS = 1.0  # first retry after a connection failure; doubles, with jitter
BACKOFF_MAX_SECONDS = 300.0
AUTH_RETRY_SECONDS = 300.0  # a rejected login is retried slowly: accounts get locked
AUTH_RETRY_MAX_SECONDS = 3600.0
# RFC 2177: servers may end an IDLE after 30 minutes; renewing well before that also keeps
# NAT boxes from dropping a connection that says nothing.
IDLE_RENEW_SECONDS = 10 * 60.0
JOB_PREFIX = "poll:"


def retry_delay(failures: int, first: float, cap: float) -> float:
    """Exponential backoff: `first` doubled per failure up to `cap`, plus up to 25 % jitter
    so that many daemons (or folders) do not retry in step."""
    base = min(cap, first * 2.0 ** max(failures - 1, 0))
    return base + random.uniform(0, base / 4)  # noqa: S311 - jitter, not cryptography


class Host(Protocol):
    """What a job needs from the daemon that runs it."""

    settings: Settings
    stop: threading.Event

    def request_run(self, job_id: str, delay: float = 0.0) -> None: ...


class Runner:
    """The poll job of one mailbox, and its backoff after failures."""

    def __init__(self, host: Host, mailbox: MailboxSettings) -> None:
        self.host = host
        self.mailbox = mailbox
        self.job_id = JOB_PREFIX + mailbox.name
        self.pending = threading.Event()  # new mail was announced since the last poll began
        self.failures = 0

    def run(self) -> None:
        """One poll of the mailbox; never raises."""
        if self.host.stop.is_set():
            return
        self.pending.clear()
        settings, mailbox = self.host.settings, self.mailbox
        try:
            with Store(settings.database.path) as store:
                result = sync.poll_mailbox(store, settings, mailbox, stop=self.host.stop)
        except GovfeedError as err:
            log.error("poll_failed", mailbox=mailbox.name, error=str(err))
            self._retry(auth=False)
            return
        except Exception:  # the per-job boundary: log, back off, keep the daemon alive
            log.exception("poll_crashed", mailbox=mailbox.name)
            self._retry(auth=False)
            return
        if result.ok:
            self.failures = 0
        else:
            self._retry(auth=result.auth_failed)

    def _retry(self, *, auth: bool) -> None:
        self.failures += 1
        if auth:
            delay = retry_delay(self.failures, AUTH_RETRY_SECONDS, AUTH_RETRY_MAX_SECONDS)
        else:
            delay = retry_delay(self.failures, BACKOFF_FIRST_SECONDS, self.mailbox.poll_interval)
        log.info(
            "poll_retry_scheduled",
            mailbox=self.mailbox.name,
            failures=self.failures,
            retry_in=round(delay, 1),
        )
        self.host.request_run(self.job_id, delay)


class IdleWatcher:
    """A thread that waits in IMAP IDLE on one folder and calls `wake` on new mail.

    Its own connection, with IDLE renewed every IDLE_RENEW_SECONDS; reconnects with
    backoff (slowly after a rejected login). After every (re)connection it calls `wake`
    once, as mail may have come while nobody watched. Setting `stop` ends it within a
    second or so (it logs out); a daemon thread, so it never holds up the process's exit.
    """

    def __init__(self, mailbox: MailboxSettings, folder: str, wake: Callable[[], None]) -> None:
        self.mailbox = mailbox
        self.folder = folder
        self._wake = wake
        self.stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"idle:{mailbox.name}/{folder}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread (after `stop.set()`); True once it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        with structlog.contextvars.bound_contextvars(mailbox=self.mailbox.name, folder=self.folder):
            session = ImapSession(self.mailbox, stop=self.stop)
            try:
                self._watch(session)
            finally:
                session.close()

    def _watch(self, session: ImapSession) -> None:
        failures = 0
        known_uidnext = 0
        while not self.stop.is_set():
            try:
                if not session.connected:
                    session.connect()
                    if not session.has_idle():
                        log.info("idle_unsupported")
                        return
                    known_uidnext = session.folder_status(self.folder)[1]
                    failures = 0
                    log.debug("idle_watching", uidnext=known_uidnext)
                    self._notify()
                if session.idle_wait(self.folder, IDLE_RENEW_SECONDS, known_uidnext, self.stop):
                    known_uidnext = session.folder_status(self.folder)[1]
                    log.info("idle_new_mail", uidnext=known_uidnext)
                    self._notify()
                elif not self.stop.is_set():
                    log.debug("idle_renewed")
            except ImapAuthError as err:
                failures += 1
                delay = retry_delay(failures, AUTH_RETRY_SECONDS, AUTH_RETRY_MAX_SECONDS)
                log.error("login_failed", error=str(err), retry_in=round(delay, 1))
                self.stop.wait(delay)
            except (ImapError, ConfigError) as err:
                failures += 1
                delay = retry_delay(failures, BACKOFF_FIRST_SECONDS, BACKOFF_MAX_SECONDS)
                log.warning("idle_failed", error=str(err), retry_in=round(delay, 1))
                session.close()
                self.stop.wait(delay)

    def _notify(self) -> None:
        if not self.stop.is_set():
            self._wake()
