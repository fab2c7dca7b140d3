"""One poll of one IMAP mailbox: every folder's new mail into the database, exactly once.

Per folder: compare UIDVALIDITY with the stored cursor (a change re-scans from UID 0; the
pipeline's SHA-256 and Message-ID rules keep that free of duplicates), list the new UIDs,
fetch them in bounded batches and store each batch in one transaction that also moves the
cursor. A server that breaks the rules the cursor relies on (UIDNEXT going back, a UID
above UIDNEXT, more messages at or below the cursor than the last full read saw) gets the
same safe re-scan, logged as `imap_rule_violation`, instead of mail silently skipped. A
message over `max_message_bytes` is stored as `failed` ("too large") from its headers and
the cursor passes it. A thread fetches the next batch while this one stores the last, so
the transport adds little to the pipeline's time. Post-actions (`seen`, `move:`) run only after the
commit. A folder that fails is recorded in `mailbox_state` and the others are still polled.
"""

from __future__ import annotations

import contextvars
import dataclasses
import itertools
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import structlog

from govfeed import pipeline
from govfeed.analysis import Analysis, Analyzer
from govfeed.config import MailboxSettings, Settings
from govfeed.decide import TrustPolicy
from govfeed.errors import (
    ConfigError,
    GovfeedError,
    ImapAuthError,
    ImapError,
    ImapLimitError,
    StoreError,
)
from govfeed.imap import ImapSession
from govfeed.models import RawMessage
from govfeed.store import Store

log = structlog.get_logger(__name__)

# A NOOP when the poll's connection has been quiet this long (the database is slow, say),
# so neither the server's autologout nor a NAT box drops it in the middle of the work.
KEEPALIVE_SECONDS = 60.0
# Below this many new messages a folder is analyzed in-process: a worker pool pays for its
# start-up only on a backlog (measured: even at ~250 messages, 2 cores).
POOL_MIN_MESSAGES = 256
BIG_BATCH_BYTES = 8 << 20  # a batch this big is stored before the next is fetched
_ERROR_CHARS = 300  # mailbox_state.last_error stays short: status prints it on one line


@dataclass
class FolderResult:
    """What one poll did in one folder."""

    folder: str
    uidvalidity: int | None = None
    uidnext: int | None = None
    last_uid: int = 0  # the stored cursor after this poll
    fetched: int = 0
    rescanned: bool = False  # UIDVALIDITY new or changed, or a rule violation: from UID 0
    error: str | None = None


@dataclass
class PollResult:
    """What one poll of a mailbox did; `ok` when every folder succeeded."""

    mailbox: str
    summary: pipeline.Summary = field(default_factory=pipeline.Summary)
    folders: list[FolderResult] = field(default_factory=list)
    connect_error: GovfeedError | None = None  # the login or connection failed
    stopped: bool = False  # the stop event ended the poll early (committed work is kept)
    seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [f.folder for f in self.folders if f.error is not None]

    @property
    def ok(self) -> bool:
        return self.connect_error is None and not self.failed

    @property
    def auth_failed(self) -> bool:
        return isinstance(self.connect_error, ImapAuthError)

    @property
    def limited(self) -> bool:
        """The server refused the connection for its connection limit."""
        return isinstance(self.connect_error, ImapLimitError)

    def line(self) -> str:
        """One line for a terminal: `dod: read 3, new releases 2, ... (failed: INBOX: ...)`."""
        problems = "; ".join(f"{f.folder}: {f.error}" for f in self.folders if f.error)
        return f"{self.mailbox}: {self.summary.line()}" + (
            f" (failed: {problems})" if problems else ""
        )


