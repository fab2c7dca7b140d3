"""Faults, proved: a full disk, a read-only or locked database, a server that dies or goes
silent in the middle of a sync. Each ends in a clear error (or a recovery) with nothing
half-written and nothing lost.

The full and read-only file systems are real: a small tmpfs mounted for the test, which
needs root (CI and the development machine run the tests as root; elsewhere those tests
skip, saying why).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from govfeed import store as store_module
from govfeed import sync
from govfeed.cli import cli
from govfeed.errors import StoreError
from govfeed.store import Store
from tests.dovecot import Account, CutProxy, Dovecot
from tests.test_daemon import RunningDaemon, mailbox, start_daemon, write_config  # noqa: F401
from tests.test_sync import SETTINGS, release, rows, state, stored_uids

# Trusts mx.google.com, as the fixtures' mail says: no "no trusted_authserv_ids" warning.
DEMO = Path(__file__).parent.parent / "config" / "demo.toml"


def govfeed(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command, in a process of its own: its exit code and what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "govfeed", "--config", str(DEMO), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def error_lines(stderr: str) -> list[str]:
    """What a person reads: stderr without the JSON log lines."""
    return [line for line in stderr.splitlines() if not line.startswith("{")]


def write_maildir(path: Path, messages: list[bytes]) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for n, data in enumerate(messages):
        (path / "new" / f"{n:05d}.faults:2,").write_bytes(data)
    return path


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Maildir of 200 unique DoD releases (~15 KB each)."""
    path = tmp_path_factory.mktemp("mail") / "maildir"
    return write_maildir(path, [release(n, pad_to=15_000) for n in range(1, 201)])


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs of the test's own, unmounted at the end."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def remount(mount: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mount)], check=True)


