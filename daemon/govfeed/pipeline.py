"""Join the stages: raw bytes -> parse -> extract -> de-duplicate -> store.

Errors are caught here, per message, and nowhere else in the ingest path: a message that
cannot be parsed or extracted is stored raw with status `failed` and its error, and the
batch goes on. Database errors are not caught: they end the batch, whose transaction
rolls back, so nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from itertools import groupby, islice
from typing import Any

import structlog

from govfeed import dedupe
from govfeed.analysis import MIN_PARALLEL, Analysis, Analyzer, analyze, as_trust_policy
from govfeed.config import AuthenticationSettings, Settings
from govfeed.decide import Candidate, Decision, StoredMessage, TrustPolicy, decide
from govfeed.errors import SourceError
from govfeed.formats import iso, utc_now
from govfeed.models import MessageFacts, RawMessage, Release
from govfeed.sources import Source
from govfeed.store import MessageRow, ReleaseRow, Store

log = structlog.get_logger(__name__)

BATCH_SIZE = 500


@dataclass
class Summary:
    """Counts for one import, poll or reparse."""

    read: int = 0
    new_releases: int = 0
    new_versions: int = 0
    duplicates: int = 0
    ignored: int = 0
    failed: int = 0
    quarantined: int = 0  # messages whose sender was not authenticated (see auth.py)
    kept_releases: int = 0  # reparse: releases found again under their old id
    dropped_releases: int = 0  # reparse: releases no message supports any more
    source_errors: list[str] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)  # reparse: "releases a -> b": n

    def line(self) -> str:
        return (
            f"read {self.read}, new releases {self.new_releases}, "
            f"new versions {self.new_versions}, duplicates {self.duplicates}, "
            f"ignored {self.ignored}, failed {self.failed}"
            + (f", quarantined {self.quarantined}" if self.quarantined else "")
        )

    def reparse_line(self) -> str:
        return (
            f"reparsed {self.read} messages: releases kept {self.kept_releases},"
            f" new {self.new_releases}, dropped {self.dropped_releases};"
            f" new versions {self.new_versions}, duplicates {self.duplicates},"
            f" ignored {self.ignored}, failed {self.failed}, quarantined {self.quarantined}"
        )

    def changes_line(self) -> str:
        """What a reparse moved, e.g. "changed: releases published -> quarantined 2"."""
        if not self.changes:
            return "changed: nothing"
        return "changed: " + ", ".join(f"{what} {n}" for what, n in self.changes.items())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["source_errors"] = len(self.source_errors)
        return data


def known(store: Store, raw: RawMessage) -> bool:
    """True when these exact bytes are stored already (nothing to analyze)."""
    return store.find_message_by_sha256(dedupe.sha256_hex(raw.data)) is not None


# The columns a reparse writes again; where and when the mail was received stays.
_JUDGED = frozenset(
    {f.name for f in fields(MessageFacts)}
    | {"status", "error", "quarantine_reason", "sender", "body_sha256"}
    | {"duplicate_of", "message_id_clash", "release_id"}
)


@dataclass(frozen=True, slots=True)
class _Reparse:
    """What a reparse knows that an import does not."""

    released: set[int]  # messages an operator released after review
    oversized: set[int]  # "too large": only their header was fetched, nothing to judge again

    def keeps(self, raw: RawMessage) -> bool:
        """A stored message reparse leaves as it is."""
        return raw.stored_pk in self.oversized


def save_message(
    store: Store,
    raw: RawMessage,
    summary: Summary,
    analysis: Analysis | None = None,
    *,
    reparse: _Reparse | None = None,
) -> None:
    """Store one analyzed message as decide.py rules, inside the caller's transaction.

    The one place where import, poll and reparse store mail: a new message is inserted raw
    first; a reparsed one (`raw.stored_pk`) is updated in place."""
    summary.read += 1
    sha256 = analysis.sha256 if analysis and analysis.sha256 else dedupe.sha256_hex(raw.data)
    if raw.stored_pk is None and store.find_message_by_sha256(sha256) is not None:
        summary.duplicates += 1  # these exact bytes are stored already
        return
    if analysis is None:
        analysis = analyze(raw.data, as_trust_policy(None))
    candidate = analysis.candidate()
    if reparse and raw.stored_pk in reparse.released and candidate.status == "quarantined":
        candidate = replace(candidate, status="published")  # the operator's decision holds
    same = _same_message_id(store, analysis.facts.message_id, raw.stored_pk)
    result, found, identity = analysis.result, None, None
    if isinstance(result, Release) and candidate.status in ("published", "quarantined"):
        identity = analysis.identity or dedupe.identify(result)
        lookup = _scoped(candidate.sender, identity.lookup)
        found = store.find_release(lookup, identity.content_hash)
    decision = decide(candidate, same, found)
    row = _message_row(raw, sha256, analysis, candidate, decision)
    if raw.stored_pk is None:
        pk = store.insert_message(row, raw.data, analysis.compressed)
    else:
        pk = raw.stored_pk
        store.update_message(pk, **{k: v for k, v in row.columns().items() if k in _JUDGED})
    _count(summary, decision, pk, candidate)
    if identity is None or decision.release_status is None or decision.kind == "held":
        return
    assert isinstance(result, Release)
    keys = _scoped(candidate.sender, identity.keys)
    release_row = _release_row(analysis, decision, identity.content_hash)
    _save_release(store, pk, result, release_row, decision, keys, summary, reparse)


def _same_message_id(
    store: Store, message_id: str | None, stored_pk: int | None
) -> list[StoredMessage]:
    """Messages stored before this one under its Message-ID (in a reparse: decided before)."""
    if not message_id:
        return []
    found = store.messages_by_message_id(message_id)
    return [m for m in found if stored_pk is None or m.pk < stored_pk]


def _scoped(sender: str | None, keys: tuple[str, ...]) -> tuple[str, ...]:
    """Release keys in the sender's own name space: no sender can reach another's release."""
    return tuple(f"{sender}|{key}" for key in keys)


def _release_row(analysis: Analysis, decision: Decision, content_hash: str) -> ReleaseRow:
    assessment = analysis.assessment
    assert assessment is not None and decision.release_status is not None
    quarantined = decision.release_status == "quarantined"
    return ReleaseRow(
        sender=assessment.sender,
        agency=assessment.agency,
        agency_as_written=assessment.agency_as_written,
        status=decision.release_status,
        quarantine_reason=decision.reason if quarantined else None,
        content_hash=content_hash,
        sent_at=analysis.facts.sent_at,
    )


def _save_release(
    store: Store,
    pk: int,
    release: Release,
    row: ReleaseRow,
    decision: Decision,
    keys: tuple[str, ...],
    summary: Summary,
    reparse: _Reparse | None,
) -> None:
    if decision.kind == "new_release":
        reuse = store.release_before_reparse(pk) if reparse else None
        release_id = store.create_release(release, row, reuse)
        if release_id == reuse:
            summary.kept_releases += 1
        else:
            summary.new_releases += 1
    else:
        assert decision.release_id is not None
        release_id = decision.release_id
        store.join_release(release_id, release, row, replace=decision.kind == "promoted")
    new_text = store.record_release(release_id, release, keys, pk, row)
    if decision.kind != "new_release":
        if new_text:
            summary.new_versions += 1
        else:
            summary.duplicates += 1


def _count(summary: Summary, decision: Decision, pk: int, candidate: Candidate) -> None:
    kind = decision.kind
    if kind == "duplicate":
        summary.duplicates += 1
    elif kind in ("failed", "rejected"):
        summary.failed += 1
        log.warning(f"message_{kind}", message_pk=pk, error=decision.reason)
    elif kind == "ignored":
        summary.ignored += 1
    if decision.message_status == "quarantined":
        summary.quarantined += 1
        log.warning("message_quarantined", message_pk=pk, reason=decision.reason)
    if decision.clash_with is not None:
        log.warning(
            "message_id_clash", message_pk=pk, other=decision.clash_with, sender=candidate.sender
        )


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far a mailbox folder has been read: moved in the same transaction as its mail."""

    mailbox: str
    folder: str
    uidvalidity: int
    last_uid: int


