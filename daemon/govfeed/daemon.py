"""`govfeed run`: the long-running daemon that keeps the database in step with the mailboxes.

APScheduler 3.x runs one job per mailbox (`max_instances=1`, `coalesce=True`, jitter; the
job, its poll connection, sweeps, watchers and backoff are in `govfeed.scheduler`); a
mailbox's watchers (NOTIFY or IDLE, `govfeed.watch`) ask for a run as soon as mail arrives,
and the mailbox never holds more than `max_connections` connections. Signals: SIGTERM and
SIGINT let the batch being stored commit, then exit 0; SIGHUP reloads the configuration
(a bad one is logged and the old one kept). sd_notify READY, WATCHDOG and STOPPING under
systemd `Type=notify`; the WAL is checkpointed every few minutes.

Only the main thread calls the scheduler: `shutdown(wait=True)` holds the scheduler's job
store lock while it waits for running jobs, so a job (or an event listener) that called
`modify_job` then would deadlock. Jobs and watchers post requests to the main loop instead.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from types import FrameType

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from govfeed import sync
from govfeed.config import MailboxSettings, Settings
from govfeed.errors import ConfigError
from govfeed.scheduler import JOB_PREFIX, Runner
from govfeed.store import Store

log = structlog.get_logger(__name__)

WATCHER_STOP_SECONDS = 3.0  # at exit, how long watchers get to log out
CHECKPOINT_SECONDS = 300.0  # wal_checkpoint(TRUNCATE), so readers cannot grow the WAL
MAX_JITTER_SECONDS = 30.0  # at most this much (or a tenth of the interval) added per poll
_TICK_SECONDS = 5.0  # the main loop's longest sleep without a watchdog


class Notifier:
    """sd_notify(3) over the unix datagram socket in $NOTIFY_SOCKET; silent without one."""

    def __init__(self, address: str | None, watchdog_seconds: float | None = None) -> None:
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # an abstract socket
        self.address = address if address and address[0] in "/\0" else None
        self.watchdog_interval = watchdog_seconds / 2 if watchdog_seconds else None

    @classmethod
    def from_environment(cls) -> Notifier:
        """What systemd passes (systemd.exec(5)); not configuration, so not in config.py."""
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        ours = not pid or pid == str(os.getpid())
        seconds = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and ours else None
        return cls(os.environ.get("NOTIFY_SOCKET"), seconds)

    def send(self, *states: str) -> None:
        if self.address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(states).encode())
        except OSError as err:
            log.warning("sd_notify_failed", error=str(err))


class Daemon:
    """Scheduler, IDLE watchers, signals and sd_notify around `sync.poll_mailbox`."""

    def __init__(self, load_settings: Callable[[], Settings]) -> None:
        self._load = load_settings
        self.settings = load_settings()
        self.stop = threading.Event()
        self._poke = threading.Event()  # wakes the main loop
        self._reload_requested = False
        self._requests: queue.SimpleQueue[tuple[str, float]] = queue.SimpleQueue()
        self._runners: dict[str, Runner] = {}
        self._notifier = Notifier.from_environment()
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        self._scheduler.add_listener(self._job_done, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        # The scheduler's own INFO/WARNING lines would bypass structlog; we log the events.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)

    # -- requests from other threads ----------------------------------------------------

    def request_run(self, job_id: str, delay: float = 0.0) -> None:
        """Ask the main loop to run job `job_id` in `delay` seconds (thread-safe)."""
        self._requests.put((job_id, delay))
        self._poke.set()

    def _job_done(self, event: JobExecutionEvent) -> None:
        # Runs after the executor released the job's instance; a wake that came while it
        # ran (and whose run was skipped for max_instances) is honoured now.
        if not event.job_id.startswith(JOB_PREFIX):
            return
        runner = self._runners.get(event.job_id.removeprefix(JOB_PREFIX))
        if runner is not None and runner.pending.is_set():
            self.request_run(runner.job_id)

    # -- the main loop -------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM or SIGINT; returns the exit code (0)."""
        Store(
            self.settings.database.path, group=self.settings.database.group
        ).close()  # an unusable database fails right here
        with _signals(self._on_stop, self._on_reload):
            self._scheduler.start()
            try:
                self._scheduler.add_job(
                    self._checkpoint, IntervalTrigger(seconds=CHECKPOINT_SECONDS), id="checkpoint"
                )
                for mailbox in self.settings.mailboxes:
                    self._add(mailbox)
                if not self.settings.mailboxes:
                    log.warning("no_mailboxes", config=str(self.settings.source))
                self._notifier.send("READY=1", f"STATUS={self._status()}")
                log.info("daemon_started", mailboxes=sorted(self._runners), pid=os.getpid())
                self._loop()
            finally:
                self.stop.set()
                self._notifier.send("STOPPING=1")
                log.info("daemon_stopping")
                self._scheduler.shutdown(wait=True)  # a running poll commits its batch first
                self._stop_runners()
        self._checkpoint()
        log.info("daemon_stopped")
        return 0

    def _loop(self) -> None:
        interval = self._notifier.watchdog_interval
        next_ping = time.monotonic()
        while not self.stop.is_set():
            if interval is not None and time.monotonic() >= next_ping:
                if self._scheduler.running:
                    self._notifier.send("WATCHDOG=1")
                next_ping = time.monotonic() + interval
            timeout = _TICK_SECONDS if interval is None else next_ping - time.monotonic()
            self._poke.wait(max(timeout, 0.0))
            self._poke.clear()
            if self._reload_requested and not self.stop.is_set():
                self._reload_requested = False
                self._reload()
            self._apply_requests()

    def _apply_requests(self) -> None:
        while True:
            try:
                job_id, delay = self._requests.get_nowait()
            except queue.Empty:
                return
            when = datetime.now(UTC) + timedelta(seconds=delay)
            with suppress(JobLookupError):  # the mailbox went away in a reload
                self._scheduler.modify_job(job_id, next_run_time=when)

    def _on_stop(self, signum: int) -> None:
        if self.stop.is_set():  # a second signal: the operator will not wait
            log.warning("daemon_killed", signal=signal.Signals(signum).name)
            os._exit(1)
        log.info("stop_requested", signal=signal.Signals(signum).name)
        self.stop.set()
        self._poke.set()

    def _on_reload(self, signum: int) -> None:
        self._reload_requested = True
        self._poke.set()

    # -- mailboxes -----------------------------------------------------------------------

    def _add(self, mailbox: MailboxSettings) -> None:
        """Schedule a mailbox's job (the first run now); for a mailbox already known,
        take its new settings (its backoff is forgotten, its watchers replaced)."""
        runner = self._runners.get(mailbox.name)
        if runner is None:
            runner = self._runners[mailbox.name] = Runner(self, mailbox)
        else:
            runner.reconfigure(mailbox)
        jitter = min(runner.interval / 10, MAX_JITTER_SECONDS)
        self._scheduler.add_job(
            runner.run,
            IntervalTrigger(seconds=runner.interval, jitter=jitter),
            id=runner.job_id,
            name=f"poll {mailbox.name}",
            next_run_time=datetime.now(UTC),
            replace_existing=True,
        )

    def _remove(self, name: str) -> None:
        runner = self._runners.pop(name)
        with suppress(JobLookupError):
            self._scheduler.remove_job(runner.job_id)
        runner.retire()

    def _reload(self) -> None:
        try:
            settings = self._load()
        except ConfigError as err:
            log.error("config_reload_failed", error=str(err))
            return
        old = {m.name: m for m in self.settings.mailboxes}
        self.settings = settings
        new = {m.name: m for m in settings.mailboxes}
        for name in old.keys() - new.keys():
            self._remove(name)
        # Changed mailboxes start afresh; so do failing ones: after a SIGHUP the operator
        # (who may have fixed a password file) expects a retry now, not after the backoff.
        changed = sorted(m.name for m in settings.mailboxes if old.get(m.name) != m)
        failing = sorted(name for name, r in self._runners.items() if r.failures and name in new)
        for name in sorted({*changed, *failing}):
            self._add(new[name])
        log.info("config_reloaded", mailboxes=sorted(new), changed=changed, retried=failing)
        self._notifier.send(f"STATUS={self._status()}")

    def _stop_runners(self) -> None:
        """Stop every watcher and close the poll connections (no job runs any more); a
        watcher stuck in a network call is a daemon thread and does not hold up the exit."""
        runners = list(self._runners.values())
        for runner in runners:
            runner.retire()
        deadline = time.monotonic() + WATCHER_STOP_SECONDS
        for runner in runners:
            runner.stop_watchers(max(deadline - time.monotonic(), 0.0))

    def _status(self) -> str:
        return f"watching {len(self._runners)} mailbox(es)"

    def _checkpoint(self) -> None:
        try:
            with Store(self.settings.database.path, group=self.settings.database.group) as store:
                if not store.checkpoint():
                    log.debug("checkpoint_incomplete", reason="a reader holds an old snapshot")
        except Exception as err:  # noqa: BLE001 - a job of its own: log and try next time
            log.warning("checkpoint_failed", error=str(err))


