"""The SQLite database: open and migrate it, and save messages, releases and cursors.

sqlite-utils creates the schema (see `schema.py`); the per-message hot path uses plain
prepared statements on the same connection, because a batch of 500 messages runs a few
thousand of them. Callers wrap a batch in `Store.transaction()`: one commit per batch,
with the mailbox cursor moved in that same transaction.
"""

from __future__ import annotations

import grp
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from functools import lru_cache
from operator import attrgetter
from pathlib import Path
from typing import Any

import sqlite_utils

from govfeed.decide import StoredMessage, StoredRelease
from govfeed.errors import StoreError
from govfeed.formats import RAW_COMPRESSION, compress_raw, decompress_raw, iso, utc_now
from govfeed.models import ContractAward, MessageFacts, Release
from govfeed.schema import migrate, schema_version

BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class MessageRow:
    """The messages-table columns the pipeline fills in for one message."""

    sha256: str
    mailbox: str
    source: str
    size: int
    status: str
    facts: MessageFacts = field(default_factory=MessageFacts)
    folder: str | None = None
    uid: int | None = None
    uidvalidity: int | None = None
    received_at: str | None = None
    error: str | None = None
    quarantine_reason: str | None = None
    sender: str | None = None
    body_sha256: str | None = None
    duplicate_of: int | None = None
    message_id_clash: int | None = None
    release_id: int | None = None
    server_size: int | None = None  # over max_message_bytes: only the header is stored

    def columns(self) -> dict[str, Any]:
        return dict(zip(_MESSAGE_FIELDS, self.values(), strict=True))

    def values(self) -> tuple[Any, ...]:
        """The column values in `_MESSAGE_FIELDS` order (the insert's hot path)."""
        return (*_ROW_VALUES(self), *_FACT_VALUES(self.facts))


_ROW_FIELDS = tuple(f.name for f in fields(MessageRow) if f.name != "facts")
_FACT_FIELDS = tuple(f.name for f in fields(MessageFacts))
_ROW_VALUES = attrgetter(*_ROW_FIELDS)
_FACT_VALUES = attrgetter(*_FACT_FIELDS)


_MESSAGE_FIELDS = _ROW_FIELDS + _FACT_FIELDS
_INSERT_MESSAGE = "insert into messages ({}, imported_at) values ({}, ?)".format(  # noqa: S608
    ", ".join(_MESSAGE_FIELDS), ", ".join("?" for _ in _MESSAGE_FIELDS)
)


_FIND_RELEASE = (
    "select k.key, r.id, r.status, exists(select 1 from release_versions v"
    " where v.release_id = r.id and v.content_hash = ?)"
    " from release_keys k join releases r on r.id = k.release_id where k.key in ({})"
)


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """What a release row says beyond the extracted Release: who sent it, how it stands."""

    sender: str
    agency: str | None  # the registry's canonical name, else as written
    agency_as_written: str | None
    status: str  # published | quarantined
    quarantine_reason: str | None
    content_hash: str
    sent_at: str | None


def explain(err: sqlite3.Error | OSError) -> str:
    """SQLite's terse message, with what usually causes it."""
    primary = "_".join(str(getattr(err, "sqlite_errorname", "")).split("_")[:2])  # no _EXTENDED
    hint = {
        "SQLITE_BUSY": f"another process held the write lock for over {BUSY_TIMEOUT_MS / 1000:g} s"
        " (another govfeed import, poll or run on the same database?)",
        "SQLITE_FULL": "no space left where the database lives",
        "SQLITE_READONLY": "the database, its directory or its file system is read-only",
        "SQLITE_CANTOPEN": "check that the directory exists and is writable: SQLite creates"
        " the -wal and -shm files beside the database",
    }.get(primary)
    return f"{err}: {hint}" if hint else str(err)


