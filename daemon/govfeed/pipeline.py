"""Join the stages: raw bytes -> parse -> extract -> de-duplicate -> store.

Errors are caught here, per message, and nowhere else in the ingest path: a message that
cannot be parsed or extracted is stored raw with status `failed` and its error, and the
batch goes on. Database errors are not caught: they end the batch, whose transaction
rolls back, so nothing is half-written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import structlog

from govfeed import dedupe
from govfeed.errors import GovfeedError, SourceError
from govfeed.extract import extract_release
from govfeed.models import Ignored, ParsedMessage, RawMessage, Release
from govfeed.parse import parse_message
from govfeed.schema import iso, utc_now
from govfeed.sources import Source
from govfeed.store import MessageRow, Store

log = structlog.get_logger(__name__)

BATCH_SIZE = 500
_MAX_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Analysis:
    """What parse and extract made of one message; pure data, safe to send between processes."""

    fields: dict[str, Any]  # messages-table columns taken from the headers
    result: Release | Ignored | None
    error: str | None


@dataclass
class Summary:
    """Counts for one import, poll or reparse."""

    read: int = 0
    new_releases: int = 0
    new_versions: int = 0
    duplicates: int = 0
    ignored: int = 0
    failed: int = 0
    source_errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"read {self.read}, new releases {self.new_releases}, "
            f"new versions {self.new_versions}, duplicates {self.duplicates}, "
            f"ignored {self.ignored}, failed {self.failed}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "new_releases": self.new_releases,
            "new_versions": self.new_versions,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "failed": self.failed,
            "source_errors": len(self.source_errors),
        }


def analyze(raw: RawMessage) -> Analysis:
    """Parse and extract one message, turning any failure into an error string."""
    try:
        parsed = parse_message(raw)
    except Exception as err:  # noqa: BLE001 - per-message boundary: record, keep going
        return Analysis({}, None, _error_text("parse", err))
    fields = _header_fields(parsed)
    try:
        result = extract_release(parsed)
    except Exception as err:  # noqa: BLE001 - per-message boundary: record, keep going
        return Analysis(fields, None, _error_text("extract", err))
    if isinstance(result, Release):
        sender = result.sender
        fields.update(
            reply_to=sender.reply_to or fields.get("reply_to"),
            list_unsubscribe=sender.list_unsubscribe,
            subscriber=sender.subscriber,
        )
    return Analysis(fields, result, None)


def save_message(store: Store, raw: RawMessage, summary: Summary) -> None:
    """De-duplicate, analyze and store one message, inside the caller's transaction."""
    summary.read += 1
    sha256 = dedupe.sha256_hex(raw.data)
    if store.find_message_by_sha256(sha256) is not None:
        summary.duplicates += 1  # these exact bytes are stored already
        return
    analysis = analyze(raw)
    row = _message_row(raw, sha256, analysis)
    message_id = analysis.fields.get("message_id")
    original = store.find_message_by_message_id(message_id) if message_id else None
    if original is not None:
        pk = store.insert_message(row, raw.data)  # kept, but it adds nothing
        store.update_message(
            pk, status="duplicate", duplicate_of=original[0], release_id=original[1]
        )
        summary.duplicates += 1
        return
    pk = store.insert_message(row, raw.data)
    _link_release(store, pk, analysis, summary)


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
    saved = store.save_release(
        result,
        keys=dedupe.release_keys(result),
        lookup=dedupe.lookup_keys(result),
        content_hash=dedupe.content_hash(result),
        message_pk=pk,
        sent_at=analysis.fields.get("sent_at"),
        status="published",
        reuse_id=reuse_id,
    )
    store.update_message(pk, release_id=saved.release_id)
    if saved.created:
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
    store: Store, raws: Iterable[RawMessage], summary: Summary, cursor: Cursor | None = None
) -> None:
    """Store a batch of messages in one transaction, advancing `cursor` in it."""
    with store.transaction():
        for raw in raws:
            save_message(store, raw, summary)
        if cursor is not None:
            store.save_cursor(cursor.mailbox, cursor.folder, cursor.uidvalidity, cursor.last_uid)


def import_sources(
    store: Store,
    sources: Iterable[Source],
    *,
    on_message: Callable[[], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> Summary:
    """Import every message of `sources`, a transaction per batch; never stops on bad mail."""
    summary = Summary()
    for source in sources:
        messages = _safe_fetch(source, summary, on_message)
        while batch := list(islice(messages, batch_size)):
            save_batch(store, batch, summary)
        store.checkpoint()
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


def reparse(store: Store) -> Summary:
    """Re-extract every stored message from its raw bytes; release ids are kept.

    Idempotent: the releases, their versions and message counts are rebuilt from the
    messages in the order they were stored, so a second run changes nothing.
    """
    summary = Summary()
    with store.transaction():
        previous = dict(
            store.conn.execute("select id, release_id from messages where release_id is not null")
        )
        store.reset_release_links()
        for pk, status, _duplicate_of in store.iter_message_pks():
            if status == "duplicate":
                summary.read += 1
                summary.duplicates += 1
                continue
            summary.read += 1
            analysis = analyze(RawMessage(data=store.read_raw(pk), source=f"message:{pk}"))
            store.update_message(pk, **_reparse_fields(analysis))
            _link_release(store, pk, analysis, summary, reuse_id=previous.get(pk))
        dropped = store.drop_unclaimed_releases()
    log.info("reparse_finished", dropped_releases=dropped, **summary.as_dict())
    return summary


def _header_fields(parsed: ParsedMessage) -> dict[str, Any]:
    sender = parsed.from_
    return {
        "message_id": parsed.message_id,
        "from_name": sender.name if sender else None,
        "from_address": sender.address if sender else None,
        "reply_to": ", ".join(a.address for a in parsed.reply_to) or None,
        "to_address": ", ".join(a.address for a in parsed.to) or None,
        "list_unsubscribe": parsed.header("List-Unsubscribe"),
        "subject": parsed.subject or None,
        "sent_at": iso(parsed.sent_at),
        "defects": json.dumps(list(parsed.defects)) if parsed.defects else None,
        "attachments": json.dumps(
            [
                {"filename": a.filename, "content_type": a.content_type, "size": a.size}
                for a in parsed.attachments
            ]
        )
        if parsed.attachments
        else None,
    }


def _status(analysis: Analysis) -> tuple[str, str | None]:
    if analysis.error is not None:
        return "failed", analysis.error
    if isinstance(analysis.result, Ignored):
        return "ignored", f"not a bulletin: {analysis.result.reason}"
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
        auth="unchecked",
        status=status,
        error=error,
        **fields,
    )


def _reparse_fields(analysis: Analysis) -> dict[str, Any]:
    status, error = _status(analysis)
    return {**analysis.fields, "status": status, "error": error}


def _error_text(stage: str, err: Exception) -> str:
    kind = "" if isinstance(err, GovfeedError) else f"{type(err).__name__}: "
    return f"{stage}: {kind}{err}"[:_MAX_ERROR_CHARS]