@contextmanager
def _signals(
    on_stop: Callable[[int], None], on_reload: Callable[[int], None] | None = None
) -> Iterator[None]:
    """Install handlers for SIGTERM and SIGINT (and SIGHUP), restoring the old ones after.
    Only the main thread may do so; elsewhere (tests in a thread) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        on_stop(signum)

    def reload(signum: int, frame: FrameType | None) -> None:
        if on_reload is not None:
            on_reload(signum)

    wanted = {signal.SIGTERM: stop, signal.SIGINT: stop}
    if on_reload is not None:
        wanted[signal.SIGHUP] = reload
    previous = {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def poll_once(settings: Settings) -> list[sync.PollResult]:
    """Poll every configured mailbox once (`govfeed poll`). SIGTERM or SIGINT ends it after
    the batch being stored is committed. Raises StoreError when the database fails."""
    stop = threading.Event()

    def on_stop(signum: int) -> None:
        if stop.is_set():  # a second signal: the operator will not wait
            log.warning("poll_killed", signal=signal.Signals(signum).name)
            os._exit(1)
        log.info("stop_requested", signal=signal.Signals(signum).name)
        stop.set()

    with _signals(on_stop), Store(settings.database.path, group=settings.database.group) as store:
        return [sync.poll_mailbox(store, settings, m, stop=stop) for m in settings.mailboxes]
