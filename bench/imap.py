"""IMAP figures against a private Dovecot on loopback: sync speed, latency, memory.

Puts N DoD-style messages (examples/mailgen.py, multipart/alternative as the real list
sends them; the realistic tracker links make them about 20 KB, more than the issue's
10 KB, so the figures are conservative) into a Dovecot started with tests/dovecot.py and
into a Maildir, then prints, from the same run:
  - `govfeed import` of the Maildir vs `govfeed poll` (first sync over IMAP), wall time
    and peak RSS of each child process, and their ratio (target <= 1.25);
  - the time `mbsync` (isync, `FSync no`) takes to copy the folder to a Maildir;
  - an empty poll's latency (median of 20, in-process; target < 50 ms);
  - IDLE latency: a message appended by another client -> its row in the database, with
    `govfeed run` running (target < 2 s);
  - RSS of `govfeed run` after idling for a minute (target < 80 MB);
  - peak RSS of a first sync of N messages vs of N/10 (difference target <= 50 MB).
Nothing here asserts a time: it prints.

    .venv/bin/python bench/imap.py            # 5,000 messages, idle RSS after 60 s
    .venv/bin/python bench/imap.py --quick    # idle RSS after 10 s

`make bench` (bench/all.py) runs this and bench/run.py together and prints one report;
`measure(count, idle_seconds)` is what it calls.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

import mailgen  # noqa: E402 - examples/ is not a package
from tests.dovecot import Dovecot, find_dovecot  # noqa: E402

from govfeed.config import MailboxSettings, Settings  # noqa: E402 - after the path set-up
from govfeed.logs import configure_logging  # noqa: E402
from govfeed.store import Store  # noqa: E402
from govfeed.sync import poll_mailbox  # noqa: E402

GOVFEED = ROOT / ".venv" / "bin" / "govfeed"
KINDS = ("release", "advisory", "transcript", "contract", "speech")
ROW_SQL = "select 1 from messages where message_id = ?"


def one_message(i: int) -> bytes:
    """Message i: its own title, body, article, bulletin id and Message-ID."""
    return mailgen.dod_release(
        kind=KINDS[i % len(KINDS)],
        title=f"Department Update {i} on Readiness and Alliance Cooperation",
        release_date=date(2024, 1, 1) + timedelta(days=i % 700),
        paragraphs=[
            f"Item {i}: the Department today announced progress on readiness with allies.",
            f"Officials said the effort supports partners, the {i % 97}th update this year.",
        ],
        article_id=5_000_000 + i,
        bulletin_id=f"2024{i % 12 + 1:02d}01.{200_000_000 + i}",
        message_id=f"<imapbench.{i}@public.govdelivery.com>",
        subscriber=f"subscriber{i % 50}@example.org",
    )


def write_maildir(path: Path, messages: list[bytes], owner: tuple[int, int] | None) -> None:
    """A Maildir with every message in new/ (what a delivery agent leaves)."""
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for number, data in enumerate(messages, start=1):
        (path / "new" / f"{1_700_000_000 + number}.M{number}P1.bench,S={len(data)}").write_bytes(
            data
        )
    if owner is not None:  # Dovecot runs the mail processes as this user
        for dirpath, _dirs, files in os.walk(path.parent):
            os.chown(dirpath, *owner)
            for name in files:
                os.chown(os.path.join(dirpath, name), *owner)


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    output: str


# The peak RSS a child reports (ru_maxrss) starts from the RSS of the process it was forked
# from (the kernel keeps the high-water mark across exec), and this bench holds the whole
# corpus in memory. So a small launcher runs govfeed and reports its child's peak.
_LAUNCHER = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[2:]).returncode
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def govfeed(*args: str) -> Run:
    """Run the govfeed CLI in a child process: wall time and peak RSS."""
    with tempfile.NamedTemporaryFile("r") as peak:
        command = [str(GOVFEED), "--log-level", "error", *args]
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, peak.name, *command],
            stdout=subprocess.PIPE,
            check=False,
        )
        elapsed = time.perf_counter() - start
        output = done.stdout.decode().strip()
        if done.returncode != 0:
            raise SystemExit(f"bench: govfeed {' '.join(args)} failed: {output}")
        return Run(elapsed, int(peak.read()) / 1024, output)


def write_config(path: Path, db: Path, server: Dovecot, user: str, **extra: object) -> Path:
    lines = [
        "[database]",
        f'path = "{db}"',
        "[authentication]",  # the corpus has Gmail's Authentication-Results: published
        'trusted_authserv_ids = ["mx.google.com"]',
        "[[mailboxes]]",
        'name = "bench"',
        f'host = "{server.host}"',
        f"port = {server.imap_port}",
        'security = "none"',
        "allow_plaintext = true",
        f'username = "{user}"',
        f'password_file = "{server.password_file}"',
        "timeout = 30",
    ]
    lines += [
        f"{key} = {str(value).lower() if isinstance(value, bool) else value}"
        for key, value in extra.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def mbsync_copy(server: Dovecot, user: str, work: Path) -> float | None:
    """Seconds mbsync takes to copy INBOX to a fresh Maildir under `work`; None when mbsync
    is not installed."""
    if shutil.which("mbsync") is None:
        return None
    work = Path(tempfile.mkdtemp(dir=work))
    target = work / "mbsync"
    target.mkdir()
    config = work / "mbsyncrc"
    # FSync is a global option and must come first; sections are separated by blank lines.
    config.write_text(
        f"""FSync no

