"""Join the stages: raw bytes -> parse -> extract -> de-duplicate -> store.

Errors are caught here, per message, and nowhere else in the ingest path: a message that
cannot be parsed or extracted is stored raw with status `failed` and its error, and the
batch goes on. Database errors are not caught: they end the batch, whose transaction
rolls back, so nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from typing import Any

import structlog

from govfeed import dedupe
from govfeed.analysis import Analysis, Analyzer, analyze
from govfeed.config import AuthenticationSettings, Settings
from govfeed.errors import SourceError
from govfeed.formats import iso, utc_now
from govfeed.models import Ignored, RawMessage
from govfeed.sources import Source
from govfeed.store import MESSAGE_STATUS_RANK, RELEASED_AFTER_REVIEW, MessageRow, Store

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

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["source_errors"] = len(self.source_errors)
        return data


def known(store: Store, raw: RawMessage) -> bool:
    """True when these exact bytes are stored already (nothing to analyze)."""
    return store.find_message_by_sha256(dedupe.sha256_hex(raw.data)) is not None


def save_message(
    store: Store, raw: RawMessage, summary: Summary, analysis: Analysis | None = None
) -> None:
    """De-duplicate and store one analyzed message, inside the caller's transaction."""
    summary.read += 1
    sha256 = dedupe.sha256_hex(raw.data)
    if store.find_message_by_sha256(sha256) is not None:
        summary.duplicates += 1  # these exact bytes are stored already
        return
    if analysis is None:
        analysis = analyze(raw.data, AuthenticationSettings())
    row = _message_row(raw, sha256, analysis)
    message_id = analysis.fields.get("message_id")
    original = store.find_message_by_message_id(message_id) if message_id else None
    if original is not None and not _outranks(row.status, original[2]):
        pk = store.insert_message(row, raw.data, analysis.compressed)  # kept, but it adds nothing
        store.update_message(
            pk, status="duplicate", duplicate_of=original[0], release_id=original[1], error=None
        )
        summary.duplicates += 1
        return
    pk = store.insert_message(row, raw.data, analysis.compressed)
    _link_release(store, pk, analysis, summary)


def _outranks(status: str, original_status: str) -> bool:
    """True when a mail whose Message-ID is stored already counts for more than the message
    stored under it (`MESSAGE_STATUS_RANK`): it is then a message of its own, not a
    duplicate, so a forger who mails first under a real Message-ID cannot hold it back."""
    return MESSAGE_STATUS_RANK[status] < MESSAGE_STATUS_RANK.get(original_status, 2)


def _link_release(
    store: Store, pk: int, analysis: Analysis, summary: Summary, reuse_id: int | None = None
) -> None:
    """Attach a stored message to its release (new, known, or a new version of one)."""
    result = analysis.result
    if analysis.error is not None:
        summary.failed += 1
        log.warning("message_failed", message_pk=pk, error=analysis.error)
        return
    if isinstance(result, Ignored) or result is None:
        summary.ignored += 1
        return
    if analysis.action == "reject":
        summary.failed += 1
        log.warning("message_rejected", message_pk=pk, reason=analysis.auth_reason)
        return
    quarantined = analysis.action == "quarantine"
    identity = dedupe.identify(result)
    saved = store.save_release(
        result,
        keys=identity.keys,
        lookup=identity.lookup,
        content_hash=identity.content_hash,
        message_pk=pk,
        sent_at=analysis.fields.get("sent_at"),
        status="quarantined" if quarantined else "published",
        reuse_id=reuse_id,
    )
    if not saved.held:
        store.update_message(pk, release_id=saved.release_id)
    if quarantined:
        summary.quarantined += 1
        log.warning("message_quarantined", message_pk=pk, reason=analysis.auth_reason)
    if saved.held:
        pass  # an unauthenticated copy of a published release changes nothing
    elif saved.revived:
        summary.kept_releases += 1
    elif saved.created:
        summary.new_releases += 1
    elif saved.new_version:
        summary.new_versions += 1
    else:
        summary.duplicates += 1


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
    policy: AuthenticationSettings | None = None,
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
    policy: AuthenticationSettings | None = None,
    workers: int | None = None,
) -> Summary:
    """Import every message of `sources`, a transaction per batch; never stops on bad mail."""
    analyzer = Analyzer(workers, policy)
    summary = Summary()
    try:
        for source in sources:
            messages = _safe_fetch(source, summary, on_message)
            stream = analyzer.stream(
                messages, skip=lambda r: known(store, r), expected=source.count
            )
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


def reparse(store: Store, settings: Settings) -> Summary:
    """Re-extract every stored message from its raw bytes; release ids are kept.

    Idempotent: the releases, their versions and message counts are rebuilt from the
    messages in the order they were stored, so a second run changes nothing. A message an
    operator released after review (`govfeed release`) stays released.
    """
    summary = Summary()
    with store.transaction():
        previous = dict(
            store.conn.execute("select id, release_id from messages where release_id is not null")
        )
        released = store.released_after_review()
        store.reset_release_links()
        for pk, status, mailbox in store.iter_message_pks():
            summary.read += 1
            if status == "duplicate":
                summary.duplicates += 1
                continue
            # Headers only: a local DKIM check would fail old mail once keys rotate.
            policy = settings.authentication_for(mailbox).model_copy(update={"dkim_verify": False})
            analysis = analyze(store.read_raw(pk), policy)
            fields = _reparse_fields(analysis)
            if pk in released and analysis.action == "quarantine":
                analysis = replace(analysis, action="publish")  # the operator's decision
                fields.update(status="stored", error=RELEASED_AFTER_REVIEW + str(fields["error"]))
            store.update_message(pk, **fields)
            _link_release(store, pk, analysis, summary, reuse_id=previous.get(pk))
        summary.dropped_releases = store.drop_unclaimed_releases()
    log.info("reparse_finished", **summary.as_dict())
    return summary


def _status(analysis: Analysis) -> tuple[str, str | None]:
    if analysis.error is not None:
        return "failed", analysis.error
    if isinstance(analysis.result, Ignored):
        return "ignored", f"not a bulletin: {analysis.result.reason}"
    if analysis.action == "reject":
        return "failed", f"rejected: {analysis.auth_reason}"
    if analysis.action == "quarantine":
        return "quarantined", f"quarantined: {analysis.auth_reason}"
    return "stored", None


def _message_row(raw: RawMessage, sha256: str, analysis: Analysis) -> MessageRow:
    status, error = _status(analysis)
    fields = {k: v for k, v in analysis.fields.items() if k in MessageRow.__slots__}
    return MessageRow(
        sha256=sha256,
        mailbox=raw.mailbox,
        folder=raw.folder,
        uid=raw.uid,
        uidvalidity=raw.uidvalidity,
        source=raw.source,
        size=len(raw.data),
        received_at=iso(raw.received_at) or utc_now(),
        status=status,
        error=error,
        **fields,
    )


def _reparse_fields(analysis: Analysis) -> dict[str, Any]:
    status, error = _status(analysis)
    return {**analysis.fields, "status": status, "error": error}
