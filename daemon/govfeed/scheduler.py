"""The daemon's job for one mailbox: its poll connection, sweeps, syncs and watchers.

`Runner.run` is what APScheduler calls for a mailbox, every `sweep_interval` (or sooner,
when a watcher reports new mail). It is the per-job error boundary (DESIGN.md): whatever
fails is logged and retried with exponential backoff and jitter (slowly after rejected
credentials, within a minute after a server's connection limit), and the daemon lives on.

A run works on the mailbox's poll connection, which stays open between runs (a NOOP finds
out whether it survived; a dropped one is replaced) and is slot 0 of the mailbox's
connection budget (`govfeed.connections`). It syncs every folder each `poll_interval`, the
folders the watchers reported in between, and the folders no live watcher covers once a
`sweep_interval` (LIST-STATUS or STATUS, then only those whose numbers moved). Then it
starts or stops watchers (`govfeed.watch`) to match what the budget allows, and writes how
each folder is watched for `govfeed status`. Neither it nor the watchers call the
scheduler: they post requests to the daemon's main loop (see `govfeed.daemon`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from typing import Protocol

import structlog

from govfeed import sync
from govfeed.config import MailboxSettings, Settings
from govfeed.connections import POLL, SWEEP, ConnectionBudget, Plan, plan, retry_delay
from govfeed.errors import GovfeedError, ImapAuthError, ImapError, ImapLimitError
from govfeed.formats import utc_now
from govfeed.imap import ImapSession
from govfeed.store import Store
from govfeed.watch import (
    AUTH_RETRY_MAX_SECONDS,
    AUTH_RETRY_SECONDS,
    IdleWatcher,
    NotifyWatcher,
    Watcher,
    swept_changes,
)

__all__ = ["JOB_PREFIX", "Host", "IdleWatcher", "Runner", "retry_delay"]

log = structlog.get_logger(__name__)

LIMIT_RETRY_FIRST_SECONDS = 2.0  # a connection limit: retried within seconds...
LIMIT_RETRY_MAX_SECONDS = 60.0  # ...to a minute, never the long login backoff
PROBE_AFTER_SECONDS = 30.0  # a poll connection quiet this long gets a NOOP before use
WATCHER_STOP_SECONDS = 3.0  # how long a replaced watcher gets to log out
JOB_PREFIX = "poll:"


class Host(Protocol):
    """What a job needs from the daemon that runs it."""

    settings: Settings
    stop: threading.Event

    def request_run(self, job_id: str, delay: float = 0.0) -> None: ...


class Runner:
    """The job of one mailbox, its poll connection, its watchers and its backoff."""

    def __init__(self, host: Host, mailbox: MailboxSettings) -> None:
        self.host = host
        self.mailbox = mailbox
        self.job_id = JOB_PREFIX + mailbox.name
        self.pending = threading.Event()  # work was asked for since the last run began
        self.failures = 0
        self.budget = ConnectionBudget(mailbox.max_connections)
        self.session = ImapSession(mailbox, stop=host.stop)  # SIGTERM ends its calls
        self._lock = threading.Lock()  # the sets below, filled by watcher threads
        self._to_sync: set[str] = set()
        self._to_check: set[str] = set()
        self._running = threading.Lock()  # held by a run: the session is in use
        self._retired = False
        self._next_full = 0.0  # monotonic time of the next poll of every folder
        self._next_sweep = 0.0
        self._last_used = 0.0  # the poll connection's last command
        self._capabilities: tuple[bool, bool] | None = None  # (NOTIFY, IDLE) once known
        self._plan: Plan | None = None
        self._watchers: dict[int, Watcher] = {}  # by budget slot
        self._checked: dict[str, str] = {}  # folder: when a sweep or poll last checked it
        self._saved: dict[str, tuple[str, str | None]] = {}

    @property
    def interval(self) -> float:
        """How often the job runs: sweeps, keepalive and polls all fall on its ticks."""
        m = self.mailbox
        return float(min(m.poll_interval, m.sweep_interval, m.keepalive_interval))

    # -- from watcher threads --------------------------------------------------------------

    def wake(self, folders: Collection[str]) -> None:
        """New mail in `folders`: sync them now."""
        with self._lock:
            self._to_sync.update(folders)
        self._request()

    def check(self, folders: Collection[str]) -> None:
        """Nobody watched `folders` for a while: compare their numbers now."""
        with self._lock:
            self._to_check.update(folders)
        self._request()

    def limited(self, slot: int) -> None:
        """A watcher's connection was refused for the server's limit."""
        hold = self.budget.limit_hit()
        log.info(
            "connections_reduced",
            mailbox=self.mailbox.name,
            limit=self.budget.limit,
            seconds=round(hold),
        )
        self._request()

    def _request(self) -> None:
        self.pending.set()
        self.host.request_run(self.job_id)

    # -- the daemon's side ---------------------------------------------------------------

    def reconfigure(self, mailbox: MailboxSettings) -> None:
        """New settings (a reload): the next run reconnects and replaces the watchers."""
        self.mailbox, self.failures, self._next_full = mailbox, 0, 0.0
        self.budget = ConnectionBudget(mailbox.max_connections)
        self.stop_watchers()

    def retire(self) -> None:
        """The mailbox went away or the daemon stops: watchers stop, the connection is
        closed (now, or by the run that is using it)."""
        self._retired = True
        self.stop_watchers()
        if self._running.acquire(blocking=False):
            try:
                self.session.close()
            finally:
                self._running.release()

    def stop_watchers(self, wait: float = 0.0) -> bool:
        """Stop every watcher; with `wait`, give them that long to log out (True if all
        ended)."""
        watchers = list(self._watchers.values())
        for watcher in watchers:
            watcher.stop.set()
        deadline = time.monotonic() + wait
        return all(w.join(max(deadline - time.monotonic(), 0.0)) for w in watchers)

    # -- the job -------------------------------------------------------------------------

    def run(self) -> None:
        """One run of the mailbox's job; never raises."""
        if self.host.stop.is_set() or self._retired:
            return
        self.pending.clear()
        with self._running, structlog.contextvars.bound_contextvars(mailbox=self.mailbox.name):
            try:
                database = self.host.settings.database
                with Store(database.path, group=database.group) as store:
                    self._run(store)
            except GovfeedError as err:
                log.error("poll_failed", error=str(err))
                self._retry(err)
            except Exception:  # the per-job boundary: log, back off, keep the daemon alive
                log.exception("poll_crashed")
                self._retry(None)
            finally:
                if self._retired:
                    self.session.close()

    def _run(self, store: Store) -> None:
        mailbox, now = self.mailbox, time.monotonic()
        if self.session.mailbox != mailbox:
            self.session.close()
            self.session = ImapSession(mailbox, stop=self.host.stop)
        full = now >= self._next_full
        with self._lock:
            to_sync, self._to_sync = self._to_sync, set()
            to_check, self._to_check = self._to_check, set()
        sweep_due = self._plan is not None and now >= self._next_sweep
        if sweep_due:
            to_check.update(self._unwatched())
        quiet = now - self._last_used >= mailbox.keepalive_interval
        if not (full or to_sync or to_check or quiet):
            self._finish(store)
            return
        # A sync is checked first (a NOOP): a connection the server dropped meanwhile would
        # fail its first folder. A check needs none: it is retried once on a new one.
        error = self._connect(store, probe=full or bool(to_sync))
        if error is not None:
            with self._lock:  # the work is still owed: the retry does it
                self._to_sync |= to_sync
                self._to_check |= to_check
            self._retry(error)
            return
        if sweep_due:
            self._next_sweep = now + mailbox.sweep_interval
        try:
            self._work(store, full, set(to_sync), to_check)
        except GovfeedError:
            with self._lock:  # a dropped connection, say: the retry does it all again
                self._to_sync |= to_sync
                self._to_check |= to_check
            if full:
                self._next_full = 0.0
            raise
        self._last_used = time.monotonic()
        self._finish(store)

    def _work(self, store: Store, full: bool, to_sync: set[str], to_check: set[str]) -> None:
        """Sync every folder (`full`), or those asked for and those a check finds moved."""
        mailbox = self.mailbox
        if full:
            self._next_full = time.monotonic() + mailbox.poll_interval
            to_sync = set(mailbox.folders)
        elif to_check:
            checked = [f for f in mailbox.folders if f in to_check]
            to_sync |= set(self._changes(store, checked))
            self._stamp(checked)
            log.debug("folders_checked", folders=len(checked), moved=sorted(to_sync)[:10])
        if to_sync:
            self._sync(store, [f for f in mailbox.folders if f in to_sync], full)
        elif time.monotonic() - self._last_used >= mailbox.keepalive_interval:
            self.session.noop()  # unless `_connect` just probed it

    def _sync(self, store: Store, folders: list[str], full: bool) -> None:
        result = sync.poll_mailbox(
            store,
            self.host.settings,
            self.mailbox,
            stop=self.host.stop,
            session=self.session,
            folders=folders,
        )
        self._stamp([f.folder for f in result.folders if f.error is None])
        if result.ok:
            self.failures = 0
            return
        if full:
            self._next_full = 0.0
        with self._lock:
            self._to_sync.update(result.failed)
        self._retry(result.connect_error or ImapError("a folder failed"))

    def _changes(self, store: Store, folders: list[str]) -> list[str]:
        """`swept_changes` on the poll connection, again on a new one if it had dropped."""
        try:
            return swept_changes(self.session, store, folders)
        except ImapError as err:
            if self.session.connected:
                raise
            log.info("poll_connection_lost", error=str(err))
        error = self._connect(store)
        if error is not None:
            raise error
        return swept_changes(self.session, store, folders)

    def _connect(self, store: Store, *, probe: bool = False) -> GovfeedError | None:
        """The poll connection, checked with a NOOP first when `probe` or when it has been
        quiet a while."""
        session = self.session
        quiet = time.monotonic() - self._last_used >= PROBE_AFTER_SECONDS
        if session.connected and (probe or quiet):
            try:
                session.noop()
                self._last_used = time.monotonic()
            except ImapError as err:
                log.info("poll_connection_lost", error=str(err))
                session.close()
        if session.connected:
            return None
        error = sync.connect(session, log_auth=False)  # _retry logs it with its delay
        if isinstance(error, ImapLimitError):
            hold = self.budget.limit_hit()
            log.info("connections_reduced", limit=self.budget.limit, seconds=round(hold))
            self._update_watchers()  # the highest watcher gives way to the poll
        elif error is not None:
            sync.save_connect_error(store, self.mailbox.name, self.mailbox.folders, error)
        else:
            self._capabilities = (session.has("NOTIFY"), session.has_idle())
            self._last_used = time.monotonic()
        return error

    def _retry(self, error: GovfeedError | None) -> None:
        self.failures += 1
        if isinstance(error, ImapAuthError):
            delay = retry_delay(self.failures, AUTH_RETRY_SECONDS, AUTH_RETRY_MAX_SECONDS)
        elif isinstance(error, ImapLimitError):
            delay = retry_delay(self.failures, LIMIT_RETRY_FIRST_SECONDS, LIMIT_RETRY_MAX_SECONDS)
        else:
            delay = retry_delay(self.failures, 1.0, self.mailbox.poll_interval)
        if isinstance(error, ImapAuthError):  # one line per rejected login, with its delay
            log.error("login_failed", error=str(error), retry_in=round(delay, 1))
        log.info("poll_retry_scheduled", failures=self.failures, retry_in=round(delay, 1))
        self.host.request_run(self.job_id, delay)

    # -- watchers and what status shows ----------------------------------------------------

    def _unwatched(self) -> list[str]:
        """The folders no live watcher covers: the sweep's."""
        if self._plan is None:
            return []
        covered = {f for w in self._watchers.values() if w.live for f in w.folders}
        return [f for f in self.mailbox.folders if f not in covered and f not in self._plan.polled]

    def _finish(self, store: Store) -> None:
        if not self._retired and not self.host.stop.is_set():
            self._update_watchers()
        self._save_watch(store)

    def _update_watchers(self) -> None:
        """Start and stop watchers to match the plan for the budget's current limit."""
        if self._capabilities is None:
            return  # the poll connection has not logged in yet: no watcher either
        has_notify, has_idle = self._capabilities
        m = self.mailbox
        wanted = plan(
            m.folders, self.budget.limit, watch=m.idle, has_notify=has_notify, has_idle=has_idle
        )
        slots: dict[int, tuple[type[Watcher], tuple[str, ...]]] = (
            {1: (NotifyWatcher, wanted.notify)}
            if wanted.notify
            else {n: (IdleWatcher, (folder,)) for n, folder in enumerate(wanted.idle, start=1)}
        )
        for slot, watcher in list(self._watchers.items()):
            kind = slots.get(slot)
            keep = kind == (type(watcher), watcher.folders) and watcher.mailbox == m
            if keep and watcher.alive:
                continue
            watcher.stop.set()
            # The slot is free once its connection is closed: never two at a time.
            if watcher.join(WATCHER_STOP_SECONDS):
                del self._watchers[slot]
        for slot, (kind_, folders) in slots.items():
            if slot not in self._watchers:
                watcher = kind_(m, slot, folders, self)
                self._watchers[slot] = watcher
                watcher.start()
        self._plan = wanted

    def _stamp(self, folders: Collection[str]) -> None:
        now = utc_now()
        for folder in folders:
            self._checked[folder] = now

    def _save_watch(self, store: Store) -> None:
        """Write each folder's watch mode and last check where they changed."""
        if self._plan is None:
            return
        by_watcher = {f: w for w in self._watchers.values() for f in w.folders}
        rows = {}
        for folder in self.mailbox.folders:
            watcher = by_watcher.get(folder)
            mode = self._plan.modes.get(folder, SWEEP)
            if watcher is not None and not watcher.live:
                mode = SWEEP if mode != POLL else mode  # reconnecting: swept meanwhile
            checked = self._checked.get(folder)
            if watcher is not None and watcher.live and watcher.checked_at:
                checked = max(checked or "", watcher.checked_at)
            rows[folder] = (mode, checked)
        changed = {f: row for f, row in rows.items() if self._saved.get(f) != row}
        if changed:
            with store.transaction():
                store.save_watch(self.mailbox.name, changed)
            self._saved.update(changed)