def save_batch(
    store: Store,
    raws: Sequence[RawMessage],
    summary: Summary,
    cursor: Cursor | None = None,
    *,
    policy: TrustPolicy | AuthenticationSettings | None = None,
) -> None:
    """Analyze (in-process) and store a batch in one transaction, advancing `cursor` in it."""
    analyzer = Analyzer(workers=0, policy=policy)
    analyzed = list(analyzer.stream(raws, skip=lambda r: known(store, r)))
    save_analyzed(store, analyzed, summary, cursor)


def save_analyzed(
    store: Store,
    analyzed: Iterable[tuple[RawMessage, Analysis | None]],
    summary: Summary,
    cursor: Cursor | None = None,
) -> None:
    """Store analyzed messages in one transaction, advancing `cursor` in it."""
    with store.transaction():
        for raw, analysis in analyzed:
            save_message(store, raw, summary, analysis)
        if cursor is not None:
            store.save_cursor(cursor.mailbox, cursor.folder, cursor.uidvalidity, cursor.last_uid)


def import_sources(
    store: Store,
    sources: Iterable[Source],
    *,
    on_message: Callable[[], None] | None = None,
    batch_size: int = BATCH_SIZE,
    policy: TrustPolicy | AuthenticationSettings | None = None,
    workers: int | None = None,
    analyzer: Analyzer | None = None,
) -> Summary:
    """Import every message of `sources`, a transaction per batch; never stops on bad mail.

    `analyzer`: one made (and maybe started) by the caller, used instead of a new one of
    `workers`, and closed here all the same."""
    if analyzer is None:
        analyzer = Analyzer(workers)
    analyzer.policy = policy
    summary = Summary()
    try:
        for source in sources:
            messages = _safe_fetch(source, summary, on_message)
            try:
                expected: int | None = source.count_up_to(MIN_PARALLEL)
            except SourceError:
                expected = None  # the fetch meets the same error and records it
            stream = analyzer.stream(messages, skip=lambda r: known(store, r), expected=expected)
            # A batch is gathered before its transaction begins: the write lock is held
            # while it is written, not while its mail is parsed (the daemon may be
            # writing too, and a batch of big messages takes long to parse).
            while batch := list(islice(stream, batch_size)):
                save_analyzed(store, batch, summary)
            store.checkpoint()
    finally:
        analyzer.close()
    log.info("import_finished", **summary.as_dict())
    return summary