def poll_mailbox(
    store: Store,
    settings: Settings,
    mailbox: MailboxSettings,
    *,
    stop: threading.Event | None = None,
    session: ImapSession | None = None,
    folders: Sequence[str] | None = None,
) -> PollResult:
    """Poll every folder of `mailbox` (or only `folders`) once and store what is new,
    judging senders by the mailbox's authentication policy from `settings`.

    Never raises for an IMAP or secret problem: a folder that fails gets its error in
    `mailbox_state.last_error` and in the result. Raises StoreError when the database
    itself fails. With `stop` set, returns after the batch being stored is committed.
    With `session` (the daemon's poll connection), works on it, connecting it when needed,
    and leaves it open; else opens a connection of its own and logs out at the end.
    """
    started = time.monotonic()
    poll = _Poll(
        store,
        session or ImapSession(mailbox, stop=stop),
        PollResult(mailbox.name),
        settings.authentication_for(mailbox.name),
        stop,
    )
    with structlog.contextvars.bound_contextvars(mailbox=mailbox.name):
        try:
            for folder in mailbox.folders if folders is None else folders:
                if poll.stopping:
                    poll.result.stopped = True
                    break
                poll.result.folders.append(_poll_folder(poll, folder))
        except sqlite3.Error as err:
            raise StoreError(f"database {store.path}: {err}") from err
        finally:
            if session is None:
                poll.session.close()
        poll.result.seconds = time.monotonic() - started
        _log_finished(poll.result)
    return poll.result


@dataclass
class _Poll:
    """What every step of one poll works with."""

    store: Store
    session: ImapSession
    result: PollResult
    policy: TrustPolicy
    stop: threading.Event | None

    @property
    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()


def _poll_folder(poll: _Poll, folder: str) -> FolderResult:
    """One folder, with its failure recorded rather than raised."""
    outcome = FolderResult(folder)
    with structlog.contextvars.bound_contextvars(folder=folder):
        try:
            if poll.result.connect_error is None and not poll.session.connected:
                _connect(poll)  # also again after a folder broke the connection
            if poll.result.connect_error is not None:
                outcome.error = _error_text(poll.result.connect_error)
            else:
                _sync_folder(poll, outcome)
        except (ImapError, ConfigError) as err:
            if poll.stopping:  # the stop request cut the connection: no failure of the folder
                poll.result.stopped = True
                log.info("folder_stopped", reason=str(err))
                return outcome
            outcome.error = _error_text(err)
            log.error("folder_failed", error=str(err))
        if outcome.error is not None:
            poll.store.save_poll_error(poll.session.mailbox.name, folder, outcome.error)
    return outcome


def _connect(poll: _Poll) -> None:
    error = connect(poll.session)
    if error is not None and poll.stopping:  # the stop request cut the connection
        poll.result.stopped = True
        raise ImapError("stopped while connecting")  # the folder loop ends: stopping
    poll.result.connect_error = error


def connect(session: ImapSession, *, log_auth: bool = True) -> GovfeedError | None:
    """Connect `session`; the error (logged: `login_failed` for rejected credentials,
    `connection_limit` for a server's limit, else `connect_failed`) or None. `log_auth`
    False leaves `login_failed` to a caller that logs it with its retry delay."""
    try:
        session.connect()
    except ImapAuthError as err:
        if log_auth:
            log.error("login_failed", error=str(err))
        return err
    except ImapLimitError as err:
        log.warning("connection_limit", error=str(err))
        return err
    except (ImapError, ConfigError) as err:
        log.error("connect_failed", error=str(err))
        return err
    return None


def save_connect_error(store: Store, name: str, folders: Sequence[str], err: GovfeedError) -> None:
    """Record a failed login or connection on each of `folders`."""
    for folder in folders:
        store.save_poll_error(name, folder, _error_text(err))


