"""Store: pragmas, recorded migrations, raw bytes kept, releases, versions, cursors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from govfeed import dedupe, schema
from govfeed.errors import StoreError
from govfeed.schema import SCHEMA_VERSION
from govfeed.store import MessageRow, Store
from tests.test_dedupe import BASE


def save(store: Store, release=BASE, sent_at="2024-07-28T14:00:00Z", n=1):  # type: ignore[no-untyped-def]
    pk = store.insert_message(
        MessageRow(sha256=f"sha{n}", mailbox="import", source="t", size=3, status="stored"), b"raw"
    )
    identity = dedupe.identify(release)
    return store.save_release(
        release,
        keys=identity.keys,
        lookup=identity.lookup,
        content_hash=identity.content_hash,
        message_pk=pk,
        sent_at=sent_at,
        status="published",
    )


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


def test_fts_finds_releases(tmp_path: Path) -> None:
    with Store(tmp_path / "g.db") as store:
        save(store)
        hits = store.conn.execute(
            "select title from releases where id in"
            " (select rowid from releases_fts where releases_fts match 'paragraphs')"
        ).fetchall()
        assert hits == [("Joint Press Release",)]  # porter stemming: paragraphs ~ paragraph


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
        save(old)
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
        [(title,)] = store.conn.execute("select title from published_release_versions").fetchall()
        assert title == BASE.title
