"""A hostile, broken or huge IMAP server cannot hang, crash, bloat or silently skip (issue F).

Each test scripts `tests/hostile_imap.HostileImap` (the suite's one fake IMAP server: no
real server misbehaves on demand) into one misbehaviour and checks what a user relies on:
the poll ends, the error is recorded readably, and no message is skipped or read whole
when it should not be.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from govfeed import imap as imap_module
from govfeed import pipeline, status, sync
from govfeed.config import MailboxSettings, Settings
from govfeed.imap import ImapSession
from govfeed.logs import configure_logging
from govfeed.store import Store
from govfeed.watch import IdleWatcher
from tests.dovecot import DIE_WITH_PARENT, Account
from tests.hostile_imap import Folder, HostileImap, fetch_response
from tests.test_daemon import (  # noqa: F401 - start_daemon is a fixture
    RunningDaemon,
    mailbox,
    start_daemon,
    wait_until,
    write_config,
)
from tests.test_sync import SETTINGS, release, rows, state, stored_uids

PASSWORD = "hostile-password"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileImap]:
    monkeypatch.setenv("GOVFEED_TEST_PASSWORD", PASSWORD)
    hostile = HostileImap()
    yield hostile
    hostile.close()


def poll(db: Path, mailbox: MailboxSettings) -> sync.PollResult:
    with Store(db) as store:
        return sync.poll_mailbox(store, SETTINGS, mailbox)


def poll_in_thread(db: Path, mailbox: MailboxSettings) -> sync.PollResult:
    """The poll, given a minute: a hang would still be running after it."""
    outcome: list[sync.PollResult] = []
    thread = threading.Thread(target=lambda: outcome.append(poll(db, mailbox)), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the poll hangs"
    return outcome[0]


def stored(db: Path) -> list[tuple[Any, ...]]:
    return rows(db, "select uid, status, error, subject from messages order by uid")


# -- any folder size --------------------------------------------------------------------


def test_a_uid_list_over_a_megabyte_is_searched_in_windows(server: HostileImap) -> None:
    inbox = server.folder("INBOX")
    inbox.messages = dict.fromkeys(range(1, 200_001), b"x")  # "* SEARCH 1 ... 200000": 1.3 MB
    with ImapSession(server.mailbox_settings()) as imap:
        assert imap.new_uids("INBOX", 0) == list(range(1, 200_001))
        assert imap.new_uids("INBOX", 150_000) == list(range(150_001, 200_001))
    searches = [c for c in server.commands if "UID SEARCH UID" in c]
    assert len(searches) >= 4


def test_a_sparse_uid_space_is_crossed_with_esearch(server: HostileImap) -> None:
    server.capabilities = "IMAP4rev1 IDLE ESEARCH"
    inbox = server.folder("INBOX")
    inbox.messages = {1: b"x", 3_000_000: b"y"}  # 60 windows of nothing between them
    with ImapSession(server.mailbox_settings()) as imap:
        assert imap.new_uids("INBOX", 0) == [1, 3_000_000]
    assert len([c for c in server.commands if "UID SEARCH" in c]) < 10


# -- deadlines and stop -----------------------------------------------------------------


def test_a_server_that_trickles_bytes_is_cut_off_and_the_folder_failed(
    server: HostileImap, tmp_path: Path
) -> None:
    server.folder("INBOX").add(release(1))
    server.trickle = 0.2  # a byte every 0.2 s: never silent for the 2 s read timeout
    result = poll_in_thread(tmp_path / "db.sqlite", server.mailbox_settings(timeout=2))
    assert not result.ok
    error = state(tmp_path / "db.sqlite")["last_error"] or ""
    assert "timed out" in error and "no complete answer within 2 s" in error


def hostile_config(tmp_path: Path, server: HostileImap, **mailbox: Any) -> Path:
    values = {
        "name": "hostile",
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "allow_plaintext": True,
        "username": "user",
        "password_env": "GOVFEED_TEST_PASSWORD",
        "idle": False,
        **mailbox,
    }
    lines = [f'[database]\npath = "{tmp_path / "db.sqlite"}"\n\n[[mailboxes]]']
    for key, value in values.items():
        shown = str(value).lower() if isinstance(value, bool) else value
        lines.append(
            f"{key} = {shown!r}".replace("'", '"') if isinstance(value, str) else f"{key} = {shown}"
        )
    path = tmp_path / "govfeed.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("command", "stalled"), [("poll", "EXAMINE"), ("run", "EXAMINE"), ("poll", "LOGIN")]
)
def test_sigterm_during_a_stalled_command_exits_0_at_once(
    server: HostileImap, tmp_path: Path, command: str, stalled: str
) -> None:
    server.folder("INBOX").add(release(1))
    server.hang = {stalled}  # nothing more from the server: a read that would wait 10 minutes
    config = hostile_config(tmp_path, server, timeout=600)
    env = {**os.environ, "GOVFEED_TEST_PASSWORD": PASSWORD}
    process = subprocess.Popen(
        [*DIE_WITH_PARENT, sys.executable, "-m", "govfeed", "--config", str(config), command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not server.saw(stalled) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.saw(stalled)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0  # not the 600 s of the stalled read
    finally:
        process.kill()
        process.wait()


# -- size limits ------------------------------------------------------------------------


def test_an_oversized_message_is_recorded_from_its_headers_and_passed(
    server: HostileImap, tmp_path: Path
) -> None:
    inbox = server.folder("INBOX")
    inbox.add(release(1, pad_to=300_000))
    inbox.add(release(2))
    db = tmp_path / "db.sqlite"
    result = poll_in_thread(db, server.mailbox_settings(max_message_bytes=100_000))
    assert result.ok
    big, small = stored(db)
    assert big[:2] == (1, "failed")
    assert big[2] == f"too large: {len(inbox.messages[1])} bytes > limit 100000"
    assert "Department Update 1" in big[3]  # its subject, from the header
    assert small[:2] == (2, "stored")
    # marked as header only, with the server's size; the other message is not
    sizes = rows(db, "select uid, server_size, size < server_size from messages order by uid")
    assert sizes == [(1, len(inbox.messages[1]), 1), (2, None, None)]
    text = status.render_text(status.collect_status(db, []))
    assert "failed 1 (1 too large, header only), stored 1" in text
    assert state(tmp_path / "db.sqlite")["last_uid"] == 2
    assert not any("FETCH 1 (BODY.PEEK[] " in c for c in server.commands)
    # reparse has only its header: it keeps the "too large" record as it is
    with Store(tmp_path / "db.sqlite") as store:
        summary = pipeline.reparse(store, Settings())
    assert (summary.read, summary.failed) == (2, 1)
    assert stored(tmp_path / "db.sqlite")[0] == big


def test_a_batch_carries_at_most_max_message_bytes(server: HostileImap, tmp_path: Path) -> None:
    inbox = server.folder("INBOX")
    for n in range(1, 7):
        inbox.add(release(n, pad_to=40_000))
    result = poll_in_thread(
        tmp_path / "db.sqlite", server.mailbox_settings(max_message_bytes=100_000)
    )
    assert result.ok and len(stored(tmp_path / "db.sqlite")) == 6
    fetches = [c for c in server.commands if "BODY.PEEK[] " in c]
    assert len(fetches) == 3  # two messages of ~40 KB per FETCH, not six at once


def test_a_backlog_of_big_batches_through_the_worker_pool_does_not_hang(
    server: HostileImap, tmp_path: Path
) -> None:
    # Enough new mail for the worker pool, in batches of over BIG_BATCH_BYTES (200 of
    # ~84 KB): each such batch waited for its commit before the next fetch, while the pool
    # waited for a whole chunk of input before handing anything back.
    count = sync.POOL_MIN_MESSAGES + 20
    inbox = server.folder("INBOX")
    for n in range(1, count + 1):
        inbox.add(release(n, pad_to=sync.BIG_BATCH_BYTES // 100))
    result = poll_in_thread(tmp_path / "db.sqlite", server.mailbox_settings(timeout=30))
    assert result.ok and result.summary.read == count
    assert state(tmp_path / "db.sqlite")["last_uid"] == count


def test_a_message_too_costly_to_parse_is_stored_failed_and_the_batch_goes_on(
    server: HostileImap, tmp_path: Path
) -> None:
    # 1 MB of empty lines, under max_message_bytes: the parser would spend 30 times that.
    bomb = b"From: a@example.org\r\nSubject: empty lines\r\n\r\n" + b"\r\n" * 600_000
    inbox = server.folder("INBOX")
    inbox.add(bomb)
    inbox.add(release(2))
    db = tmp_path / "db.sqlite"
    assert poll_in_thread(db, server.mailbox_settings()).ok
    failed, ok = stored(db)
    assert failed[:3] == (1, "failed", "parse: over 500,000 lines: too many to analyse")
    assert ok[:2] == (2, "stored")
    [(size,)] = rows(
        db,
        "select r.size from raw_messages r join messages m on m.id = r.message_pk where m.uid = 1",
    )
    assert size == len(bomb)  # kept whole


def lying_literal(server: HostileImap, tag: str, args: str) -> bytes | None:
    if "BODY.PEEK[]" not in args:
        return None  # RFC822.SIZE says 1,000 bytes
    return b"* 1 FETCH (UID 1 BODY[] {10000000000}\r\n" + b"x" * 1000


def test_a_literal_over_the_limit_drops_the_connection(server: HostileImap, tmp_path: Path) -> None:
    server.folder("INBOX").add(release(1))
    server.reply["UID FETCH"] = lying_literal
    result = poll_in_thread(tmp_path / "db.sqlite", server.mailbox_settings(timeout=30))
    assert not result.ok
    error = state(tmp_path / "db.sqlite")["last_error"] or ""
    assert "announced 10000000000 bytes" in error and "max_message_bytes" in error


# -- garbage in, clean error out --------------------------------------------------------


def twice(server: HostileImap, tag: str, args: str) -> bytes | None:
    if "BODY.PEEK[]" not in args:
        return None
    once = fetch_response(server.folder("INBOX"), 1, args)
    return once + once + f"{tag} OK done\r\n".encode()


def bye(server: HostileImap, tag: str, args: str) -> bytes | None:
    return b"* BYE shutting down\r\n" if "BODY.PEEK[]" in args else None


def truncated(server: HostileImap, tag: str, args: str) -> bytes | None:
    return b"* 1 FETCH (UID 1 BODY[] {5000}\r\nFrom: a" if "BODY.PEEK[]" in args else None


GARBAGE = {
    "uidvalidity_abc": ({"uidvalidity": "abc"}, None, "unreadable answer"),
    "uidnext_out_of_range": ({"uidnext": 99_999_999_999}, None, "UIDNEXT: the server sent"),
    "uidvalidity_zero": ({"uidvalidity": 0}, None, "UIDVALIDITY: the server sent '0'"),
    "duplicate_uid_in_fetch": ({}, twice, "sent UID 1 twice"),
    "bye_mid_fetch": ({}, bye, "UID FETCH: connection lost: shutting down"),
    "truncated_literal": ({}, truncated, "UID FETCH: the server closed the connection"),
}


@pytest.mark.parametrize("case", list(GARBAGE))
def test_garbage_ends_in_a_recorded_readable_error_without_traceback(
    server: HostileImap, tmp_path: Path, case: str
) -> None:
    folder_values, reply, expected = GARBAGE[case]
    inbox = server.folder("INBOX")
    for key, value in folder_values.items():
        setattr(inbox, key, value)
    inbox.add(release(1))
    if reply is not None:
        server.reply["UID FETCH"] = reply
        server.drop = {"UID FETCH"}
    with capture_logs() as logs:
        result = poll_in_thread(tmp_path / "db.sqlite", server.mailbox_settings())
    assert not result.ok
    error = state(tmp_path / "db.sqlite")["last_error"] or ""
    assert expected in error and "Traceback" not in error
    failures = [e for e in logs if e["event"] == "folder_failed"]
    assert len(failures) == 1
    assert not any("exc_info" in e or "exception" in e for e in logs)


class QuietHost:
    """What a watcher reports to, ignored: the test watches the server."""

    def wake(self, folders: Collection[str]) -> None:
        pass

    def check(self, folders: Collection[str]) -> None:
        pass

    def limited(self, slot: int) -> None:
        pass


def test_the_idle_watcher_restarts_after_garbage(server: HostileImap) -> None:
    server.capabilities = "IMAP4rev1 IDLE"
    server.folder("INBOX").uidvalidity = "abc"
    watcher = IdleWatcher(server.mailbox_settings(idle=True), 0, ["INBOX"], QuietHost())
    watcher.start()
    try:
        deadline = time.monotonic() + 30
        while server.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.connections >= 2  # it reconnected after the error (with backoff)
        assert not watcher.join(0)  # and it still runs
    finally:
        watcher.stop.set()
        watcher.join(5)


# -- rule violations: a safe rescan, not a silent skip ----------------------------------


def test_uidnext_going_back_rescans_the_folder(server: HostileImap, tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    inbox = server.folder("INBOX")
    for n in range(1, 6):
        inbox.add(release(n))
    assert poll(db, server.mailbox_settings()).ok
    server.folders["INBOX"] = Folder(messages={1: release(6), 2: release(7)})  # same UIDVALIDITY
    with capture_logs() as logs:
        assert poll(db, server.mailbox_settings()).ok
    assert [e["rule"] for e in logs if e["event"] == "imap_rule_violation"] == ["uidnext_backwards"]
    subjects = [row[3] for row in stored(db)]
    assert len(subjects) == 7 and any("Update 6 " in s for s in subjects)


def test_a_uid_appearing_below_the_cursor_rescans_the_folder(
    server: HostileImap, tmp_path: Path
) -> None:
    db = tmp_path / "db.sqlite"
    inbox = server.folder("INBOX")
    inbox.add(release(1), uid=1)
    inbox.add(release(5), uid=5)
    assert poll(db, server.mailbox_settings()).ok
    inbox.add(release(3), uid=3)  # UIDNEXT stays 6
    with capture_logs() as logs:
        assert poll(db, server.mailbox_settings()).ok
    assert [e["rule"] for e in logs if e["event"] == "imap_rule_violation"] == ["uid_below_cursor"]
    assert [row[0] for row in stored(db)] == [1, 3, 5]
    with capture_logs() as logs:  # and the next poll is quiet again
        assert poll(db, server.mailbox_settings()).ok
    assert not [e for e in logs if e["event"] == "imap_rule_violation"]


def test_a_uid_above_uidnext_is_read_and_logged(server: HostileImap, tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    inbox = server.folder("INBOX")
    for n in range(1, 4):
        inbox.add(release(n))
    inbox.uidnext = 2  # a lie: UIDs 2 and 3 exist
    with capture_logs() as logs:
        assert poll(db, server.mailbox_settings()).ok
    assert [e["rule"] for e in logs if e["event"] == "imap_rule_violation"] == ["uid_above_uidnext"]
    assert [row[0] for row in stored(db)] == [1, 2, 3]


# -- safe output ------------------------------------------------------------------------


def test_server_text_is_escaped_in_status(server: HostileImap, tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    server.reply["EXAMINE"] = lambda s, tag, args: (
        f"{tag} NO \x1b[2J\x1b]0;owned\x07 gone\r\n".encode()
    )
    result = poll_in_thread(db, server.mailbox_settings())
    assert "\x1b" in result.line()  # the raw text is kept in the database ...
    report = status.collect_status(db, [status.Watch("hostile", "INBOX", 3600)])
    text = status.render_text(report)
    assert "\x1b" not in text and "\x07" not in text  # ... and shown escaped
    assert "\\x1b[2J" in text


# -- one stuck mailbox never delays the others --------------------------------------------


def test_a_stalled_mailbox_beside_dovecot_leaves_its_idle_latency_alone(
    server: HostileImap,
    imap_account: Account,
    tmp_path: Path,
    start_daemon: Callable[..., RunningDaemon],  # noqa: F811 - the fixture imported above
) -> None:
    db = tmp_path / "g.db"
    server.folder("INBOX").add(release(1))
    server.hang = {"EXAMINE"}  # its poll waits in a read for 10 minutes
    stalled = {
        "name": "hostile",
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "allow_plaintext": True,
        "username": "user",
        "password_env": "GOVFEED_TEST_PASSWORD",
        "idle": False,
        "timeout": 600,
        "poll_interval": 3600,
    }
    config = write_config(tmp_path / "g.toml", db, stalled, mailbox(imap_account))
    daemon = start_daemon(config, {"GOVFEED_TEST_PASSWORD": PASSWORD})
    wait_until(lambda: server.saw("EXAMINE"), 20, "the hostile mailbox stalled")
    daemon.wait_for("notify_watching")
    wait_until(lambda: state(db).get("last_success_at"), 20, "Dovecot's first poll")
    imap_account.deliver(release(2))
    delivered = time.monotonic()
    wait_until(lambda: stored_uids(db) == [1], 10, "the delivered message in the database")
    assert time.monotonic() - delivered < 2.0  # as without a stalled neighbour
    assert not daemon.events("poll_finished") or all(
        e.get("mailbox") != "hostile" for e in daemon.events("poll_finished")
    )  # the hostile poll is still stuck in its EXAMINE
    daemon.send(signal.SIGTERM)
    assert daemon.exit_code() == 0


# -- any folder size, against a real Dovecot ----------------------------------------------


def plain_message(n: int) -> bytes:
    return (
        f"From: sender{n % 7}@example.org\r\nTo: feeds@example.org\r\n"
        f"Subject: Message {n}\r\nMessage-ID: <big.{n}@example.org>\r\n"
        f"Date: Thu, 01 Aug 2024 12:00:00 +0000\r\n\r\nBody {n}.\r\n"
    ).encode()


@pytest.mark.slow
def test_a_big_dovecot_folder_syncs_through_many_search_windows(
    imap_account: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bench does 1,000,000 messages; here 4,000 in windows of 500 UIDs, written
    # straight into the Maildir as the bench does (APPEND would take longer).
    count = 4_000
    monkeypatch.setattr(imap_module, "SEARCH_WINDOW", 500)
    home = imap_account.server.root / "mail" / imap_account.user / "cur"
    home.mkdir(parents=True, exist_ok=True)
    for n in range(1, count + 1):
        (home / f"1700000000.M{n}P1.test:2,S").write_bytes(plain_message(n))
    if os.getuid() == 0:  # Dovecot reads the mail as nobody (tests/dovecot.py)
        subprocess.run(["chown", "-R", "65534:65534", str(home.parent)], check=True)
    db = tmp_path / "db.sqlite"
    result = poll(db, imap_account.mailbox_settings(batch_size=500))
    assert result.ok and result.summary.read == count
    assert stored_uids(db) == list(range(1, count + 1))
    assert state(db)["last_uid"] == count
    assert poll(db, imap_account.mailbox_settings()).summary.read == 0  # nothing twice


def test_server_text_is_escaped_on_the_console_and_valid_in_json_logs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    saved = structlog.get_config()
    evil = "INBOX: NO \x1b[2J\x1b]0;owned\x07\u202egone"
    try:
        configure_logging("info", json=False, stream="stderr")
        structlog.get_logger().error("folder_failed", error=evil)
        console = capsys.readouterr().err
        assert evil not in console and "\\x1b[2J\\x1b]0;owned\\x07\\u202egone" in console
        configure_logging("info", json=True, stream="stderr")
        structlog.get_logger().error("folder_failed", error=evil)
        line = capsys.readouterr().err.strip()
        assert json.loads(line)["error"] == evil  # valid JSON, the text intact
    finally:
        structlog.configure(**saved)