def _sync_folder(poll: _Poll, outcome: FolderResult) -> None:
    session, store = poll.session, poll.store
    name, folder = session.mailbox.name, outcome.folder
    uidvalidity, uidnext = session.folder_status(folder)
    exists = session.message_count(folder)
    known_validity, last_uid, since_until = store.load_cursor(name, folder)
    outcome.uidvalidity, outcome.uidnext = uidvalidity, uidnext
    top = uidnext - 1  # every UID up to here existed at the EXAMINE
    if known_validity != uidvalidity:
        if known_validity is not None:
            log.warning("uidvalidity_changed", old=known_validity, new=uidvalidity)
        # `since` limits the mail there is now, also when this scan is interrupted.
        since_until = top if session.mailbox.since is not None else None
        store.start_scan(name, folder, uidvalidity, since_until)
        outcome.rescanned, last_uid = True, 0
    elif top < last_uid:
        _rescan(poll, outcome, "uidnext_backwards", f"UIDNEXT {uidnext} <= UID {last_uid}")
        last_uid = 0
    above = session.uid_above(folder, top)
    if above is not None:
        detail = f"UID {above} exists, UIDNEXT {uidnext}"
        if not outcome.rescanned:
            _rescan(poll, outcome, "uid_above_uidnext", detail)
            last_uid = 0
        else:
            log.warning("imap_rule_violation", rule="uid_above_uidnext", detail=detail)
        top = above
    since: date | None = None
    if since_until is not None and last_uid < since_until:
        since = session.mailbox.since
    seen = None if outcome.rescanned or since is not None else store.load_exists(name, folder)
    # UIDNEXT says whether anything is new: an empty poll needs no SEARCH.
    found = 0
    if top > last_uid:
        windows = session.iter_new_uids(folder, last_uid, since, since_until, top)
        stopped, found = _fetch_and_store(poll, outcome, windows, min(top - last_uid, exists))
        if stopped:
            poll.result.stopped = True
            return
    if seen is not None and exists - found > seen:
        detail = f"{exists - found - seen} more message(s) at or below UID {last_uid}"
        _rescan(poll, outcome, "uid_below_cursor", detail)
        windows = session.iter_new_uids(folder, 0, None, None, top)
        if _fetch_and_store(poll, outcome, windows, exists)[0]:
            poll.result.stopped = True
            return
    # Every UID up to `top` existed when the SEARCH ran, so all of them were read (or
    # skipped on purpose by `since`): the cursor can move to `top`. Saving it also stamps
    # last_poll_at/last_success_at, so an empty poll counts as a success.
    outcome.last_uid = max(outcome.last_uid, last_uid, top)
    with store.transaction():
        store.save_cursor(name, folder, uidvalidity, outcome.last_uid)
        store.save_exists(name, folder, exists)


def _rescan(poll: _Poll, outcome: FolderResult, rule: str, detail: str) -> None:
    """Read the folder again from its first UID: the server broke a rule the cursor
    relies on. De-duplication makes the second read of a stored message a no-op."""
    assert outcome.uidvalidity is not None
    log.warning("imap_rule_violation", rule=rule, detail=detail, action="rescan")
    name = poll.session.mailbox.name
    _known, _last, since_until = poll.store.load_cursor(name, outcome.folder)
    poll.store.start_scan(name, outcome.folder, outcome.uidvalidity, since_until)
    outcome.rescanned = True


Analyzed = tuple[RawMessage, Analysis | None]  # a message and what the analyzer made of it


def _fetch_and_store(
    poll: _Poll, outcome: FolderResult, windows: Iterator[list[int]], expected: int
) -> tuple[bool, int]:
    """Store the UIDs of `windows` (about `expected` of them) batch by batch, moving
    `outcome.last_uid`; (True when stopped early, how many UIDs the windows held).

    The fetched messages flow through the analyzer as one stream, as a file import's do
    (no pause at batch ends); its output is cut back into the fetched batches, each written
    in one transaction with its cursor. A fetch error ends the stream: the batches fetched
    before it are still stored, then it is raised.
    """
    assert outcome.uidvalidity is not None
    name = poll.session.mailbox.name
    prefetch = _Prefetcher(poll.session, outcome.folder, windows)
    # A worker pool for a big backlog only: it starts in ~0.3 s.
    workers = None if expected >= POOL_MIN_MESSAGES else 0
    analyzer = Analyzer(workers, poll.policy)
    stream = analyzer.stream(prefetch.messages(), skip=lambda r: pipeline.known(poll.store, r))
    group: list[Analyzed] = []
    try:
        for item in itertools.chain(stream, [None]):  # None: flush what is left at the end
            if item is not None:
                group.append(_mark_too_large(item, prefetch.too_large, poll.session.mailbox))
            while prefetch.batches and len(group) >= prefetch.batches[0][1]:
                last_uid, count = prefetch.batches.popleft()
                if poll.stopping and any(a and a.error for _, a in group[:count]):
                    # A stop signal sent to the whole process group (Ctrl-C, systemd's
                    # default KillMode) also kills the analyzer's workers: their messages
                    # come back failed. Leave the batch to the next poll instead.
                    log.info("batch_left_for_next_poll", last_uid=last_uid)
                    return True, prefetch.found
                cursor = pipeline.Cursor(name, outcome.folder, outcome.uidvalidity, last_uid)
                _save_analyzed(poll.store, group[:count], poll.result.summary, cursor)
                prefetch.committed([raw.uid for raw, _ in group[:count] if raw.uid is not None])
                outcome.last_uid, outcome.fetched = last_uid, outcome.fetched + count
                del group[:count]
                if poll.stopping:
                    return True, prefetch.found
            item = None  # stored: not held while the next message is fetched and analyzed
    finally:
        prefetch.close()
        analyzer.close()
    if prefetch.failure is not None:
        raise prefetch.failure
    return False, prefetch.found


