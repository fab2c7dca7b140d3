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

import copyreg
import dataclasses
import json
import multiprocessing
import os
import re
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from govfeed.decide import Assessment, Candidate, SenderFacts, TrustPolicy, assess
from govfeed.dedupe import Identity, identify, sha256_hex
from govfeed.errors import GovfeedError
from govfeed.formats import compress_raw, iso
from govfeed.memory import return_big_buffers
from govfeed.models import (
    ContractAward,
    Ignored,
    Link,
    MessageFacts,
    ParsedMessage,
    RawMessage,
    Release,
    Sender,
)

if TYPE_CHECKING:  # not at run time: the workers import this module, not pydantic
    from govfeed.config import AuthenticationSettings

CHUNK = 32  # messages per task: big enough to amortise the inter-process hop
# Raw bytes per task, and in flight in all (held by the main process until a task's results
# are back): a backlog of multi-megabyte messages must not fill a worker or the main
# process with hundreds of them. Bulletins (~50 KB) never reach either bound.
CHUNK_BYTES = 4 << 20
WINDOW_BYTES = 16 << 20
MIN_PARALLEL = 2 * CHUNK  # fewer messages than this are analysed in-process
_MAX_ERROR_CHARS = 1000
PARENT_CHECK_SECONDS = 0.5  # how soon a worker notices that the main process died
_WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_ID_HEADERS = frozenset({"x-bulletin-id", "x-mailing-id"})  # read by extract/facts.py


@dataclass(frozen=True, slots=True)
class Analysis:
    """What parse, authenticate, extract and assess made of one message; picklable."""

    facts: MessageFacts
    result: Release | Ignored | None  # None after an error
    error: str | None
    assessment: Assessment | None = None  # None after an error
    body_sha256: str | None = None  # the bytes after the header block: copies differ above it
    compressed: bytes | None = None  # the raw bytes as stored, made here to spare the writer
    sha256: str | None = None  # of the raw bytes: the writer's first duplicate check
    identity: Identity | None = None  # the release's keys and content hash (a Release only)

    def candidate(self) -> Candidate:
        """The writer's view (decide.Candidate)."""
        if self.error is not None or self.assessment is None:
            return Candidate("failed", None, self.body_sha256, self.error)
        if isinstance(self.result, Ignored) or self.result is None:
            reason = self.result.reason if self.result else None
            return Candidate("ignored", self.assessment.sender, self.body_sha256, reason)
        a = self.assessment
        return Candidate(a.status, a.sender, self.body_sha256, a.reason)


def analyze(
    data: bytes, policy: TrustPolicy | AuthenticationSettings, *, compress: bool = True
) -> Analysis:
    """Parse, authenticate, extract and assess one message; any failure is an error string.

    `compress=False` when the raw is stored already (reparse): nothing would use it."""
    analysis = _analyze(data, as_trust_policy(policy))
    # Everything the writer needs that is pure is made here, in the worker: the main
    # process writes SQLite for every worker and is the bottleneck on two cores.
    result = analysis.result
    return replace(
        analysis,
        body_sha256=body_sha256(data),
        compressed=compress_raw(data) if compress else None,
        sha256=sha256_hex(data),
        identity=identify(result) if isinstance(result, Release) else None,
    )


def body_sha256(data: bytes) -> str:
    """SHA-256 of the body bytes: two deliveries of one mail differ only in their headers."""
    at = data.find(b"\r\n\r\n")
    cut = at + 4 if at >= 0 else data.find(b"\n\n") + 2  # 1: no blank line, no body
    # A view, not a slice: no copy of the body (24 MB for a 24 MB message).
    return sha256_hex(memoryview(data)[cut:] if cut > 1 else b"")


