"""Parse + extract, the pure CPU-bound part of the pipeline, in worker processes.

`analyze` turns raw bytes into an `Analysis` and never raises: this is the per-message
error boundary for everything that reads the mail. `analyze_stream` runs it over a stream
of messages in a small process pool with a bounded window of work in flight, so memory
stays flat and the main process (reading, de-duplicating, writing SQLite) works while the
workers parse. Workers ignore signals meant for the main process; a worker that dies
anyway breaks the pool, which is made anew and given the chunks in flight once more;
only a chunk that breaks the new pool too is recorded as failed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal

import structlog

from govfeed.auth import AuthPolicy, authenticate
from govfeed.errors import GovfeedError
from govfeed.extract import extract_release
from govfeed.formats import compress_raw, iso
from govfeed.models import Ignored, ParsedMessage, RawMessage, Release
from govfeed.parse import parse_message

if TYPE_CHECKING:  # not at run time: the workers import this module, not pydantic
    from govfeed.config import AuthenticationSettings

log = structlog.get_logger(__name__)

CHUNK = 32  # messages per task: big enough to amortise the inter-process hop
MIN_PARALLEL = 2 * CHUNK  # fewer messages than this are analysed in-process
_MAX_ERROR_CHARS = 1000
PARENT_CHECK_SECONDS = 0.5  # how soon a worker notices that the main process died
_WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@dataclass(frozen=True, slots=True)
class WorkerPolicy:
    """A plain copy of `AuthenticationSettings` for the parsing workers: unpickling the
    pydantic model would import pydantic (and govfeed.config) in every worker."""

    trusted_authserv_ids: tuple[str, ...]
    unauthenticated: Literal["publish", "quarantine", "reject"]
    sender_domains: tuple[str, ...]
    dkim_verify: bool

    @classmethod
    def of(cls, settings: AuthPolicy) -> WorkerPolicy:
        return cls(
            tuple(settings.trusted_authserv_ids),
            settings.unauthenticated,
            tuple(settings.sender_domains),
            settings.dkim_verify,
        )


@dataclass(frozen=True, slots=True)
class Analysis:
    """What parse and extract made of one message; pure data, picklable."""

    fields: dict[str, Any]  # messages-table columns taken from the headers (and `auth`)
    result: Release | Ignored | None  # None after an error
    error: str | None
    compressed: bytes | None = None  # the raw bytes as stored, made here to spare the writer
    action: str = "publish"  # the sender verdict's action: publish, quarantine or reject
    auth_reason: str | None = None  # why the sender was not trusted, when it was not


def analyze(data: bytes, policy: AuthPolicy) -> Analysis:
    """Parse, extract and authenticate one message; any failure becomes an error string."""
    analysis = _analyze(data, policy)
    return replace(analysis, compressed=compress_raw(data))


def _analyze(data: bytes, policy: AuthPolicy) -> Analysis:
    try:
        parsed = parse_message(RawMessage(data=data, source="analysis"))
    except Exception as err:  # noqa: BLE001 - per-message boundary: record, keep going
        return Analysis({}, None, _error_text("parse", err))
    fields = _header_fields(parsed)
    try:
        result = extract_release(parsed)
        verdict = authenticate(
            parsed.headers,
            parsed.from_.address if parsed.from_ else None,
            parsed.from_.name if parsed.from_ else None,
            policy,
            raw=data,
            dkim_verify=policy.dkim_verify,
            claims_government=isinstance(result, Release),
        )
    except Exception as err:  # noqa: BLE001 - per-message boundary: record, keep going
        return Analysis(fields, None, _error_text("extract", err))
    fields["auth"] = verdict.summary()
    if isinstance(result, Release):
        sender = result.sender
        fields.update(
            reply_to=sender.reply_to or fields.get("reply_to"),
            list_unsubscribe=sender.list_unsubscribe,
            subscriber=sender.subscriber,
        )
    reason = None if verdict.action == "publish" else verdict.reason
    return Analysis(fields, result, None, action=verdict.action, auth_reason=reason)


def analyze_many(datas: list[bytes], policy: AuthPolicy) -> list[Analysis]:
    return [analyze(data, policy) for data in datas]


def _worker_init(parent: int) -> None:
    """Workers leave SIGINT and SIGTERM to the main process: a Ctrl-C or a signal to the
    whole process group must not kill them under the pool; the main process shuts the
    pool down itself. Only the main process's own SIGTERM ends a worker (the pool uses it
    to put down the workers of a broken pool: ignoring it hangs the pool).

    They do not outlive it either: a worker holds both ends of the pool's task queue, so
    it would wait for work for ever after a SIGKILL of the main process."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)  # the guard below takes them
    threading.Thread(target=_guard, args=(parent,), daemon=True).start()