def _mark_too_large(
    item: Analyzed, too_large: dict[int, int], mailbox: MailboxSettings
) -> Analyzed:
    """A message fetched by its header only (over max_message_bytes) is stored failed,
    with the header's fields (subject, sender) so that it shows in status and Datasette."""
    raw, analysis = item
    size = too_large.get(raw.uid) if raw.uid is not None else None
    if size is None or analysis is None:
        return item
    error = f"too large: {size} bytes > limit {mailbox.max_message_bytes}"
    log.warning("message_too_large", uid=raw.uid, size=size, limit=mailbox.max_message_bytes)
    marked = dataclasses.replace(raw, server_size=size)  # messages.server_size says so
    return marked, dataclasses.replace(analysis, result=None, error=error)


def _save_analyzed(
    store: Store, group: list[Analyzed], summary: pipeline.Summary, cursor: pipeline.Cursor
) -> None:
    """Store a batch analyzed already (one transaction that also moves the cursor), logged."""
    started = time.monotonic()
    pipeline.save_analyzed(store, group, summary, cursor)
    seconds = round(time.monotonic() - started, 3)
    log.info("batch_stored", messages=len(group), last_uid=cursor.last_uid, seconds=seconds)


# What the fetch thread hands over: a batch, the error that ended it, or None at the end.
_Item = tuple[int, list[RawMessage]] | BaseException | None


