"""Crash safety, proved: SIGKILL `govfeed import` and `govfeed run` at random moments.

A 2,000-message run (1,950 unique releases, 30 byte-identical copies, 20 copies under the
same Message-ID with a header added) is killed with SIGKILL at 20 random points, restarted
each time, and finished by a last run. Whatever was interrupted - a parse in a worker, a
half-written batch, a commit, a cursor update, a FETCH - the database then holds every
message exactly once and every release once, and passes `PRAGMA integrity_check`.

The kills alternate between the whole process group (as the OOM killer or a power cut
takes everything) and the main process alone (its parsing workers must not outlive it).
Kill times come from a fixed seed; `GOVFEED_CRASH_SEED` and `GOVFEED_CRASH_KILLS` run
other or more kill points locally.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from tests.dovecot import DIE_WITH_PARENT, Account, _group_alive
from tests.test_daemon import mailbox, write_config
from tests.test_sync import rows

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import mailgen  # noqa: E402 - lives in examples/, found through the path above

T = TypeVar("T")

UNIQUE = 1950
COPIES = 30  # byte-identical: no row of their own
VARIANTS = 20  # same Message-ID, a header added: a `duplicate` row each
TOTAL = UNIQUE + COPIES + VARIANTS
KILLS = int(os.environ.get("GOVFEED_CRASH_KILLS", "20"))
SEED = int(os.environ.get("GOVFEED_CRASH_SEED", "20261128"))


def release(n: int) -> bytes:
    return mailgen.dod_release(
        title=f"Department Update {n} on Readiness and Alliance Cooperation",
        paragraphs=[f"Item {n}: the Department today announced progress with allies."],
        article_id=5_000_000 + n,
        bulletin_id=f"20241101.{400_000_000 + n}",
        message_id=f"<crash.{n}@public.govdelivery.com>",
    )


def variant(data: bytes) -> bytes:
    """The same message relayed again: one header more, other bytes, the same Message-ID."""
    return b"X-Relayed: again\r\n" + data


@pytest.fixture(scope="module")
def corpus() -> list[bytes]:
    """The 2,000 messages, unique ones and copies interleaved in a fixed order."""
    with ProcessPoolExecutor(2) as pool:
        unique = list(pool.map(release, range(UNIQUE), chunksize=100))
    rng = random.Random(SEED)
    messages = (
        unique + rng.sample(unique, COPIES) + [variant(m) for m in rng.sample(unique, VARIANTS)]
    )
    rng.shuffle(messages)
    return messages


@dataclass
class Crashes:
    """What the kill loop did: the rows stored at each kill, and how it was killed."""

    stored_at_kill: list[int] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    finished_early: int = 0


def kill_loop(
    start: Callable[[], subprocess.Popen[bytes]],
    arrive: Callable[[], None],
    db: Path,
    rng: random.Random,
    *,
    may_finish: bool,
) -> Crashes:
    """Deliver the next few messages, start a process, SIGKILL it; again and again until
    KILLS runs were killed while running. The first kill comes in start-up (opening and
    migrating the database); the others once the run has committed one or two batches,
    after a random 0-100 ms: in the parsing, storing or commit of the next batch, or in
    the checkpoint and exit. Counting commits, not seconds, keeps the kills spread over
    the run on a fast or a slow machine. An import may finish before its kill; a daemon
    must not end by itself."""
    crashes = Crashes()
    while len(crashes.stored_at_kill) < KILLS:
        arrive()
        process = start()
        if not crashes.stored_at_kill:
            time.sleep(rng.uniform(0.05, 0.5))
        else:
            wait_for_commits(process, db, rng.choice((1, 2)))
            time.sleep(rng.uniform(0, 0.1))
        if process.poll() is not None:  # it finished first: nothing left to interrupt
            assert may_finish, f"run {process.pid} ended by itself with {process.returncode}"
            crashes.finished_early += 1
            assert crashes.finished_early <= KILLS, "the runs end before they can be killed"
            continue
        mode = "group" if len(crashes.stored_at_kill) % 2 == 0 else "main"
        if mode == "group":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.send_signal(signal.SIGKILL)
        process.wait()
        # The workers of a main process killed alone see it gone and exit (analysis.py).
        deadline = time.monotonic() + 10
        while _group_alive(process.pid):
            assert time.monotonic() < deadline, f"processes of killed run {process.pid} linger"
            time.sleep(0.05)
        crashes.stored_at_kill.append(count(db, "select count(*) from messages"))
        crashes.modes.append(mode)
    print(f"rows stored at each kill: {crashes.stored_at_kill}")  # shown with pytest -s
    return crashes


def wait_for_commits(process: subprocess.Popen[bytes], db: Path, commits: int) -> None:
    """Until `commits` more commits added rows, the process ended, or 60 s went by (a
    daemon with nothing new to store is then killed while it idles)."""
    seen = count(db, "select count(*) from messages")
    deadline = time.monotonic() + 60
    while commits and process.poll() is None and time.monotonic() < deadline:
        now = count(db, "select count(*) from messages")
        if now != seen:
            seen, commits = now, commits - 1
        time.sleep(0.005)


def chunks(messages: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(messages), size):
        yield messages[i : i + size]


def count(db: Path, sql: str) -> int:
    found = rows(db, sql)
    return int(found[0][0]) if found else 0


def assert_exactly_once(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
        assert conn.execute("pragma foreign_key_check").fetchall() == []
        statuses = dict(conn.execute("select status, count(*) from messages group by status"))
        assert statuses == {"stored": UNIQUE, "duplicate": VARIANTS}
        # Every unique Message-ID once among the stored rows; every variant once as a duplicate.
        assert conn.execute(
            "select count(distinct message_id), count(*) from messages where status = 'stored'"
        ).fetchone() == (UNIQUE, UNIQUE)
        assert conn.execute("select count(distinct sha256) from messages").fetchone() == (
            UNIQUE + VARIANTS,
        )
        assert conn.execute("select count(*) from raw_messages").fetchone() == (TOTAL - COPIES,)
        # Every release once, each backed by the messages that carry it.
        assert conn.execute(
            "select count(*), count(distinct bulletin_id) from releases"
        ).fetchone() == (
            UNIQUE,
            UNIQUE,
        )
        # A duplicate row points at its release without counting as one more message of it.
        assert conn.execute(
            "select sum(message_count), sum(version_count) from releases"
        ).fetchone() == (
            UNIQUE,
            UNIQUE,
        )
        orphans = conn.execute(
            "select count(*) from releases r where not exists"
            " (select 1 from messages m where m.release_id = r.id)"
        ).fetchone()
        assert orphans == (0,)
    finally:
        conn.close()


def assert_kills_spread(crashes: Crashes) -> None:
    """The kills fell at many points of the run, not all before the first commit."""
    assert len(crashes.stored_at_kill) == KILLS
    assert {"group", "main"} <= set(crashes.modes)
    progress = sorted(set(crashes.stored_at_kill))
    assert len(progress) >= KILLS // 2, f"kills hit too few points: {crashes.stored_at_kill}"
    assert progress[-1] > 0


@contextlib.contextmanager
def killed_at_exit(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_sigkill_during_import_loses_and_duplicates_nothing(
    corpus: list[bytes], tmp_path: Path
) -> None:
    maildir = tmp_path / "maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for n, data in enumerate(corpus):
        (maildir / "new" / f"{n:05d}.crash:2,").write_bytes(data)
    db = tmp_path / "govfeed.db"
    config = write_config(tmp_path / "govfeed.toml", db)
    command = [*DIE_WITH_PARENT, sys.executable, "-m", "govfeed", "--config", str(config), "import"]
    command += ["--batch-size", "25", str(maildir)]  # many commits to be killed between and in
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        started.append(process)
        return process

    with killed_at_exit(started):
        crashes = kill_loop(start, lambda: None, db, random.Random(SEED), may_finish=True)
        final = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert final.returncode == 0, final.stderr
    assert_kills_spread(crashes)
    assert_exactly_once(db)
    # A last import finds everything stored already.
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert "new releases 0, new versions 0" in again.stdout
    assert count(db, "select count(*) from messages") == UNIQUE + VARIANTS


def test_sigkill_of_the_daemon_during_a_sync_loses_and_duplicates_nothing(
    corpus: list[bytes], imap_account: Account, tmp_path: Path
) -> None:
    # Most of the mail waits in the folder; the rest arrives before each restart, so kills
    # fall in the first sync and in later, smaller polls.
    imap_account.append_many(corpus[:1200])
    arrivals = chunks(corpus[1200:], 40)
    db = tmp_path / "govfeed.db"
    config = write_config(
        tmp_path / "govfeed.toml", db, mailbox(imap_account, batch_size=25, poll_interval=10)
    )
    command = [*DIE_WITH_PARENT, sys.executable, "-m", "govfeed", "--config", str(config), "run"]
    started: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "daemon.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
        started.append(process)
        return process

    with killed_at_exit(started):
        crashes = kill_loop(
            start,
            lambda: imap_account.append_many(next(arrivals, [])),
            db,
            random.Random(SEED + 1),
            may_finish=False,
        )
        for rest in arrivals:
            imap_account.append_many(rest)
        last = start()
        deadline = time.monotonic() + 240
        while count(db, "select count(*) from messages") < UNIQUE + VARIANTS:
            assert last.poll() is None, f"the daemon exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the daemon did not catch up"
            time.sleep(0.2)
        time.sleep(1)  # a poll that would store something twice has had time to
        last.send_signal(signal.SIGTERM)
        assert last.wait(30) == 0
    assert_kills_spread(crashes)
    assert_exactly_once(db)
    with imap_account.client() as client:
        folder = client.select_folder("INBOX", readonly=True)
        highest = max(client.search("ALL"))
    cursor = rows(db, "select uidvalidity, last_uid, last_error from mailbox_state")
    assert cursor == [(folder[b"UIDVALIDITY"], highest, None)]
