"""Store: pragmas, recorded migrations, raw bytes kept, releases, versions, cursors."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from govfeed import dedupe, schema
from govfeed.errors import StoreError
from govfeed.models import ContractAward, Release
from govfeed.schema import SCHEMA_VERSION
from govfeed.store import MessageRow, ReleaseRow, Store
from tests.test_dedupe import BASE


@dataclass(frozen=True)
class Saved:
    release_id: int
    created: bool
    new_version: bool


def save(store: Store, release=BASE, sent_at="2024-07-28T14:00:00Z", n=1):  # type: ignore[no-untyped-def]
    """Store one message of `release` the way the pipeline does for a published release."""
    pk = store.insert_message(
        MessageRow(sha256=f"sha{n}", mailbox="import", source="t", size=3, status="stored"), b"raw"
    )
    identity = dedupe.identify(release)
    row = ReleaseRow(
        sender="account:USDOD",
        agency=release.agency,
        agency_as_written=release.agency,
        status="published",
        quarantine_reason=None,
        content_hash=identity.content_hash,
        sent_at=sent_at,
    )
    found = store.find_release(identity.lookup, identity.content_hash)
    if found is None:
        release_id = store.create_release(release, row, None)
    else:
        release_id = found.id
        store.join_release(release_id, release, row)
    new = store.record_release(release_id, release, identity.keys, pk, row)
    return Saved(release_id, found is None, new and found is not None)


def test_open_sets_wal_and_records_migrations(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "g.db"
    with Store(path) as store:
        assert store.conn.execute("pragma journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("pragma synchronous").fetchone()[0] == 1  # NORMAL
        assert store.conn.execute("pragma busy_timeout").fetchone()[0] >= 5000
        assert store.schema_version == SCHEMA_VERSION
        names = set(store.db.table_names())
    assert {"releases", "messages", "mailbox_state", "releases_fts", "raw_messages"} <= names
    with Store(path) as again:  # reopening applies nothing twice
        rows = again.conn.execute("select count(*) from govfeed_migrations").fetchone()[0]
        assert rows == SCHEMA_VERSION


def test_unopenable_database_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open database"):
        Store(tmp_path / "dir.db")


def test_raw_bytes_round_trip_compressed(tmp_path: Path) -> None:
    with Store(tmp_path / "g.db") as store:
        data = b"From: a@b\r\n\r\n" + b"x" * 10_000
        pk = store.insert_message(
            MessageRow(sha256="s", mailbox="import", source="t", size=len(data), status="stored"),
            data,
        )
        assert store.read_raw(pk) == data
        stored = store.conn.execute("select length(data) from raw_messages").fetchone()[0]
        assert stored < len(data) / 10


def test_raw_bytes_stored_before_zstd_stay_readable(tmp_path: Path) -> None:
    """Rows written with zlib (before zstd) are read by their own `compression`; reparse
    needs every one of them."""
    data = b"From: a@b\r\n\r\n" + b"old mail " * 1000
    with Store(tmp_path / "g.db") as store:
        pk = store.insert_message(
            MessageRow(sha256="s", mailbox="import", source="t", size=len(data), status="stored"),
            data,
        )
        assert store.conn.execute("select compression from raw_messages").fetchone() == ("zstd",)
        store.conn.execute(
            "update raw_messages set compression = 'zlib', data = ? where message_pk = ?",
            (zlib.compress(data), pk),
        )
        assert store.read_raw(pk) == data


def test_same_release_twice_is_one_release_seen_twice(tmp_path: Path) -> None:
    with Store(tmp_path / "g.db") as store:
        first = save(store, n=1)
        topic2 = save(store, replace(BASE, url=BASE.url), n=2)
        assert first.created and not topic2.created and not topic2.new_version
        row = store.conn.execute("select message_count, version_count from releases").fetchone()
        assert row == (1 + 1, 1)


def test_changed_body_is_a_new_version_and_newest_mail_wins(tmp_path: Path) -> None:
    corrected = replace(BASE, body_text=BASE.body_text + " Corrected.")
    with Store(tmp_path / "g.db") as store:
        save(store, n=1, sent_at="2024-07-28T14:00:00Z")
        again = save(store, corrected, n=2, sent_at="2024-07-29T14:00:00Z")
        late_old = save(store, BASE, n=3, sent_at="2024-07-27T14:00:00Z")
        assert again.new_version and not late_old.new_version
        body, versions, count = store.conn.execute(
            "select body_text, version_count, message_count from releases"
        ).fetchone()
        assert body.endswith("Corrected.")
        assert (versions, count) == (2, 3)


def test_contract_awards_are_those_of_the_text_the_release_shows(tmp_path: Path) -> None:
    def award(contractor: str) -> ContractAward:
        return ContractAward(
            "Army", contractor, "Huntsville, Alabama", 1000, "W1", False, None, None, None,
            None, False, f"{contractor} was awarded $1,000.",
        )  # fmt: skip

    first = replace(BASE, release_type="contract", awards=(award("Alpha Corp."),))
    corrected = replace(first, body_text=BASE.body_text + " Corrected.", awards=(award("Beta"),))
    stale = replace(first, body_text=BASE.body_text + " Older.", awards=(award("Gamma"),))
    with Store(tmp_path / "g.db") as store:
        save(store, first, n=1, sent_at="2024-07-28T14:00:00Z")
        save(store, corrected, n=2, sent_at="2024-07-29T14:00:00Z")
        save(store, stale, n=3, sent_at="2024-07-27T14:00:00Z")  # an older text, late
        contractors = store.conn.execute("select contractor from contract_awards").fetchall()
    assert contractors == [("Beta",)]


def test_fts_finds_releases(tmp_path: Path) -> None:
    with Store(tmp_path / "g.db") as store:
        save(store)
        hits = store.conn.execute(
            "select title from releases where id in"
            " (select rowid from releases_fts where releases_fts match 'paragraphs')"
        ).fetchall()
        assert hits == [("Joint Press Release",)]  # porter stemming: paragraphs ~ paragraph


def test_fts_follows_text_changes_and_only_them(tmp_path: Path) -> None:
    """A new text is searchable at once and the old one is gone; counting another copy of
    a release leaves the index alone (it was re-indexed on every update of any column)."""

    def index_blocks(store: Store) -> list[tuple[int, bytes]]:
        return store.conn.execute("select id, block from releases_fts_data order by id").fetchall()

    def search(store: Store, words: str) -> list[int]:
        sql = "select rowid from releases_fts where releases_fts match ?"
        return [row[0] for row in store.conn.execute(sql, (words,))]

    with Store(tmp_path / "g.db") as store:
        save(store, n=1)
        before = index_blocks(store)
        store.conn.execute("update releases set message_count = message_count + 1, status = status")
        assert index_blocks(store) == before
        save(store, replace(BASE, title="Joint Press Release Amended"), n=2)
        assert search(store, "amended") == [1]
        save(store, replace(BASE, title="Joint Statement"), n=3, sent_at="2030-01-01T00:00:00Z")
        assert search(store, "amended") == []
        assert search(store, "statement") == [1]
        store.conn.execute("insert into releases_fts (releases_fts) values ('integrity-check')")


def test_releases_created_in_a_transaction_are_indexed_once_it_commits(tmp_path: Path) -> None:
    """The writer indexes a batch's new releases together, before COMMIT (no insert
    trigger since migration 10). A release whose text changes, or that is dropped, in the
    same transaction as its creation is indexed first, so the update and delete triggers
    find it; a rolled-back batch leaves nothing to index."""

    def distinct(title: str, n: int) -> Release:  # another bulletin, another text
        return replace(
            BASE, title=title, bulletin_id=f"b{n}", url=f"https://x/{n}", body_text=title
        )

    def search(store: Store, words: str) -> list[int]:
        sql = "select rowid from releases_fts where releases_fts match ?"
        return [row[0] for row in store.conn.execute(sql, (words,))]

    with Store(tmp_path / "g.db") as store:
        triggers = "select name from sqlite_master where type = 'trigger'"
        assert "releases_ai" not in {n for (n,) in store.conn.execute(triggers)}
        with store.transaction():
            first = save(store, n=1).release_id
            other = save(store, distinct("Other Release", 2), n=2)
            save(store, replace(BASE, title="Joint Statement"), n=3, sent_at="2030-01-01T00:00:00Z")
        assert search(store, "statement") == [first]
        assert search(store, "other") == [other.release_id]
        assert search(store, "joint press") == []  # the first text, replaced in the batch

        def failing_batch() -> None:
            with store.transaction():
                save(store, distinct("Never Kept", 4), n=5)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            failing_batch()
        with store.transaction():
            save(store, distinct("Kept Later", 5), n=6)
        assert search(store, "never") == []
        assert len(search(store, "kept")) == 1

        save(store, distinct("Outside Transaction", 6), n=7)
        assert len(search(store, "outside")) == 1  # autocommit: indexed at once

        with store.transaction():  # as reparse does: a new release, then every one dropped
            save(store, distinct("Orphan Notice", 3), n=4)
            store.reset_release_links()
            store.conn.execute("update messages set release_id = null")
            assert store.drop_unclaimed_releases() == 5
        assert search(store, "orphan OR statement OR kept") == []
        store.conn.execute("insert into releases_fts (releases_fts) values ('integrity-check')")


def test_transaction_rolls_back_everything_on_error(tmp_path: Path) -> None:
    with Store(tmp_path / "g.db") as store:

        def failing_batch() -> None:
            with store.transaction():
                save(store)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            failing_batch()
        assert store.conn.execute("select count(*) from messages").fetchone()[0] == 0
        assert store.conn.execute("select count(*) from releases").fetchone()[0] == 0


def test_cursor_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path / "g.db") as store:
        assert store.load_cursor("dod", "INBOX") == (None, 0, None)
        store.save_cursor("dod", "INBOX", 42, 17)
        assert store.load_cursor("dod", "INBOX") == (42, 17, None)
        store.save_poll_error("dod", "INBOX", "connection refused")
        row = store.conn.execute("select last_uid, last_error from mailbox_state").fetchone()
        assert row == (17, "connection refused")


def test_a_database_of_an_older_schema_is_upgraded_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made by a govfeed with the first two migrations only (a deployment
    upgrading) gets the later ones on open, its rows untouched."""
    path = tmp_path / "g.db"
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:2])
    with Store(path) as old:
        old.conn.execute(
            "insert into releases (id, title, release_type, release_date, agency, body_text,"
            " status, message_count) values (1, ?, 'release', '2024-07-27', ?, 'Text.',"
            " 'published', 1)",
            (BASE.title, BASE.agency),
        )
        old.conn.execute(
            "insert into release_versions (release_id, version, content_hash, title)"
            " values (1, 1, 'h', ?)",
            (BASE.title,),
        )
        old.conn.execute(
            "insert into messages (id, sha256, mailbox, status, error, release_id) values"
            " (1, 'a', 'import', 'quarantined', 'quarantined: no trusted_authserv_ids', null),"
            " (2, 'b', 'import', 'stored',"
            " 'released after review: quarantined: DKIM failed', 1)"
        )
        old.conn.execute(
            "insert into mailbox_state (mailbox, folder, uidvalidity, last_uid)"
            " values ('dod', 'INBOX', 42, 17)"
        )
        assert old.schema_version == 2
    monkeypatch.undo()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.load_cursor("dod", "INBOX") == (42, 17, None)
        views = {
            n for (n,) in store.conn.execute("select name from sqlite_master where type = 'view'")
        }
        assert {"published_releases", "published_release_versions"} <= views
        assert "published_contract_awards" in views
        [(title,)] = store.conn.execute("select title from published_release_versions").fetchall()
        assert title == BASE.title
        # migration 5: the review reason and the operator's release get columns of their own
        messages = store.conn.execute(
            "select status, error, quarantine_reason, released_at is not null from messages"
        ).fetchall()
        assert messages == [
            ("quarantined", None, "no trusted_authserv_ids", 0),
            ("stored", None, "DKIM failed", 1),
        ]
        assert store.released_after_review() == {2}
        [(agency, written)] = store.conn.execute(
            "select agency, agency_as_written from releases"
        ).fetchall()
        assert agency == written == BASE.agency
        # migration 10: the release indexed by the old insert trigger stays found, and the
        # writer indexes new ones itself
        save(store, replace(BASE, title="Upgraded Notice", bulletin_id="b2", url="https://x/2"))
        sql = "select rowid from releases_fts where releases_fts match ?"
        assert store.conn.execute(sql, ("press",)).fetchall() == [(1,)]
        assert len(store.conn.execute(sql, ("upgraded",)).fetchall()) == 1
        store.conn.execute("insert into releases_fts (releases_fts) values ('integrity-check')")