class _Prefetcher:
    """Fetches batches in a thread, one ahead of the caller, and runs post-actions.

    The thread owns the IMAP session until `close()` joins it: between fetches it runs the
    post-actions of the batches the caller has committed, and while the caller is slow it
    keeps the connection alive with NOOP. Iterating yields (last UID of the batch's range,
    messages); a fetch error is raised in the caller's thread after the batches before it.
    """

    def __init__(self, session: ImapSession, folder: str, windows: Iterator[list[int]]) -> None:
        self._session = session
        self._folder = folder
        self._windows = windows  # searched in this thread, one window at a time
        self.found = 0  # UIDs the windows held (final once the stream has ended)
        # One batch waits in the queue while the caller stores another: bounded memory.
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=1)
        self._done: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        self._quit = threading.Event()
        self._taken = threading.Event()  # the caller took the batch handed over last
        self._stored = threading.Event()  # ... and stored it, or asks for more
        self._last_command = time.monotonic()
        self.batches: deque[tuple[int, int]] = deque()
        self.too_large: dict[int, int] = {}  # UIDs fetched by their header only: size
        self.failure: ImapError | None = None
        context = contextvars.copy_context()  # the thread logs with mailbox and folder bound
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name=f"fetch-{folder}", daemon=True
        )
        self._thread.start()

    def messages(self) -> Iterator[RawMessage]:
        """The fetched messages, one by one; `batches` learns each batch's (last UID of its
        range, size) before its messages come. A fetch error ends the stream, kept in
        `failure`."""
        try:
            for last_uid, batch in self:
                self.batches.append((last_uid, len(batch)))
                yield from batch
                del batch  # not held while the next batch is fetched
        except ImapError as err:
            self.failure = err

    def __iter__(self) -> Iterator[tuple[int, list[RawMessage]]]:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                # The caller waits for more: what it holds cannot be stored before more
                # comes (the worker pool hands back whole chunks only), so the fetch of
                # the next batch must not wait for that commit (it did: a deadlock).
                self._stored.set()
                try:
                    item = self._queue.get(timeout=1.0)
                except queue.Empty:
                    if self._thread.is_alive() or not self._queue.empty():
                        continue
                    raise ImapError(f"{self._folder}: the fetch thread ended early") from None
            self._taken.set()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            item = None  # not held while the next batch is fetched

    def committed(self, uids: list[int]) -> None:
        """The caller has committed these messages: their post-action may run."""
        self._stored.set()
        if self._session.mailbox.post_action != "none" and uids:
            self._done.put(uids)

    def close(self) -> None:
        """Stop fetching, wait for the thread, then run the post-actions still owed."""
        self._quit.set()
        while True:  # unblock a thread waiting to hand over a batch
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()
        self._post_actions()

    def _run(self) -> None:
        last: _Item = None
        try:
            for chunk in self._chunks():
                self._post_actions()
                if self._quit.is_set():
                    return
                # One chunk may come in several batches: bytes in flight are bounded too.
                for batch in self._session.fetch_batches(self._folder, chunk, len(chunk)):
                    self._last_command = time.monotonic()
                    self.too_large.update(batch.too_large)  # before the hand-over: seen after
                    self._stored.clear()
                    self._hand_over((batch.last_uid, batch))
                    # Big messages: the next is fetched once this one is stored (or the
                    # caller asks for more), so one of them at a time is in memory when
                    # analysed in-process (parsing one costs about 3 times its size).
                    big = sum(len(raw.data) for raw in batch) >= BIG_BATCH_BYTES
                    del batch  # the caller's now: not held here while the next is fetched
                    self._wait_taken(self._stored if big else self._taken)
                    if self._quit.is_set():
                        return
        except Exception as err:  # noqa: BLE001 - handed to the caller's thread, raised there
            last = err
        self._hand_over(last)

    def _chunks(self) -> Iterator[list[int]]:
        size = self._session.mailbox.batch_size
        for window in self._windows:
            self.found += len(window)
            for start in range(0, len(window), size):
                yield window[start : start + size]

    def _wait_taken(self, event: threading.Event) -> None:
        """Fetch the next batch only once the caller has taken this one (or, for a big one,
        stored it): at most one batch is being analyzed and one fetched. Keeps the
        connection alive and runs post-actions meanwhile."""
        while not self._quit.is_set() and not event.wait(0.5):
            quiet_for = time.monotonic() - self._last_command
            if quiet_for >= KEEPALIVE_SECONDS:
                self._keepalive(quiet_for)
            self._post_actions()

    def _hand_over(self, item: _Item) -> None:
        while not self._quit.is_set():
            quiet_for = time.monotonic() - self._last_command
            if quiet_for >= KEEPALIVE_SECONDS:
                self._keepalive(quiet_for)
                continue
            try:  # short waits: `close()` may ask this thread to quit meanwhile
                self._taken.clear()
                self._queue.put(item, timeout=min(0.5, KEEPALIVE_SECONDS - quiet_for))
                return
            except queue.Full:
                self._post_actions()

    def _keepalive(self, quiet_for: float) -> None:
        self._last_command = time.monotonic()
        if not self._session.connected:
            return
        try:
            self._session.noop()
        except ImapError as err:  # the next command would fail the same way, and say so
            log.warning("imap_keepalive_failed", error=str(err))
            return
        log.debug("imap_keepalive", quiet_seconds=round(quiet_for, 1))

    def _post_actions(self) -> None:
        uids: list[int] = []
        while True:
            try:
                uids += self._done.get_nowait()
            except queue.Empty:
                break
        if not uids:
            return
        session, mailbox = self._session, self._session.mailbox
        if not session.connected:
            log.warning("post_action_skipped", messages=len(uids), reason="connection lost")
            return
        if mailbox.move_target is not None:
            session.move(self._folder, uids, mailbox.move_target)
        else:
            session.mark_seen(self._folder, uids)
        self._last_command = time.monotonic()
        log.debug("post_action_done", action=mailbox.post_action, messages=len(uids))


def _error_text(err: GovfeedError) -> str:
    text = str(err)
    if isinstance(err, ImapAuthError):
        text = f"login failed: {text}"
    return text[:_ERROR_CHARS]


def _log_finished(result: PollResult) -> None:
    fields = {
        **result.summary.as_dict(),
        "folders": len(result.folders),
        "failed_folders": result.failed,
        "stopped": result.stopped,
        "seconds": round(result.seconds, 3),
    }
    if result.ok:
        log.info("poll_finished", **fields)
    else:
        log.warning("poll_finished", **fields)


def check_mailbox(mailbox: MailboxSettings) -> list[str]:
    """Log in to `mailbox` and list its folders (for `govfeed check-config --connect`).

    Raises ImapAuthError, ImapError or ConfigError as `ImapSession.connect` does.
    """
    with ImapSession(mailbox) as session:
        return session.list_folders()