def _analyze(data: bytes, policy: TrustPolicy) -> Analysis:
    from govfeed.auth import authenticate, signed_headers  # see _load_readers
    from govfeed.extract import extract_release
    from govfeed.parse import parse_message

    try:
        parsed = parse_message(RawMessage(data=data, source="analysis"))
    except Exception as err:  # noqa: BLE001 - per-message boundary: record, keep going
        return Analysis(MessageFacts(), None, _error_text("parse", err))
    facts = _header_facts(parsed)
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
        signed = signed_headers(parsed.headers, verdict)
        # An identity header the authenticating signature does not cover is the sender's
        # word only: the release must not take its bulletin id from it (rare: read again).
        if isinstance(result, Release) and any(n.lower() in _ID_HEADERS for n, _ in parsed.headers):
            kept = tuple((n, v) for n, v in parsed.headers if n.lower() not in _ID_HEADERS - signed)
            if len(kept) < len(parsed.headers):
                result = extract_release(replace(parsed, headers=kept))
    except Exception as err:  # noqa: BLE001 - per-message boundary: record, keep going
        return Analysis(facts, None, _error_text("extract", err))
    facts = replace(facts, auth=verdict.summary())
    sender = SenderFacts(
        from_address=facts.from_address,
        from_name=facts.from_name,
        auth_result=verdict.result,
        auth_action=verdict.action,
        auth_reason=verdict.reason,
        unauthenticated=policy.unauthenticated,
        header_account=parsed.header("X-Accountcode"),
        list_account=_list_account(parsed.header("List-Unsubscribe")),
        signed=signed,
    )
    written = result.agency if isinstance(result, Release) else None
    assessment = assess(
        sender, policy.registry, is_release=isinstance(result, Release), agency_as_written=written
    )
    if isinstance(result, Release):
        s = result.sender
        facts = replace(
            facts,
            reply_to=s.reply_to or facts.reply_to,
            list_unsubscribe=s.list_unsubscribe,
            subscriber=s.subscriber,
        )
    return Analysis(facts, result, None, assessment)


def _list_account(value: str | None) -> str | None:
    """The GovDelivery account a List-Unsubscribe URL names, if any."""
    from govfeed.extract.links import account_code_from_url  # see _load_readers

    for url in re.findall(r"https?://[^\s<>,]+", value or "")[:4]:
        code = account_code_from_url(url)
        if code:
            return code
    return None


def analyze_many(datas: list[bytes], policy: TrustPolicy, compress: bool) -> list[Analysis]:
    return [analyze(data, policy, compress=compress) for data in datas]


def _worker_init(parent: int) -> None:
    """Workers leave SIGINT and SIGTERM to the main process: a Ctrl-C or a signal to the
    whole process group must not kill them under the pool; the main process shuts the
    pool down itself. Only the main process's own SIGTERM ends a worker (the pool uses it
    to put down the workers of a broken pool: ignoring it hangs the pool).

    They do not outlive it either: a worker holds both ends of the pool's task queue, so
    it would wait for work for ever after a SIGKILL of the main process."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)  # the guard below takes them
    return_big_buffers()  # a big message's memory goes back after it (see memory.py)
    threading.Thread(target=_guard, args=(parent,), daemon=True).start()
    _load_readers()


def _load_readers() -> None:
    """Import what reads a message: the parser (mail-parser), the extractors (selectolax,
    nh3) and the authenticator (dkimpy), about 0.2 s. `_analyze` imports them where it
    runs, so the main process of an import with workers never does (they were half of
    its start-up, before the first message could go to a worker); a worker does as it
    starts, while the main process opens the database and reads the first messages."""
    import govfeed.auth
    import govfeed.extract
    import govfeed.parse  # noqa: F401


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
        self,
        workers: int | None = None,
        policy: TrustPolicy | AuthenticationSettings | None = None,
        *,
        compress: bool = True,
    ) -> None:
        self.workers = default_workers() if workers is None else workers
        # Resolved on first use: an AuthenticationSettings (or None) needs the config
        # module, which `start` must not wait for.
        self._policy = policy
        self.compress = compress  # False: the raws are stored already (reparse)
        self._pool: ProcessPoolExecutor | None = None

    @property
    def policy(self) -> TrustPolicy:
        """The trust policy the messages are judged by (sent along with each task)."""
        if not isinstance(self._policy, TrustPolicy):
            self._policy = as_trust_policy(self._policy)
        return self._policy

    @policy.setter
    def policy(self, policy: TrustPolicy | AuthenticationSettings | None) -> None:
        self._policy = policy

    def start(self) -> None:
        """Start the workers now rather than with the first task: a worker takes about
        0.2 s to load the readers, which it then does while the caller loads the rest of
        govfeed and opens the database. For a caller that knows the pool will be used."""
        if self.workers < 2:
            return
        pool = self._ensure_pool()
        # The executor starts a worker for each task that finds none idle.
        for _ in range(self.workers):
            pool.submit(_load_readers)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
                item: tuple[RawMessage, Analysis | None] = (raw, None)
                if skip is None or not skip(raw):
                    item = (raw, analyze(raw.data, self.policy, compress=self.compress))
                del raw
                yield item
                # Not held while the next message is read (it may be fetched meanwhile):
                # a big one and its compressed copy stayed in memory for the next one.
                del item
            return
        yield from self._parallel(iter(raws), skip)

    def _parallel(
        self, raws: Iterator[RawMessage], skip: Callable[[RawMessage], bool] | None
    ) -> Iterator[tuple[RawMessage, Analysis | None]]:
        window: deque[tuple[list[RawMessage], list[bool], Future[list[Analysis]]]] = deque()
        limit = 3 * self.workers  # chunks in flight: bounded memory, workers never idle
        in_flight = 0  # raw bytes of the chunks in the window
        while True:
            chunk = _take_chunk(raws)
            if chunk:
                skipped = [skip is not None and skip(raw) for raw in chunk]
                todo = [raw.data for raw, s in zip(chunk, skipped, strict=True) if not s]
                window.append((chunk, skipped, self._submit(todo)))
                in_flight += sum(len(raw.data) for raw in chunk)
            while window and (len(window) >= limit or in_flight >= WINDOW_BYTES or not chunk):
                done = window.popleft()
                in_flight -= sum(len(raw.data) for raw in done[0])
                yield from self._collect(*done)
            if not chunk:
                return

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the daemon has threads (scheduler, IDLE) and an open database.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        return self._pool

    def _submit(self, datas: list[bytes]) -> Future[list[Analysis]]:
        pool = self._ensure_pool()
        try:
            return pool.submit(analyze_many, datas, self.policy, self.compress)
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
                _log().warning("analysis_worker_died", messages=len(todo))
                failed = Analysis(MessageFacts(), None, _error_text("analysis", err))
                results = iter([failed] * len(todo))
        for raw, was_skipped in zip(chunk, skipped, strict=True):
            yield raw, None if was_skipped else next(results)


def _take_chunk(raws: Iterator[RawMessage]) -> list[RawMessage]:
    """The next task's messages: CHUNK of them, fewer once they reach CHUNK_BYTES."""
    chunk: list[RawMessage] = []
    size = 0
    for raw in raws:
        chunk.append(raw)
        size += len(raw.data)
        if len(chunk) >= CHUNK or size >= CHUNK_BYTES:
            break
    return chunk