class Store:
    """One connection to the govfeed database, migrated on open."""

    def __init__(
        self, path: Path | str, *, readonly: bool = False, group: str | None = None
    ) -> None:
        self.path = Path(path)
        try:
            if readonly:
                uri = f"file:{self.path}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _create_private(self.path, group)
                conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self.db = sqlite_utils.Database(conn)
            if not readonly:
                migrate(self.db)
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open database {self.path}: {explain(err)}") from err
        self.conn = conn
        # New releases (id, title, body_text) not in the full-text index yet: indexed
        # together before the transaction commits (see _index_new_releases).
        self._unindexed: list[tuple[int, str, str | None]] = []

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return schema_version(self.db)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT: take the write lock up front, roll back on any error.

        A database error (disk full, read-only, locked by another writer for longer than
        the busy timeout) becomes a StoreError saying what happened; nothing of the
        transaction is kept."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(f"cannot write database {self.path}: {explain(err)}") from err
        try:
            yield
            self._index_new_releases()
            self.conn.execute("COMMIT")
        except BaseException as err:
            self._unindexed.clear()  # rolled back with their rows
            if self.conn.in_transaction:  # a failed COMMIT leaves the transaction open
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise StoreError(
                    f"cannot write database {self.path}: {explain(err)};"
                    " the batch being stored was rolled back, the ones before it are kept"
                ) from err
            raise

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it, so that readers such as
        Datasette cannot let it grow without bound. Never waits for a reader: with one
        in the way it copies what it can and returns False (the next checkpoint does the
        rest)."""
        try:
            self.conn.execute("PRAGMA busy_timeout = 0")
            try:
                busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as err:
            raise StoreError(f"cannot checkpoint database {self.path}: {explain(err)}") from err
        return not busy

    # -- messages ------------------------------------------------------------------------

    def find_message_by_sha256(self, sha256: str) -> int | None:
        row = self.conn.execute("select id from messages where sha256 = ?", (sha256,)).fetchone()
        return None if row is None else int(row[0])

    def messages_by_message_id(self, message_id: str) -> list[StoredMessage]:
        """The messages stored under this Message-ID, oldest first, duplicates left out."""
        rows = self.conn.execute(
            "select id, sender, body_sha256, status, release_id from messages"
            " where message_id = ? and status != 'duplicate' order by id limit 50",
            (message_id,),
        ).fetchall()
        return [StoredMessage(int(r[0]), r[1], r[2], str(r[3]), r[4]) for r in rows]

    def insert_message(self, row: MessageRow, raw: bytes, compressed: bytes | None = None) -> int:
        """Store the message row and its raw bytes (compressed); return the row id.

        `compressed` is `compress_raw(raw)` when the caller made it already (in a worker).
        """
        cursor = self.conn.execute(_INSERT_MESSAGE, (*row.values(), utc_now()))
        pk = int(cursor.lastrowid or 0)
        self.conn.execute(
            "insert into raw_messages (message_pk, compression, size, data) values (?, ?, ?, ?)",
            (pk, RAW_COMPRESSION, len(raw), compressed or compress_raw(raw)),
        )
        return pk

    def update_message(self, pk: int, **values: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        self.conn.execute(
            f"update messages set {assignments} where id = ?",  # noqa: S608 - caller's column names
            (*values.values(), pk),
        )

    def read_raw(self, pk: int) -> bytes:
        row = self.conn.execute(
            "select compression, data from raw_messages where message_pk = ?", (pk,)
        ).fetchone()
        if row is None:
            raise StoreError(f"message {pk} has no stored raw bytes")
        compression, data = row
        return decompress_raw(data, compression)

    def iter_message_pks(self) -> Iterator[tuple[int, str, str]]:
        """(id, status, mailbox) of every message, oldest first."""
        last = 0
        while True:
            rows = self.conn.execute(
                "select id, status, mailbox from messages where id > ? order by id limit 500",
                (last,),
            ).fetchall()
            if not rows:
                return
            for pk, status, mailbox in rows:
                yield int(pk), str(status), str(mailbox)
            last = int(rows[-1][0])

    # -- releases ------------------------------------------------------------------------

    def find_release(self, keys: tuple[str, ...], content_hash: str) -> StoredRelease | None:
        """The release known by the first of `keys` that is known at all (one query)."""
        if not keys:
            return None
        marks = ", ".join("?" for _ in keys)
        sql = _FIND_RELEASE.format(marks)
        found = {
            key: StoredRelease(int(pk), str(status), bool(has_text))
            for key, pk, status, has_text in self.conn.execute(sql, (content_hash, *keys))
        }
        return next((found[key] for key in keys if key in found), None)

    def create_release(self, release: Release, row: ReleaseRow, reuse_id: int | None) -> int:
        """A new release row (reparse: under `reuse_id`, its id from before, when free)."""
        values = _release_columns(release, row)
        if reuse_id is not None and self.unclaimed(reuse_id):
            values.update(message_count=1, version_count=0)
            self._index_new_releases()  # the update trigger re-indexes a changed text
            self.conn.execute(_update_release_sql(tuple(values)), (*values.values(), reuse_id))
            return reuse_id
        now = utc_now()
        values.update(first_seen_at=now, last_seen_at=now, message_count=1, version_count=0)
        cursor = self.conn.execute(_insert_release_sql(tuple(values)), tuple(values.values()))
        release_id = int(cursor.lastrowid or 0)
        self._unindexed.append((release_id, values["title"], values["body_text"]))
        if not self.conn.in_transaction:
            self._index_new_releases()
        return release_id

    def _index_new_releases(self) -> None:
        """Add the releases created since the last call to the full-text index, in one
        statement. The writer does it, not an insert trigger (schema.py, migration 10),
        and once a batch: FTS5 writes its pending terms out as a new segment whenever a
        statement opens a savepoint (any statement that runs a trigger or checks a foreign
        key), so indexing each release as it came cost a segment a release (issue I).

        Called before COMMIT, and before any statement whose triggers change the index
        (a text update or a delete), which must find every release indexed."""
        if self._unindexed:
            self.conn.executemany(
                "insert into releases_fts (rowid, title, body_text) values (?, ?, ?)",
                self._unindexed,
            )
            self._unindexed.clear()

    def join_release(
        self, release_id: int, release: Release, row: ReleaseRow, *, replace: bool = False
    ) -> None:
        """One more message of a known release: its text wins if it is the newest mail, or
        always with `replace` (the first published copy of a quarantined release)."""
        now = utc_now()
        latest = self.conn.execute(
            "update releases set message_count = message_count + 1, last_seen_at = ?"
            " where id = ? returning latest_sent_at",
            (now, release_id),
        ).fetchone()[0]
        sent_at = row.sent_at
        if not replace and latest is not None and sent_at is not None and sent_at < latest:
            return  # an older copy arrived late: the release keeps showing the newer one
        values = _release_columns(release, row)
        values["latest_sent_at"] = sent_at if replace else sent_at or latest
        self._index_new_releases()  # the update trigger re-indexes a changed text
        self.conn.execute(_update_release_sql(tuple(values)), (*values.values(), release_id))

    def record_release(
        self,
        release_id: int,
        release: Release,
        keys: tuple[str, ...],
        message_pk: int,
        row: ReleaseRow,
    ) -> bool:
        """Record the release's keys, the message's link and its text as a version (True
        when that text is new), and its contract awards."""
        self.conn.executemany(
            "insert or ignore into release_keys (key, release_id) values (?, ?)",
            [(key, release_id) for key in keys],
        )
        self.conn.execute(
            "update messages set release_id = ? where id = ?", (release_id, message_pk)
        )
        new = self._add_version(release_id, release, row.content_hash, message_pk, row.sent_at)
        shown = self.conn.execute(
            "select content_hash from releases where id = ?", (release_id,)
        ).fetchone()
        if new and shown is not None and shown[0] == row.content_hash:
            self.save_awards(release_id, release.awards)  # not for an older text arriving late
        return new

    def save_awards(self, release_id: int, awards: tuple[ContractAward, ...]) -> None:
        """The release's contract awards are those of its newest text."""
        self.conn.execute("delete from contract_awards where release_id = ?", (release_id,))
        self.conn.executemany(
            "insert into contract_awards (release_id, position, branch, contractor,"
            " contractor_location, amount_usd, contract_number, is_modification, contract_type,"
            " work_location, completion_date, contracting_activity, small_business, paragraph)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    release_id,
                    position,
                    a.branch,
                    a.contractor,
                    a.contractor_location,
                    a.amount_usd,
                    a.contract_number,
                    int(a.is_modification),
                    a.contract_type,
                    a.work_location,
                    a.completion_date,
                    a.contracting_activity,
                    int(a.small_business),
                    a.paragraph,
                )
                for position, a in enumerate(awards, start=1)
            ],
        )

    def _status_of(self, release_id: int) -> str | None:
        row = self.conn.execute(
            "select status from releases where id = ?", (release_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def _add_version(
        self,
        release_id: int,
        release: Release,
        content_hash: str,
        message_pk: int,
        sent_at: str | None,
    ) -> bool:
        cursor = self.conn.execute(
            "insert or ignore into release_versions (release_id, version, content_hash, title,"
            " release_date, url, body_text, body_html, message_pk, sent_at, seen_at)"
            " select ?, coalesce(max(version), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ?"
            " from release_versions where release_id = ?",
            (
                release_id,
                content_hash,
                release.title,
                release.release_date,
                release.url,
                release.body_text,
                release.body_html,
                message_pk,
                sent_at,
                utc_now(),
                release_id,
            ),
        )
        if cursor.rowcount != 1:
            return False
        self.conn.execute(
            "update releases set version_count = version_count + 1 where id = ?", (release_id,)
        )
        return True

    def release_quarantined(self, release_id: int) -> int:
        """Publish a quarantined release after review; return how many of its messages
        were quarantined. Raises StoreError when there is no such quarantined release."""
        status = self._status_of(release_id)
        if status is None:
            raise StoreError(f"no release {release_id}")
        if status != "quarantined":
            raise StoreError(f"release {release_id} is {status}, not quarantined")
        self.conn.execute(
            "update releases set status = 'published', quarantine_reason = null where id = ?",
            (release_id,),
        )
        cursor = self.conn.execute(
            "update messages set status = 'stored', released_at = ?"
            " where release_id = ? and status = 'quarantined'",
            (utc_now(), release_id),
        )
        return cursor.rowcount

    def released_after_review(self) -> set[int]:
        """The messages an operator released with `govfeed release`."""
        rows = self.conn.execute("select id from messages where released_at is not null")
        return {int(pk) for (pk,) in rows}

    # -- reparse support -----------------------------------------------------------------

    def oversized_messages(self) -> set[int]:
        """Messages over a mailbox's max_message_bytes, stored from their header only."""
        rows = self.conn.execute("select id from messages where server_size is not null")
        return {int(pk) for (pk,) in rows}

    def reset_release_links(self) -> None:
        """Forget how messages map to releases, keeping the release rows (and their ids)."""
        self.conn.execute("delete from release_keys")
        self.conn.execute("delete from contract_awards")
        self.conn.execute("delete from release_versions")
        self.conn.execute("update releases set message_count = 0, latest_sent_at = null")
        self.conn.execute(
            "update messages set release_id = null, duplicate_of = null, message_id_clash = null"
        )

    def unclaimed(self, release_id: int) -> bool:
        """True for a release row that no message has claimed yet in this reparse."""
        row = self.conn.execute(
            "select message_count from releases where id = ?", (release_id,)
        ).fetchone()
        return row is not None and int(row[0]) == 0

    def drop_unclaimed_releases(self) -> int:
        """Delete releases no message points at any more; return how many."""
        self._index_new_releases()  # the delete trigger takes them out of the index
        cursor = self.conn.execute("delete from releases where message_count = 0")
        return cursor.rowcount

    def snapshot_for_reparse(self) -> None:
        """Keep every message's and release's status, and each message's release id, in
        temporary tables: what reparse compares with and reuses, held by SQLite (on disk
        past its cache), not in Python dicts that grew ~600 bytes a message."""
        for table, extra in (("messages", ", release_id"), ("releases", "")):
            self.conn.execute(f"drop table if exists temp.before_{table}")
            self.conn.execute(
                f"create temp table before_{table} as"  # noqa: S608 - fixed names
                f" select id, status{extra} from main.{table}"
            )
            self.conn.execute(f"create unique index temp.before_{table}_id on before_{table}(id)")

    def release_before_reparse(self, message_pk: int) -> int | None:
        """The release a message belonged to when `snapshot_for_reparse` ran."""
        row = self.conn.execute(
            "select release_id from temp.before_messages where id = ?", (message_pk,)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def status_changes(self) -> dict[str, int]:
        """ "releases published -> quarantined": n, ... for every row whose status moved
        since `snapshot_for_reparse` ("none" for a row that was not there or is gone)."""
        changes: dict[str, int] = {}
        for table in ("releases", "messages"):
            moved = self.conn.execute(
                f"select coalesce(b.status, 'none'), coalesce(t.status, 'none'), count(*)"  # noqa: S608
                f" from temp.before_{table} b left join main.{table} t on t.id = b.id"
                " where t.status is not b.status group by 1, 2"
                " union all"
                f" select 'none', t.status, count(*) from main.{table} t"
                f" where t.id not in (select id from temp.before_{table}) group by 2"
            )
            for old, new, count in moved:
                changes[f"{table} {old} -> {new}"] = int(count)
            self.conn.execute(f"drop table temp.before_{table}")
        return dict(sorted(changes.items()))

    # -- mailbox cursor ------------------------------------------------------------------

    def save_cursor(self, mailbox: str, folder: str, uidvalidity: int, last_uid: int) -> None:
        """Move a folder's cursor and stamp the poll a success; a `since` scan whose last
        UID this reaches is done."""
        now = utc_now()
        self.conn.execute(
            "insert into mailbox_state (mailbox, folder, uidvalidity, last_uid, last_poll_at,"
            " last_success_at, last_error) values (?, ?, ?, ?, ?, ?, null)"
            " on conflict (mailbox, folder) do update set uidvalidity = excluded.uidvalidity,"
            " last_uid = excluded.last_uid, last_poll_at = excluded.last_poll_at,"
            " last_success_at = excluded.last_success_at, last_error = null,"
            " since_until_uid = case when excluded.last_uid < since_until_uid"
            " then since_until_uid end, exists_at_cursor = null",
            (mailbox, folder, uidvalidity, last_uid, now, now),
        )

    def save_exists(self, mailbox: str, folder: str, count: int) -> None:
        """After a poll read a whole folder: the server had `count` messages at or below
        the cursor (see `load_exists`)."""
        self.conn.execute(
            "update mailbox_state set exists_at_cursor = ? where mailbox = ? and folder = ?",
            (count, mailbox, folder),
        )

    def load_exists(self, mailbox: str, folder: str) -> int | None:
        """The count `save_exists` saved, or None when the cursor moved since."""
        row = self.conn.execute(
            "select exists_at_cursor from mailbox_state where mailbox = ? and folder = ?",
            (mailbox, folder),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def start_scan(
        self, mailbox: str, folder: str, uidvalidity: int, since_until_uid: int | None
    ) -> None:
        """Begin reading a folder from its first UID under `uidvalidity` (a first sync, or
        a re-scan after a UIDVALIDITY change). With `since_until_uid`, the UIDs up to it
        are read only when received on or after the mailbox's `since`, until the cursor
        passes it, even across restarts."""
        self.conn.execute(
            "insert into mailbox_state (mailbox, folder, uidvalidity, last_uid, last_poll_at,"
            " since_until_uid) values (?, ?, ?, 0, ?, ?)"
            " on conflict (mailbox, folder) do update set uidvalidity = excluded.uidvalidity,"
            " last_uid = 0, last_poll_at = excluded.last_poll_at,"
            " since_until_uid = excluded.since_until_uid, exists_at_cursor = null",
            (mailbox, folder, uidvalidity, utc_now(), since_until_uid),
        )

    def load_cursor(self, mailbox: str, folder: str) -> tuple[int | None, int, int | None]:
        """(uidvalidity, last_uid, since_until_uid) for a folder; (None, 0, None) before the
        first sync. since_until_uid is set while a `since` scan is unfinished."""
        row = self.conn.execute(
            "select uidvalidity, last_uid, since_until_uid from mailbox_state"
            " where mailbox = ? and folder = ?",
            (mailbox, folder),
        ).fetchone()
        if row is None:
            return None, 0, None
        return row[0], int(row[1] or 0), row[2]

    def save_poll_error(self, mailbox: str, folder: str, error: str) -> None:
        self.conn.execute(
            "insert into mailbox_state (mailbox, folder, last_poll_at, last_error)"
            " values (?, ?, ?, ?) on conflict (mailbox, folder) do update set"
            " last_poll_at = excluded.last_poll_at, last_error = excluded.last_error",
            (mailbox, folder, utc_now(), error[:500]),
        )

    def save_watch(self, mailbox: str, folders: dict[str, tuple[str, str | None]]) -> None:
        """How each folder is watched now and when it was last checked, {folder: (watch,
        last_checked_at)}; a check never moves the cursor nor counts as a poll."""
        self.conn.executemany(
            "insert into mailbox_state (mailbox, folder, watch, last_checked_at)"
            " values (?, ?, ?, ?) on conflict (mailbox, folder) do update set"
            " watch = excluded.watch,"
            " last_checked_at = coalesce(excluded.last_checked_at, last_checked_at)",
            [(mailbox, folder, watch, checked) for folder, (watch, checked) in folders.items()],
        )


def _create_private(path: Path, group: str | None) -> None:
    """Create a missing database file readable by its owner only (0600), or also by
    `group` (0640): it holds the operator's mail, subscriber addresses included. SQLite
    gives the -wal and -shm files it creates beside it the same mode."""
    mode = 0o640 if group else 0o600
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, mode)  # the umask may not widen it, and must not narrow 0640 either
        if group:
            os.fchown(fd, -1, grp.getgrnam(group).gr_gid)
    except (KeyError, OSError) as err:
        os.close(fd)
        path.unlink()
        why = f"no group {group!r}" if isinstance(err, KeyError) else str(err)
        raise StoreError(f"cannot create database {path} for group {group}: {why}") from err
    os.close(fd)


# The statements for a release's columns, made once per set of names (a few in all), not
# for every message.
@lru_cache(maxsize=16)
def _insert_release_sql(names: tuple[str, ...]) -> str:
    marks = ", ".join("?" for _ in names)
    return f"insert into releases ({', '.join(names)}) values ({marks})"  # noqa: S608


@lru_cache(maxsize=16)
def _update_release_sql(names: tuple[str, ...]) -> str:
    assignments = ", ".join(f"{name} = ?" for name in names)
    return f"update releases set {assignments} where id = ?"  # noqa: S608


def _release_columns(release: Release, row: ReleaseRow) -> dict[str, Any]:
    return {
        "title": release.title,
        "release_type": release.release_type,
        "release_date": release.release_date,
        "release_date_source": release.release_date_source,
        "agency": row.agency,
        "agency_as_written": row.agency_as_written,
        "account_code": release.account_code,
        "bulletin_id": release.bulletin_id,
        "url": release.url,
        "body_text": release.body_text,
        "body_html": release.body_html,
        "links": json.dumps([{"url": link.url, "text": link.text} for link in release.links]),
        "profile": release.profile,
        "sender": row.sender,
        "status": row.status,
        "quarantine_reason": row.quarantine_reason,
        "content_hash": row.content_hash,
        "latest_sent_at": row.sent_at,
    }


__all__ = ["MessageRow", "ReleaseRow", "Store", "iso"]