def assert_whole_batches(db: Path, batch: int) -> int:
    """The database is sound and holds whole batches, each message with its raw bytes and
    its release: nothing half-written. Returns the number of messages."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
        messages = conn.execute("select count(*) from messages").fetchone()[0]
        assert messages % batch == 0
        assert conn.execute("select count(*) from raw_messages").fetchone()[0] == messages
        assert conn.execute(
            "select count(*) from messages where release_id is not null"
        ).fetchone() == (messages,)
        assert conn.execute("select count(*) from releases").fetchone() == (messages,)
        return int(messages)
    finally:
        conn.close()


def test_a_full_disk_ends_the_import_with_a_clear_error_and_whole_batches_kept(
    small_fs: Path, mail: Path
) -> None:
    remount(small_fs, "size=1m")
    db = small_fs / "govfeed.db"
    full = govfeed("--db", str(db), "import", "--batch-size", "10", str(mail))
    assert full.returncode == 1
    assert error_lines(full.stderr) == [
        f"Error: cannot write database {db}: database or disk is full: no space left where"
        " the database lives; the batch being stored was rolled back, the ones before it"
        " are kept"
    ]
    kept = assert_whole_batches(db, 10)
    assert 0 < kept < 200
    # Space freed: the next run stores the rest, nothing twice.
    remount(small_fs, "size=64m")
    rest = govfeed("--db", str(db), "import", str(mail))
    assert rest.returncode == 0, rest.stderr
    assert f"read 200, new releases {200 - kept}" in rest.stdout
    assert assert_whole_batches(db, 200) == 200


def test_a_read_only_database_is_refused_with_a_clear_error(small_fs: Path, mail: Path) -> None:
    db = small_fs / "govfeed.db"
    assert govfeed("--db", str(db), "import", str(mail)).returncode == 0
    remount(small_fs, "ro")
    # `run` needs a mailbox to get as far as the database (without one it exits 2 at once).
    with_mailbox = small_fs.parent / "with-mailbox.toml"
    with_mailbox.write_text(
        DEMO.read_text() + '\n[[mailboxes]]\nname = "dod"\nhost = "127.0.0.1"\n'
        'username = "feeds"\npassword_env = "GOVFEED_TEST_PASSWORD"\n'
    )
    for command in (["import", str(mail)], ["--config", str(with_mailbox), "run"], ["reparse"]):
        refused = govfeed("--db", str(db), *command)
        assert refused.returncode == 1, command
        assert error_lines(refused.stderr) == [
            f"Error: cannot open database {db}: unable to open database file: check that the"
            " directory exists and is writable: SQLite creates the -wal and -shm files beside"
            " the database"
        ], command
    # Reading still works: `govfeed status` (a Docker HEALTHCHECK, an operator) sees it all.
    status = govfeed("--db", str(db), "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert sum(json.loads(status.stdout)["messages_by_status"].values()) == 200
    remount(small_fs, "rw")
    assert assert_whole_batches(db, 200) == 200


def test_status_reads_a_crashed_writers_wal_on_a_read_only_file_system(
    small_fs: Path, mail: Path
) -> None:
    db = small_fs / "govfeed.db"
    assert govfeed("--db", str(db), "import", str(mail)).returncode == 0
    # A writer killed with its last commit still in the -wal (and the -shm beside it).
    crash = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('pragma wal_autocheckpoint = 0')\n"
        "conn.execute(\"update messages set status = 'failed' where id <= 3\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(db)], check=True)
    assert Path(f"{db}-wal").stat().st_size > 0 and Path(f"{db}-shm").exists()
    remount(small_fs, "ro")
    status = govfeed("--db", str(db), "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["messages_by_status"] == {"failed": 3, "stored": 197}
    # A -wal without its -shm cannot be read there: one clear line, not stale figures.
    remount(small_fs, "rw")
    Path(f"{db}-shm").unlink()
    remount(small_fs, "ro")
    status = govfeed("--db", str(db), "status", "--json")
    assert status.returncode == 2
    assert json.loads(status.stdout) == {
        "healthy": False,
        "exit_code": 2,
        "error": f"cannot read database {db}: unable to open database file: govfeed.db-wal"
        " holds changes not yet in the database and govfeed.db-shm cannot be created here;"
        " read it where its directory is writable",
    }


def test_a_long_reader_neither_blocks_nor_stalls_the_import(tmp_path: Path, mail: Path) -> None:
    db = tmp_path / "govfeed.db"
    with Store(db):
        pass
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("begin")
    assert reader.execute("select count(*) from messages").fetchone() == (0,)  # holds a snapshot
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["--db", str(db), "import", str(mail)])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    # The end-of-import checkpoint does not wait out the busy timeout for the reader.
    assert elapsed < store_module.BUSY_TIMEOUT_MS / 1000
    assert reader.execute("select count(*) from messages").fetchone() == (0,)
    reader.execute("commit")
    assert reader.execute("select count(*) from messages").fetchone() == (200,)
    reader.close()
    with Store(db) as store:
        assert store.checkpoint()  # no reader now: the WAL is emptied
        assert (tmp_path / "govfeed.db-wal").stat().st_size == 0


def test_a_checkpoint_with_a_reader_in_the_way_does_not_wait(tmp_path: Path, mail: Path) -> None:
    db = tmp_path / "govfeed.db"
    with Store(db) as store:
        with store.transaction():
            store.save_cursor("m", "INBOX", 1, 1)
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("begin")
        reader.execute("select count(*) from mailbox_state").fetchone()
        with store.transaction():
            store.save_cursor("m", "INBOX", 1, 2)
        started = time.monotonic()
        assert store.checkpoint() is False
        assert time.monotonic() - started < store_module.BUSY_TIMEOUT_MS / 1000 / 2
        reader.execute("commit")
        reader.close()
        assert store.checkpoint() is True


def hold_write_lock(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("begin immediate")
    return conn


def test_a_database_locked_by_another_writer_fails_the_import_cleanly(
    tmp_path: Path, mail: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 300)
    db = tmp_path / "govfeed.db"
    with Store(db):
        pass
    writer = hold_write_lock(db)
    result = CliRunner().invoke(cli, ["--db", str(db), "import", str(mail)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: cannot write database {db}: database is locked: another process held the"
        " write lock for over 0.3 s (another govfeed import, poll or run on the same database?)"
    )
    writer.execute("rollback")
    writer.close()
    assert rows(db, "select count(*) from messages") == [(0,)]
    assert CliRunner().invoke(cli, ["--db", str(db), "import", str(mail)]).exit_code == 0
    assert rows(db, "select count(*) from messages") == [(200,)]


def test_a_poll_against_a_locked_database_moves_nothing_and_the_next_one_stores_all(
    imap_account: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 300)
    imap_account.append_many(release(n) for n in range(1, 21))
    db = tmp_path / "g.db"
    mailbox_settings = imap_account.mailbox_settings(batch_size=5)
    with Store(db):
        pass
    writer = hold_write_lock(db)
    with Store(db) as store, pytest.raises(StoreError, match="database is locked"):
        sync.poll_mailbox(store, SETTINGS, mailbox_settings)
    writer.execute("rollback")
    writer.close()
    assert stored_uids(db) == [] and state(db) == {}
    with Store(db) as store:
        assert sync.poll_mailbox(store, SETTINGS, mailbox_settings).ok
    assert stored_uids(db) == list(range(1, 21))


def test_a_server_that_stops_answering_mid_fetch_times_out_and_loses_nothing(
    dovecot: Dovecot, imap_account: Account, tmp_path: Path
) -> None:
    total = 40
    imap_account.append_many(release(n, pad_to=30_000) for n in range(1, total + 1))
    db = tmp_path / "g.db"
    proxy = CutProxy(dovecot.imap_port)
    try:
        mailbox_settings = imap_account.mailbox_settings(port=proxy.port, batch_size=5, timeout=1)
        proxy.freeze_after(400_000)  # in the third batch of ~150 KB
        outcome: list[sync.PollResult] = []

        def poll() -> None:
            with Store(db) as store:
                outcome.append(sync.poll_mailbox(store, SETTINGS, mailbox_settings))

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        poller.join(60)  # a hang would still be waiting here
        assert not poller.is_alive(), "the poll hangs on a silent server"
        assert not outcome[0].ok
        assert "timed out" in (state(db)["last_error"] or "")
        kept = stored_uids(db)
        assert 0 < len(kept) < total and kept == list(range(1, len(kept) + 1))
        assert state(db)["last_uid"] == len(kept)
        proxy.thaw()
        proxy.cut()  # the frozen connection is the server's to drop, as it would time out
        with Store(db) as store:
            assert sync.poll_mailbox(store, SETTINGS, mailbox_settings).ok
    finally:
        proxy.close()
    assert stored_uids(db) == list(range(1, total + 1))
    assert rows(db, "select count(*), count(distinct message_id) from messages") == [(total, total)]
    assert state(db)["last_error"] is None


def test_the_daemon_rides_out_a_server_killed_in_the_middle_of_a_sync(
    dovecot: Dovecot,
    imap_account: Account,
    tmp_path: Path,
    start_daemon: Callable[..., RunningDaemon],  # noqa: F811 - the fixture imported above
) -> None:
    total = 300
    imap_account.append_many(release(n) for n in range(1, total + 1))
    db = tmp_path / "g.db"
    config = mailbox(imap_account, batch_size=20, poll_interval=10)
    daemon = start_daemon(write_config(tmp_path / "g.toml", db, config))
    daemon.wait_for("batch_stored")
    dovecot.stop(kill=True)  # every Dovecot process at once, as a crash or OOM kill would
    at_kill = len(stored_uids(db))
    time.sleep(1.5)
    dovecot.start()
    deadline = time.monotonic() + 90
    while stored_uids(db) != list(range(1, total + 1)):
        assert daemon.process.poll() is None
        assert time.monotonic() < deadline, f"stored {len(stored_uids(db))} of {total}"
        time.sleep(0.2)
    assert 0 < at_kill < total
    assert daemon.events("folder_failed") and daemon.events("poll_retry_scheduled")
    daemon.send(signal.SIGTERM)
    assert daemon.exit_code() == 0
    assert rows(db, "select count(*), count(distinct message_id) from messages") == [(total, total)]
    assert rows(db, "pragma integrity_check") == [("ok",)]
