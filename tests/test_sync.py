"""sync.poll_mailbox against a real Dovecot: cursors, UIDVALIDITY, TLS, failures, post-actions."""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from govfeed import sync
from govfeed.config import MailboxSettings, Settings
from govfeed.store import Store
from tests.dovecot import Account, CutProxy, Dovecot

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import mailgen  # noqa: E402 - lives in examples/, found through the path above

# The test mail carries Gmail's Authentication-Results, as mail fetched from Gmail would.
SETTINGS = Settings.model_validate({"authentication": {"trusted_authserv_ids": ["mx.google.com"]}})


@pytest.fixture
def debug_logs() -> Iterator[None]:
    """Let debug events through to `capture_logs` whatever level an earlier test set."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


def release(n: int, pad_to: int | None = None) -> bytes:
    """DoD release number `n`: its own title, article, bulletin id and Message-ID."""
    return mailgen.dod_release(
        title=f"Department Update {n} on Readiness and Alliance Cooperation",
        paragraphs=[f"Item {n}: the Department today announced progress with allies."],
        article_id=4_000_000 + n,
        bulletin_id=f"20240801.{300_000_000 + n}",
        message_id=f"<sync.{n}@public.govdelivery.com>",
        pad_to=pad_to,
    )


def rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """The rows of a query; none while the database or its schema does not exist yet (a
    daemon in a subprocess may not have created it)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return []
    try:
        conn.row_factory = sqlite3.Row
        return [tuple(row) for row in conn.execute(sql, args)]
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return []
        raise
    finally:
        conn.close()


def state(db: Path, folder: str = "INBOX") -> dict[str, Any]:
    """The folder's `mailbox_state` row as a dict ({} before its first poll)."""
    columns = ("uidvalidity", "last_uid", "last_poll_at", "last_success_at", "last_error")
    found = rows(
        db,
        "select uidvalidity, last_uid, last_poll_at, last_success_at, last_error"
        " from mailbox_state where folder = ?",
        folder,
    )
    return dict(zip(columns, found[0], strict=True)) if found else {}


def stored_uids(db: Path, folder: str = "INBOX") -> list[int]:
    found = rows(db, "select uid from messages where folder = ? order by uid", folder)
    return [uid for (uid,) in found]


def poll(db: Path, mailbox: MailboxSettings, **kwargs: Any) -> sync.PollResult:
    with Store(db) as store:
        return sync.poll_mailbox(store, SETTINGS, mailbox, **kwargs)


def test_first_sync_stores_every_message_and_the_cursor(
    imap_account: Account, tmp_path: Path
) -> None:
    imap_account.append_many(release(n) for n in range(1, 6))
    db = tmp_path / "g.db"
    result = poll(db, imap_account.mailbox_settings(name="dod", batch_size=2))
    assert result.ok and not result.stopped
    assert (result.summary.read, result.summary.new_releases) == (5, 5)
    [folder] = result.folders
    assert (folder.folder, folder.fetched, folder.last_uid, folder.rescanned) == (
        "INBOX",
        5,
        5,
        True,
    )
    assert stored_uids(db) == [1, 2, 3, 4, 5]
    assert rows(db, "select distinct mailbox, uidvalidity from messages") == [
        ("dod", folder.uidvalidity)
    ]
    cursor = state(db)
    assert (cursor["uidvalidity"], cursor["last_uid"], cursor["last_error"]) == (
        folder.uidvalidity,
        5,
        None,
    )
    assert cursor["last_success_at"] == cursor["last_poll_at"] is not None