def _log() -> Any:
    """The module's logger, in the main process only: a worker that imported structlog
    (and the asyncio it loads) took a third longer to start."""
    import structlog

    return structlog.get_logger(__name__)


def _pickle_by_fields(cls: type[Any]) -> None:
    """Pickle a frozen dataclass as its class and its field values, rebuilt by calling the
    class. The dataclass default (a state dict, `fields()` looked up per object and each
    field set back one by one) made pickling an analysis cost as much as a bare parse of
    the message, most of it in the main process, which unpickles every worker's results.
    """
    names = tuple(f.name for f in dataclasses.fields(cls))
    assert all(f.init for f in dataclasses.fields(cls)), cls

    def reduce(obj: Any) -> tuple[type[Any], tuple[Any, ...]]:
        return cls, tuple([getattr(obj, name) for name in names])

    copyreg.pickle(cls, reduce)


# What crosses the process boundary: analyses, in both directions the policy.
for _cls in (
    Analysis,
    MessageFacts,
    Release,
    Sender,
    Link,
    ContractAward,
    Ignored,
    Assessment,
    Identity,
):
    _pickle_by_fields(_cls)


def as_trust_policy(policy: TrustPolicy | AuthenticationSettings | None) -> TrustPolicy:
    """A TrustPolicy; [authentication] settings get the built-in agency registry."""
    if isinstance(policy, TrustPolicy):
        return policy
    from govfeed.config import AuthenticationSettings, trust_policy  # main process only

    return trust_policy(policy if policy is not None else AuthenticationSettings())


def _header_facts(parsed: ParsedMessage) -> MessageFacts:
    sender = parsed.from_
    attachments = [
        {"filename": a.filename, "content_type": a.content_type, "size": a.size}
        for a in parsed.attachments
    ]
    return MessageFacts(
        message_id=parsed.message_id,
        from_name=sender.name if sender else None,
        from_address=sender.address if sender else None,
        reply_to=", ".join(a.address for a in parsed.reply_to) or None,
        to_address=", ".join(a.address for a in parsed.to) or None,
        list_unsubscribe=parsed.header("List-Unsubscribe"),
        subject=parsed.subject or None,
        sent_at=iso(parsed.sent_at),
        defects=_json_list(list(parsed.defects)),
        attachments=_json_list(attachments),
    )


def _json_list(items: list[Any]) -> str | None:
    return json.dumps(items) if items else None


def _error_text(stage: str, err: BaseException) -> str:
    kind = "" if isinstance(err, GovfeedError) else f"{type(err).__name__}: "
    return f"{stage}: {kind}{err}"[:_MAX_ERROR_CHARS]