def _guard(parent: int) -> None:
    """A worker's signal thread: exit on the main process's SIGTERM or when it is gone."""
    while os.getppid() == parent:
        info = signal.sigtimedwait(_WORKER_SIGNALS, PARENT_CHECK_SECONDS)
        if info is not None and info.si_signo == signal.SIGTERM and info.si_pid == parent:
            break
    os._exit(1)


def default_workers() -> int:
    """One worker per core, at most 4: they share the cores with the writing main process."""
    return max(1, min(4, (os.cpu_count() or 1)))


class Analyzer:
    """Runs `analyze` over streams, in a lazily started process pool when it pays."""

    def __init__(
        self, workers: int | None = None, policy: AuthenticationSettings | None = None
    ) -> None:
        if policy is None:
            from govfeed.config import AuthenticationSettings

            policy = AuthenticationSettings()
        self.workers = default_workers() if workers is None else workers
        self.policy = policy
        self._worker_policy = WorkerPolicy.of(policy)
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def stream(
        self,
        raws: Iterable[RawMessage],
        *,
        skip: Callable[[RawMessage], bool] | None = None,
        expected: int | None = None,
    ) -> Iterator[tuple[RawMessage, Analysis | None]]:
        """Yield (raw, analysis) in input order; analysis is None for raws `skip` accepts.

        `expected` (the number of messages, when known) keeps small streams in-process.
        """
        if self.workers < 2 or (expected is not None and expected < MIN_PARALLEL):
            for raw in raws:
                yield (
                    raw,
                    None if skip is not None and skip(raw) else analyze(raw.data, self.policy),
                )
            return
        yield from self._parallel(iter(raws), skip)

    def _parallel(
        self, raws: Iterator[RawMessage], skip: Callable[[RawMessage], bool] | None
    ) -> Iterator[tuple[RawMessage, Analysis | None]]:
        window: deque[tuple[list[RawMessage], list[bool], Future[list[Analysis]]]] = deque()
        limit = 3 * self.workers  # chunks in flight: bounded memory, workers never idle
        while True:
            chunk = list(islice(raws, CHUNK))
            if chunk:
                skipped = [skip is not None and skip(raw) for raw in chunk]
                todo = [raw.data for raw, s in zip(chunk, skipped, strict=True) if not s]
                window.append((chunk, skipped, self._submit(todo)))
            while window and (len(window) >= limit or not chunk):
                yield from self._collect(*window.popleft())
            if not chunk:
                return

    def _submit(self, datas: list[bytes]) -> Future[list[Analysis]]:
        if self._pool is None:
            # spawn, not fork: the daemon has threads (scheduler, IDLE) and an open database.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        try:
            return self._pool.submit(analyze_many, datas, self._worker_policy)
        except BrokenProcessPool:
            self.close()
            return self._submit(datas)

    def _collect(
        self, chunk: list[RawMessage], skipped: list[bool], future: Future[list[Analysis]]
    ) -> Iterator[tuple[RawMessage, Analysis | None]]:
        todo = [raw.data for raw, s in zip(chunk, skipped, strict=True) if not s]
        try:
            results = iter(future.result())
        except (BrokenProcessPool, CancelledError):  # cancelled: by closing a broken pool
            # A worker died: a signal while it started (before it could ignore one), the
            # OOM killer, or a message that crashes the interpreter. The chunks in flight
            # are lost with the pool; each is tried once more in a fresh one, and only a
            # chunk that breaks that one too is recorded as failed.
            self.close()
            try:
                results = iter(self._submit(todo).result())
            except BrokenProcessPool as err:
                self.close()
                log.warning("analysis_worker_died", messages=len(todo))
                results = iter([Analysis({}, None, _error_text("analysis", err))] * len(todo))
        for raw, was_skipped in zip(chunk, skipped, strict=True):
            yield raw, None if was_skipped else next(results)


def _header_fields(parsed: ParsedMessage) -> dict[str, Any]:
    sender = parsed.from_
    attachments = [
        {"filename": a.filename, "content_type": a.content_type, "size": a.size}
        for a in parsed.attachments
    ]
    return {
        "message_id": parsed.message_id,
        "from_name": sender.name if sender else None,
        "from_address": sender.address if sender else None,
        "reply_to": ", ".join(a.address for a in parsed.reply_to) or None,
        "to_address": ", ".join(a.address for a in parsed.to) or None,
        "list_unsubscribe": parsed.header("List-Unsubscribe"),
        "subject": parsed.subject or None,
        "sent_at": iso(parsed.sent_at),
        "defects": _json_list(list(parsed.defects)),
        "attachments": _json_list(attachments),
    }


def _json_list(items: list[Any]) -> str | None:
    return json.dumps(items) if items else None


def _error_text(stage: str, err: BaseException) -> str:
    kind = "" if isinstance(err, GovfeedError) else f"{type(err).__name__}: "
    return f"{stage}: {kind}{err}"[:_MAX_ERROR_CHARS]