IMAPAccount bench
Host {server.host}
Port {server.imap_port}
User {user}
PassCmd "cat {server.password_file}"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path {target}/
Inbox {target}/INBOX

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
"""
    )
    start = time.perf_counter()
    # It warns on stderr that the password goes in the clear: loopback, on purpose.
    subprocess.run(["mbsync", "-q", "-c", str(config), "bench"], check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(work)
    return elapsed


def empty_poll_ms(db: Path, mailbox: MailboxSettings, rounds: int = 20) -> list[float]:
    """In-process polls of a mailbox with nothing new, in milliseconds."""
    configure_logging("warning")
    times = []
    with Store(db) as store:
        for _ in range(rounds):
            start = time.perf_counter()
            result = poll_mailbox(store, Settings(), mailbox)
            times.append((time.perf_counter() - start) * 1000)
            assert result.ok and result.summary.read == 0, result.line()
    return times


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def wait_for(condition: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("bench: timed out waiting for the daemon")
        time.sleep(0.005)


@dataclass
class DaemonFigures:
    first_sync: float  # seconds from READY to every message in the database
    latencies: list[float]  # IDLE: append -> row, seconds
    rss: float  # the daemon's own RSS after idling, MB
    children_rss: float  # its child processes' (analyzer workers), MB


def run_daemon(
    server: Dovecot, user: str, count: int, work: Path, idle_seconds: float
) -> DaemonFigures:
    """`govfeed run` on a fresh database: its first sync, IDLE latency of 5 appends by
    another client, then its memory after idling."""
    db = work / "daemon.db"
    config = write_config(work / "daemon.toml", db, server, user, poll_interval=3600)
    notify = work / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        sock.settimeout(30)
        daemon = subprocess.Popen(
            [str(GOVFEED), "--config", str(config), "--log-level", "error", "run"],
            stdout=(work / "daemon.log").open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "NOTIFY_SOCKET": str(notify)},
        )
        try:
            while not sock.recv(4096).startswith(b"READY=1"):
                pass
            start = time.perf_counter()
            wait_for(lambda: db.exists(), 30)
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            count_sql = "select count(*) from messages"
            wait_for(lambda: _safe(conn, count_sql) == (count,), 600)
            first_sync = time.perf_counter() - start
            time.sleep(1.0)  # the IDLE watcher's connection and its wake-up poll
            latencies = []
            for n in range(5):
                message_id = f"imapbench.idle.{n}.{time.time_ns()}@public.govdelivery.com"
                data = mailgen.dod_release(
                    title=f"IDLE probe {n}", message_id=f"<{message_id}>", article_id=9_000 + n
                )
                start = time.perf_counter()
                server.append_many([data], user=user)
                wait_for(functools.partial(_safe, conn, ROW_SQL, message_id), 30)
                latencies.append(time.perf_counter() - start)
                time.sleep(0.3)
            conn.close()
            time.sleep(idle_seconds)
            rss = rss_mb(daemon.pid)
            children_rss = sum(rss_mb(child) for child in children(daemon.pid))
        finally:
            daemon.terminate()
            daemon.wait(30)
    return DaemonFigures(first_sync, latencies, rss, children_rss)


def _safe(conn: sqlite3.Connection, sql: str, *args: object) -> object:
    try:
        return conn.execute(sql, args).fetchone()
    except sqlite3.OperationalError:  # the daemon has not made the schema yet
        return None


@dataclass
class Figures:
    count: int
    small: int
    size_kb: float
    imported: Run
    synced: Run
    small_sync: Run
    copy_seconds: float | None
    copy_memory: float | None
    empty_ms: list[float]
    daemon: DaemonFigures
    idle_seconds: int


def measure(count: int, idle_seconds: int) -> Figures:
    """Every figure above for a mailbox of `count` messages (and one of count/10), with a
    private Dovecot started and stopped here; `govfeed run` idles `idle_seconds` before its
    RSS is read."""
    small = max(count // 10, 1)
    with ProcessPoolExecutor() as pool:
        messages = list(pool.map(one_message, range(count), chunksize=200))
    work = Path(tempfile.mkdtemp(prefix="govfeed-imapbench-"))
    server = Dovecot()
    try:
        owner = (65534, 65534) if os.getuid() == 0 else None
        big, small_user, daemon_user = server.user, server.add_user(), server.add_user()
        write_maildir(server.root / "mail" / big, messages, owner)
        write_maildir(server.root / "mail" / small_user, messages[:small], owner)
        write_maildir(server.root / "mail" / daemon_user, messages[:small], owner)
        write_maildir(work / "import-maildir", messages, None)
        server.start()
        for user in (big, small_user):  # Dovecot indexes a new Maildir on its first SELECT
            with server.account_client(user) as client:
                client.select_folder("INBOX", readonly=True)
        copy_seconds = mbsync_copy(server, big, work)  # the same disk as the databases
        # And in memory: 5,000 files' metadata costs a VM disk dearly. (mkdtemp: private.)
        shm = Path("/dev/shm")  # noqa: S108
        copy_memory = mbsync_copy(server, big, shm) if shm.is_dir() else None
        db = work / "imap.db"
        config = str(write_config(work / "imap.toml", db, server, big))
        maildir = str(work / "import-maildir")  # the same authentication settings
        imported = govfeed(
            "--config", config, "--db", str(work / "import.db"), "import", "--no-progress", maildir
        )
        synced = govfeed("--config", config, "poll")
        small_config = write_config(work / "small.toml", work / "small.db", server, small_user)
        small_sync = govfeed("--config", str(small_config), "poll")
        empty = empty_poll_ms(db, server.mailbox_settings("none", big, name="bench"))
        daemon = run_daemon(server, daemon_user, small, work, idle_seconds)
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    size_kb = sum(map(len, messages)) / len(messages) / 1024
    return Figures(
        count,
        small,
        size_kb,
        imported,
        synced,
        small_sync,
        copy_seconds,
        copy_memory,
        empty,
        daemon,
        idle_seconds,
    )


def report(f: Figures) -> None:
    print(
        f"govfeed IMAP bench: {f.count} DoD-style messages of {f.size_kb:.1f} KB on average,"
        f" Dovecot on loopback, {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    print(f"  import: {f.imported.output}")
    print(f"  poll:   {f.synced.output}")
    copy = "mbsync not installed" if f.copy_seconds is None else _rate(f.copy_seconds, f.count)
    copy_memory = "-" if f.copy_memory is None else _rate(f.copy_memory, f.count)
    empty, idle = f.empty_ms, f.daemon.latencies
    rows = [
        ("govfeed import of a Maildir", _rate(f.imported.seconds, f.count), ""),
        ("govfeed poll, first sync over IMAP", _rate(f.synced.seconds, f.count), ""),
        ("  ratio sync / import", f"{f.synced.seconds / f.imported.seconds:.2f}", "<= 1.25"),
        ("mbsync copy of the folder to a Maildir", copy, ""),
        ("  the same, to a Maildir in /dev/shm", copy_memory, ""),
        (
            "empty poll, median of 20 (min-max)",
            f"{statistics.median(empty):.1f} ms ({min(empty):.1f}-{max(empty):.1f})",
            "< 50 ms",
        ),
        (f"govfeed run: first sync of {f.small}", _rate(f.daemon.first_sync, f.small), ""),
        (
            "govfeed run: IDLE append -> row, median of 5 (max)",
            f"{statistics.median(idle):.2f} s ({max(idle):.2f})",
            "< 2 s",
        ),
        (f"govfeed run: RSS after idling {f.idle_seconds} s", f"{f.daemon.rss:.0f} MB", "< 80 MB"),
        ("  its child processes", f"{f.daemon.children_rss:.0f} MB", ""),
        (f"peak RSS, first sync of {f.count} (poll)", f"{f.synced.peak_rss_mb:.0f} MB", ""),
        (f"peak RSS, first sync of {f.small} (poll)", f"{f.small_sync.peak_rss_mb:.0f} MB", ""),
        (
            "  difference",
            f"{f.synced.peak_rss_mb - f.small_sync.peak_rss_mb:.0f} MB",
            "<= 50 MB",
        ),
        ("peak RSS, govfeed import (for reference)", f"{f.imported.peak_rss_mb:.0f} MB", ""),
    ]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'value':<{value_width}}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {target}".rstrip())
    print("peak RSS: of the command's largest process (main or an analyzer worker).")


def _rate(seconds: float, count: int) -> str:
    return f"{seconds:.2f} s ({count / seconds:.0f}/s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="messages in the mailbox")
    parser.add_argument("--quick", action="store_true", help="idle 10 s instead of 60 s")
    args = parser.parse_args()
    if find_dovecot() is None:
        raise SystemExit("bench: dovecot is not installed (apt-get install dovecot-imapd)")
    report(measure(args.count, 10 if args.quick else 60))


if __name__ == "__main__":
    main()