def test_messages_known_too_large_by_their_error_get_their_server_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema 9: a database whose oversized messages were known only by their error text
    gets `server_size` from it; other failures stay unmarked."""
    path = tmp_path / "g.db"
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:8])
    with Store(path) as old:
        old.conn.execute(
            "insert into messages (id, sha256, mailbox, status, size, error) values"
            " (1, 'a', 'dod', 'failed', 4000, 'too large: 31457280 bytes > limit 26214400'),"
            " (2, 'b', 'dod', 'failed', 900, 'parse: too large: a header'),"
            " (3, 'c', 'dod', 'stored', 900, null)"
        )
    monkeypatch.undo()
    with Store(path) as store:
        sizes = store.conn.execute("select id, server_size from messages order by id").fetchall()
        assert sizes == [(1, 31457280), (2, None), (3, None)]
        assert store.oversized_messages() == {1}


def test_reparse_status_changes_count_moved_new_and_gone_rows(tmp_path: Path) -> None:
    """What reparse prints as "changed:", from the snapshot SQLite keeps (not Python dicts
    of every row): a status that moved, a row that is new, a row that is gone."""
    with Store(tmp_path / "g.db") as store:

        def other(n: int) -> object:
            url = f"https://www.war.gov/x/{n}/"
            return replace(BASE, title=f"Other {n}", url=url, bulletin_id=f"2.{n}", body_text=url)

        first = save(store, n=1)
        second = save(store, other(2), n=2)
        store.snapshot_for_reparse()
        save(store, other(3), n=3)
        assert store.release_before_reparse(1) == first.release_id
        store.conn.execute(
            "update releases set status = 'quarantined' where id = ?", (first.release_id,)
        )
        store.conn.execute(
            "update messages set release_id = null where release_id = ?", (second.release_id,)
        )
        for table in ("release_keys", "release_versions"):
            store.conn.execute(f"delete from {table} where release_id = ?", (second.release_id,))  # noqa: S608
        store.conn.execute("delete from releases where id = ?", (second.release_id,))
        assert store.status_changes() == {
            "messages none -> stored": 1,
            "releases none -> published": 1,
            "releases published -> none": 1,
            "releases published -> quarantined": 1,
        }
        temp = store.conn.execute("select name from sqlite_temp_master where type = 'table'")
        assert temp.fetchall() == []  # the snapshot is gone with the report