def _safe_fetch(
    source: Source, summary: Summary, on_message: Callable[[], None] | None
) -> Iterator[RawMessage]:
    """The source's messages; a read error ends this source, recorded, not the import."""
    try:
        for raw in source.fetch():
            if on_message is not None:
                on_message()
            yield raw
    except SourceError as err:
        summary.source_errors.append(str(err))
        log.error("source_failed", source=str(source.path), error=str(err))


def reparse(
    store: Store,
    settings: Settings,
    *,
    workers: int | None = None,
    on_message: Callable[[], None] | None = None,
    analyzer: Analyzer | None = None,
) -> Summary:
    """Re-judge every stored message from its raw bytes under the current config; release
    ids are kept.

    Everything is decided again, as by an import of the same mail in the same order:
    parse, extraction, sender verdict, identity, agency, published or quarantined,
    duplicates. A message an operator released after review (`govfeed release`) stays
    released. Idempotent: a second run changes nothing. `Summary.changes` counts what moved
    (e.g. "releases published -> quarantined").
    """
    summary = Summary()
    if analyzer is None:
        analyzer = Analyzer(workers)
    analyzer.compress = False  # the raws are stored already
    with analyzer, store.transaction():
        store.snapshot_for_reparse()
        context = _Reparse(
            released=store.released_after_review(),
            oversized=store.oversized_messages(),
        )
        store.reset_release_links()
        for policy, raws in _stored_by_policy(store, settings):
            # Headers only: a local DKIM check would fail old mail once keys rotate.
            analyzer.policy = replace(policy, dkim_verify=False)
            for raw, analysis in analyzer.stream(raws, skip=context.keeps):
                if on_message is not None:
                    on_message()
                if analysis is None:  # only the header of an oversized mail was stored
                    summary.read, summary.failed = summary.read + 1, summary.failed + 1
                    continue
                save_message(store, raw, summary, analysis, reparse=context)
        summary.dropped_releases = store.drop_unclaimed_releases()
        summary.changes = store.status_changes()
    log.info("reparse_finished", **summary.as_dict())
    return summary


def _stored_by_policy(
    store: Store, settings: Settings
) -> Iterator[tuple[TrustPolicy, Iterator[RawMessage]]]:
    """The stored messages, oldest first, in runs that share one trust policy (usually a
    single run: every mailbox has the same policy). Consume each run before the next."""
    policies: dict[str, TrustPolicy] = {}

    def policy_of(row: tuple[int, str, str]) -> TrustPolicy:
        mailbox = row[2]
        if mailbox not in policies:
            policies[mailbox] = settings.authentication_for(mailbox)
        return policies[mailbox]

    for policy, rows in groupby(store.iter_message_pks(), key=policy_of):
        yield (
            policy,
            (
                RawMessage(store.read_raw(pk), f"message:{pk}", mailbox, stored_pk=pk)
                for pk, _, mailbox in rows
            ),
        )


def _message_row(
    raw: RawMessage, sha256: str, analysis: Analysis, candidate: Candidate, decision: Decision
) -> MessageRow:
    error = quarantine_reason = None
    if decision.kind == "failed":
        error = decision.reason
    elif decision.kind == "rejected":
        error = f"rejected: {decision.reason}"
    elif decision.kind == "ignored":
        error = f"not a bulletin: {decision.reason}"
    elif decision.message_status == "quarantined":
        quarantine_reason = decision.reason
    return MessageRow(
        sha256=sha256,
        mailbox=raw.mailbox,
        source=raw.source,
        size=len(raw.data),
        status=decision.message_status,
        facts=analysis.facts,
        folder=raw.folder,
        uid=raw.uid,
        uidvalidity=raw.uidvalidity,
        received_at=iso(raw.received_at) or utc_now(),
        error=error,
        quarantine_reason=quarantine_reason,
        sender=candidate.sender,
        body_sha256=candidate.body_sha256,
        duplicate_of=decision.duplicate_of,
        message_id_clash=decision.clash_with,
        release_id=decision.release_id if decision.kind == "duplicate" else None,
        server_size=raw.server_size,
    )