def test_incremental_poll_reads_only_the_new_mail(imap_account: Account, tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    mailbox = imap_account.mailbox_settings()
    imap_account.append_many(release(n) for n in range(1, 4))
    assert poll(db, mailbox).summary.read == 3
    imap_account.deliver(release(4))
    imap_account.deliver(release(5))
    result = poll(db, mailbox)
    assert (result.summary.read, result.summary.new_releases) == (2, 2)
    assert not result.folders[0].rescanned
    assert stored_uids(db) == [1, 2, 3, 4, 5]
    assert state(db)["last_uid"] == 5


def test_rerunning_a_poll_changes_nothing_but_the_poll_time(
    imap_account: Account, tmp_path: Path
) -> None:
    db = tmp_path / "g.db"
    mailbox = imap_account.mailbox_settings()
    imap_account.append_many(release(n) for n in range(1, 4))
    poll(db, mailbox)
    before = rows(db, "select id, sha256, release_id, status from messages order by id")
    releases = rows(db, "select id, title, message_count from releases order by id")
    with sqlite3.connect(db) as conn:
        conn.execute("update mailbox_state set last_poll_at = '2000-01-01T00:00:00Z'")
    conn.close()
    result = poll(db, mailbox)
    assert result.ok and result.summary.read == 0
    assert rows(db, "select id, sha256, release_id, status from messages order by id") == before
    assert rows(db, "select id, title, message_count from releases order by id") == releases
    after = state(db)
    assert after["last_uid"] == 3
    # An empty poll is a success: the time moves, so `govfeed status` does not go stale.
    assert after["last_poll_at"] > "2000-01-01T00:00:00Z"
    assert after["last_success_at"] == after["last_poll_at"]


def test_a_new_uidvalidity_rescans_the_folder_and_stores_nothing_twice(
    imap_account: Account, tmp_path: Path
) -> None:
    db = tmp_path / "g.db"
    mailbox = imap_account.mailbox_settings(folders=["Feeds"])
    imap_account.create_folder("Feeds")
    for n in (1, 2, 3):
        imap_account.deliver(release(n), folder="Feeds")
    first = poll(db, mailbox).folders[0]
    imap_account.delete_folder("Feeds")
    imap_account.create_folder("Feeds")
    for n in (1, 2, 3, 4):  # the same three again (a server migration, say), and one new
        imap_account.deliver(release(n), folder="Feeds")
    with capture_logs() as logs:
        result = poll(db, mailbox)
    [again] = result.folders
    assert again.uidvalidity != first.uidvalidity and again.rescanned
    assert (result.summary.read, result.summary.duplicates, result.summary.new_releases) == (
        4,
        3,
        1,
    )
    assert rows(db, "select count(*), count(distinct sha256) from messages") == [(4, 4)]
    assert rows(db, "select count(*) from releases") == [(4,)]
    assert (state(db, "Feeds")["uidvalidity"], state(db, "Feeds")["last_uid"]) == (
        again.uidvalidity,
        4,
    )
    changed = [e for e in logs if e["event"] == "uidvalidity_changed"]
    assert [(e["old"], e["new"]) for e in changed] == [(first.uidvalidity, again.uidvalidity)]


def test_two_folders_have_a_cursor_each(imap_account: Account, tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    imap_account.create_folder("Archive")
    imap_account.append_many([release(1), release(2)])
    imap_account.deliver(release(3), folder="Archive")
    result = poll(db, imap_account.mailbox_settings(folders=["INBOX", "Archive"]))
    assert result.ok and result.summary.read == 3
    assert [(f.folder, f.last_uid) for f in result.folders] == [("INBOX", 2), ("Archive", 1)]
    assert stored_uids(db, "INBOX") == [1, 2] and stored_uids(db, "Archive") == [1]


def test_the_mailbox_authentication_policy_decides_what_is_quarantined(
    imap_account: Account, tmp_path: Path
) -> None:
    imap_account.append_many([release(1), release(2)])
    strict = imap_account.mailbox_config(name="strict", trusted_authserv_ids=[])
    settings = SETTINGS.model_validate({**SETTINGS.model_dump(), "mailboxes": [strict]})
    db = tmp_path / "g.db"
    with Store(db) as store:
        result = sync.poll_mailbox(store, settings, settings.mailbox("strict"))
    assert result.ok and result.summary.quarantined == 2
    assert rows(db, "select status, count(*) from messages group by status") == [("quarantined", 2)]
    assert poll(tmp_path / "trusting.db", imap_account.mailbox_settings()).summary.quarantined == 0


def test_a_missing_folder_fails_alone(imap_account: Account, tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    imap_account.deliver(release(1))
    result = poll(db, imap_account.mailbox_settings(folders=["Nope", "INBOX"]))
    assert not result.ok and result.failed == ["Nope"]
    assert result.connect_error is None
    assert "Nope: EXAMINE" in (state(db, "Nope")["last_error"] or "")
    assert stored_uids(db) == [1]
    assert state(db)["last_error"] is None
    assert result.line().startswith("test: read 1, new releases 1")
    assert "(failed: Nope: " in result.line()


@pytest.mark.parametrize("security", ["starttls", "imaps"])
def test_tls_with_a_verified_certificate_through_a_full_poll(
    imap_account: Account, tmp_path: Path, security: str
) -> None:
    imap_account.deliver(release(1))
    db = tmp_path / "g.db"
    assert poll(db, imap_account.mailbox_settings(security)).ok
    assert stored_uids(db) == [1]
    unknown_ca = imap_account.mailbox_settings(security, ca_file=None)  # system CAs only
    result = poll(tmp_path / "other.db", unknown_ca)
    assert not result.ok and not result.auth_failed
    assert "certificate not trusted" in (state(tmp_path / "other.db")["last_error"] or "")
    assert stored_uids(tmp_path / "other.db") == []


def test_a_wrong_password_is_recorded_as_a_failed_login(
    imap_account: Account, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password-91c2\n")
    wrong.chmod(0o600)
    db = tmp_path / "g.db"
    mailbox = imap_account.mailbox_settings(password_file=str(wrong), folders=["INBOX", "Sent"])
    with capture_logs() as logs:
        result = poll(db, mailbox)
    assert result.auth_failed and result.failed == ["INBOX", "Sent"]
    for folder in ("INBOX", "Sent"):
        error = state(db, folder)["last_error"]
        assert error.startswith("login failed: ")
        assert "not-the-password-91c2" not in error
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["login_failed"]
    assert "not-the-password-91c2" not in repr(logs)


def test_a_connection_cut_in_the_middle_of_a_fetch_loses_and_duplicates_nothing(
    dovecot: Dovecot, imap_account: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "POOL_MIN_MESSAGES", 10)  # the analyzer's worker pool in play
    total = 80
    imap_account.append_many(release(n, pad_to=30_000) for n in range(1, total + 1))
    db = tmp_path / "g.db"
    proxy = CutProxy(dovecot.imap_port)
    try:
        mailbox = imap_account.mailbox_settings(port=proxy.port, batch_size=10)
        proxy.cut_after(1_000_000)  # in the fourth batch of ~300 KB
        cut = poll(db, mailbox)
        assert not cut.ok and "UID FETCH" in (state(db)["last_error"] or "")
        kept = stored_uids(db)
        assert 0 < len(kept) < total and kept == list(range(1, len(kept) + 1))
        assert state(db)["last_uid"] == len(kept)  # the cursor covers exactly what is stored
        recovered = poll(db, mailbox)
    finally:
        proxy.close()
    assert recovered.ok and recovered.summary.read == total - len(kept)
    assert stored_uids(db) == list(range(1, total + 1))
    assert rows(db, "select count(*), count(distinct sha256) from messages") == [(total, total)]
    assert rows(db, "select count(*) from releases") == [(total,)]
    assert rows(db, "select count(*) from messages where status != 'stored'") == [(0,)]
    assert state(db)["last_error"] is None


def test_stop_ends_the_poll_after_the_batch_being_stored(
    imap_account: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap_account.append_many(release(n) for n in range(1, 31))
    stop = threading.Event()
    real_save = sync._save_analyzed

    def save_then_stop(*args: Any, **kwargs: Any) -> None:
        real_save(*args, **kwargs)
        stop.set()  # as SIGTERM would, while the next batch is being fetched

    monkeypatch.setattr(sync, "_save_analyzed", save_then_stop)
    db = tmp_path / "g.db"
    mailbox = imap_account.mailbox_settings(batch_size=10)
    result = poll(db, mailbox, stop=stop)
    assert result.stopped and result.ok
    assert stored_uids(db) == list(range(1, 11)) and state(db)["last_uid"] == 10
    monkeypatch.setattr(sync, "_save_analyzed", real_save)
    assert poll(db, mailbox).summary.read == 20
    assert stored_uids(db) == list(range(1, 31))


def test_since_limits_the_first_sync_only(imap_account: Account, tmp_path: Path) -> None:
    imap_account.append_many([release(1), release(2)])
    db = tmp_path / "g.db"
    mailbox = imap_account.mailbox_settings(since=date.today() + timedelta(days=2))
    assert poll(db, mailbox).summary.read == 0
    assert state(db)["last_uid"] == 2  # what `since` skipped is never read later either
    imap_account.deliver(release(3))
    assert poll(db, mailbox).summary.read == 1
    assert stored_uids(db) == [3]


def test_an_interrupted_since_sync_goes_on_with_since(
    imap_account: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`since` limits the mail there is at the first sync, also when that sync is stopped
    after its first batch: the next poll must not import the old mail above the cursor,
    and mail arriving later is read whatever its date."""
    old, new = datetime(2020, 1, 1, 12, tzinfo=UTC), datetime.now(UTC)
    with imap_account.client() as client:
        for n in range(1, 31):  # odd UIDs are old mail, even UIDs recent
            client.append("INBOX", release(n), msg_time=old if n % 2 else new)
    stop = threading.Event()
    real_save = sync._save_analyzed

    def save_then_stop(*args: Any, **kwargs: Any) -> None:
        real_save(*args, **kwargs)
        stop.set()

    monkeypatch.setattr(sync, "_save_analyzed", save_then_stop)
    db = tmp_path / "g.db"
    mailbox = imap_account.mailbox_settings(batch_size=5, since=date(2024, 1, 1))
    assert poll(db, mailbox, stop=stop).stopped
    assert stored_uids(db) == [2, 4, 6, 8, 10]
    assert rows(db, "select since_until_uid from mailbox_state") == [(30,)]
    monkeypatch.setattr(sync, "_save_analyzed", real_save)
    with imap_account.client() as client:  # arrives after the first sync began
        client.append("INBOX", release(31), msg_time=old)
    assert poll(db, mailbox).ok
    assert stored_uids(db) == [*range(2, 31, 2), 31]
    assert state(db)["last_uid"] == 31
    assert rows(db, "select since_until_uid from mailbox_state") == [(None,)]


def test_post_action_seen_flags_only_stored_mail(imap_account: Account, tmp_path: Path) -> None:
    imap_account.append_many(release(n) for n in range(1, 6))
    db = tmp_path / "g.db"
    assert poll(db, imap_account.mailbox_settings(post_action="seen", batch_size=2)).ok
    with imap_account.client() as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags([1, 2, 3, 4, 5])
    assert all(b"\\Seen" in flags[uid] for uid in range(1, 6))
    assert stored_uids(db) == [1, 2, 3, 4, 5]


def test_post_action_move_empties_the_folder_after_the_commit(
    imap_account: Account, tmp_path: Path
) -> None:
    imap_account.append_many(release(n) for n in range(1, 6))
    db = tmp_path / "g.db"
    mailbox = imap_account.mailbox_settings(post_action="move:Processed", batch_size=2)
    assert poll(db, mailbox).ok
    with imap_account.client() as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
        assert client.select_folder("Processed")[b"EXISTS"] == 5
    assert stored_uids(db) == [1, 2, 3, 4, 5]
    assert poll(db, mailbox).summary.read == 0  # nothing comes back


@pytest.mark.usefixtures("debug_logs")
def test_a_slow_store_keeps_the_connection_alive_with_noop(
    imap_account: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap_account.append_many(release(n) for n in range(1, 5))
    real_save = sync._save_analyzed

    def slow_save(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.4)
        real_save(*args, **kwargs)

    monkeypatch.setattr(sync, "_save_analyzed", slow_save)
    monkeypatch.setattr(sync, "KEEPALIVE_SECONDS", 0.1)
    db = tmp_path / "g.db"
    with capture_logs() as logs:
        result = poll(db, imap_account.mailbox_settings(batch_size=1))
    assert result.ok and stored_uids(db) == [1, 2, 3, 4]
    assert any(e["event"] == "imap_keepalive" for e in logs)
    assert [e["last_uid"] for e in logs if e["event"] == "batch_stored"] == [1, 2, 3, 4]
