"""A huge folder, a trickling server and a SIGTERM: what a hostile or huge IMAP server costs.

- **Big folder**: writes N small, distinct messages straight into a private Dovecot's
  Maildir (far faster than APPEND), lets Dovecot index them (`doveadm mailbox status`,
  timed apart), then runs the first sync (`govfeed poll`) and prints its wall time and
  peak RSS, next to the same for N/10 messages from the same run: memory should not grow
  with the folder (search windows, bounded batches).
- **Slowloris**: a server (tests/hostile_imap.py) that sends a byte every 0.5 s after the
  login; prints how long `govfeed poll` takes to give up with `timeout = 5`.
- **SIGTERM**: `govfeed run` and `govfeed poll` stuck in a command the server never
  answers (`timeout = 600`); prints the seconds from SIGTERM to exit, and the exit code.
- **Big messages**: peak RSS (largest process) and wall time of `govfeed poll` (default
  `max_message_bytes`, 25 MiB) reading messages from the hostile server: few of them
  (analysed in the main process) of 1 MB and of 24 MB (text, or a base64 attachment), and
  backlogs of 256 or more (analysed by the worker pool), one mixed with 24 MB messages.

Nothing here asserts: it prints.

    .venv/bin/python bench/bigfolder.py                  # 1,000,000 messages (~40 min)
    .venv/bin/python bench/bigfolder.py --count 100000   # a quicker look
    .venv/bin/python bench/bigfolder.py --only big-messages   # one part (~2 min)
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dovecot import Dovecot  # noqa: E402
from tests.hostile_imap import HostileImap  # noqa: E402

from imap import govfeed, write_config  # noqa: E402 - bench/imap.py, beside this file

GOVFEED = ROOT / ".venv" / "bin" / "govfeed"
PASSWORD = "bench-password"  # noqa: S105 - a throwaway for a local fake server


@dataclass
class Folder:
    count: int
    write_seconds: float
    index_seconds: float
    sync_seconds: float
    peak_rss_mb: float
    output: str


PARTS = ("big-messages", "misbehaviour", "big-folder")


@dataclass
class Figures:
    big_messages: dict[str, tuple[float, float]]  # what was read -> (peak RSS MB, seconds)
    folders: list[Folder]
    slowloris_seconds: float | None
    slowloris_error: str
    sigterm: dict[str, tuple[float, int]]  # command -> (seconds to exit, exit code)


def message(n: int) -> bytes:
    """A small, distinct message (not a bulletin: stored as `ignored`, as most mail of a
    big shared folder would be)."""
    return (
        f"From: Sender {n % 97} <sender{n % 97}@example.org>\r\n"
        f"To: feeds@example.org\r\nSubject: Message {n} of a very big folder\r\n"
        f"Message-ID: <big.{n}@example.org>\r\nDate: Thu, 01 Aug 2024 12:00:00 +0000\r\n"
        f"\r\nBody of message {n}.\r\n"
    ).encode()


def fill_maildir(server: Dovecot, user: str, count: int) -> float:
    """Write `count` messages into the user's INBOX Maildir (cur/, seen); seconds taken."""
    start = time.perf_counter()
    home = server.root / "mail" / user
    for sub in ("cur", "new", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    cur = home / "cur"
    stamp = int(time.time())
    for n in range(1, count + 1):
        (cur / f"{stamp}.M{n}P1.bench:2,S").write_bytes(message(n))
    if os.getuid() == 0:  # Dovecot reads the mail as nobody (tests/dovecot.py)
        subprocess.run(["chown", "-R", "65534:65534", str(home)], check=True)
    return time.perf_counter() - start


def index(server: Dovecot, user: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            "doveadm",
            "-c",
            str(server.config_path),
            "mailbox",
            "status",
            "-u",
            user,
            "messages",
            "INBOX",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def big_folder(server: Dovecot, work: Path, count: int) -> Folder:
    user = server.add_user()
    write = fill_maildir(server, user, count)
    indexed = index(server, user)
    db = work / f"big-{count}.db"
    config = write_config(work / f"big-{count}.toml", db, server, user)
    # Dovecot works silently for a while on the first FETCH of a folder this big (over
    # 30 s for a million messages under load): the bench's `timeout = 30` is too short.
    config.write_text(config.read_text().replace("timeout = 30", "timeout = 600"))
    run = govfeed("--config", str(config), "poll")
    db.unlink(missing_ok=True)
    return Folder(count, write, indexed, run.seconds, run.peak_rss_mb, run.output)


def hostile_config(work: Path, server: HostileImap, timeout: int) -> Path:
    path = work / f"hostile-{timeout}.toml"
    path.write_text(
        f'[database]\npath = "{work / "hostile.db"}"\n\n[[mailboxes]]\nname = "hostile"\n'
        f'host = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
        f'allow_plaintext = true\nusername = "u"\npassword_env = "GOVFEED_BENCH_PASSWORD"\n'
        f"idle = false\ntimeout = {timeout}\n"
    )
    return path


def slowloris(work: Path) -> tuple[float, str]:
    server = HostileImap()
    server.folder("INBOX").add(message(1))
    server.trickle = 0.5
    try:
        start = time.perf_counter()
        done = subprocess.run(
            [str(GOVFEED), "--config", str(hostile_config(work, server, 5)), "poll"],
            env={**os.environ, "GOVFEED_BENCH_PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            check=False,
        )
        return time.perf_counter() - start, done.stdout.strip()
    finally:
        server.close()


def big_message(n: int, size: int) -> bytes:
    """A plain-text message of about `size` bytes (lines of 76 characters)."""
    line = (f"Line of message {n}, padding it to its size. " * 3)[:76].encode() + b"\r\n"
    return message(n) + line * (size // len(line))


def attachment_message(n: int, size: int) -> bytes:
    """A short text and an attachment of random bytes, base64: about `size` bytes."""
    body = base64.encodebytes(random.Random(n).randbytes(size * 3 // 4 - 1024))
    return (
        message(n).replace(
            b"\r\n\r\n",
            b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n",
            1,
        )
        + b"--BB\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename=report.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body.replace(b"\n", b"\r\n") + b"--BB--\r\n"
    )


def empty_lines_message(n: int, size: int) -> bytes:
    """About `size` bytes of empty lines: a string object per line for the parser."""
    return message(n) + b"\r\n" * (size // 2)


def one_line_message(n: int, size: int) -> bytes:
    """A body of one line of about `size` bytes."""
    return message(n) + b"x" * size + b"\r\n"


MAKERS = {
    "text": big_message,
    "attachment": attachment_message,
    "empty lines": empty_lines_message,
    "one line": one_line_message,
}


# What the server holds, by label: (count, size, make) groups, in UID order. The first
# ones are analysed in the main process; 256 or more new messages start the worker pool
# (sync.POOL_MIN_MESSAGES). 300 x 100 KB are batches of 20 MB (200 messages).
BIG_CASES: dict[str, list[tuple[int, int, str]]] = {
    "8 x 1 MB": [(8, 1 << 20, "text")],
    "1 x 24 MB": [(1, 24 << 20, "text")],
    "1 x 24 MB, a base64 attachment": [(1, 24 << 20, "attachment")],
    "8 x 24 MB": [(8, 24 << 20, "text")],
    "1 x 24 MB of empty lines (refused: over parse.MAX_LINES)": [(1, 24 << 20, "empty lines")],
    "1 x 24 MB, one line (refused: over parse.MAX_LINE_CHARS)": [(1, 24 << 20, "one line")],
    "300 x 100 KB (worker pool)": [(300, 100 << 10, "text")],
    "300 x 1 MB (worker pool)": [(300, 1 << 20, "text")],
    "256 x 100 KB, each 32nd followed by one of 24 MB (worker pool)": [
        *[(32, 100 << 10, "text"), (1, 24 << 20, "text")] * 8
    ],
}


def big_messages(work: Path, groups: list[tuple[int, int, str]]) -> tuple[float, float]:
    """Peak RSS of `govfeed poll` (defaults: max_message_bytes 25 MiB) reading the messages
    of `groups` from one folder, and its wall time."""
    server = HostileImap()
    n = 0
    for count, size, kind in groups:
        for _ in range(count):
            n += 1
            server.folder("INBOX").add(MAKERS[kind](n, size))
    try:
        os.environ["GOVFEED_BENCH_PASSWORD"] = PASSWORD  # for govfeed(), which inherits it
        run = govfeed("--config", str(hostile_config(work, server, 60)), "poll")
        if f"read {n}," not in run.output:
            raise SystemExit(f"bench: expected {n} messages read: {run.output}")
        return run.peak_rss_mb, run.seconds
    finally:
        server.close()
        (work / "hostile.db").unlink(missing_ok=True)


def sigterm(work: Path, command: str) -> tuple[float, int]:
    server = HostileImap()
    server.folder("INBOX").add(message(1))
    server.hang = {"EXAMINE"}
    try:
        process = subprocess.Popen(
            [str(GOVFEED), "--config", str(hostile_config(work, server, 600)), command],
            env={**os.environ, "GOVFEED_BENCH_PASSWORD": PASSWORD},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not server.saw("EXAMINE"):
            time.sleep(0.02)
        time.sleep(0.5)  # well inside the stalled read
        start = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=700)
        return time.perf_counter() - start, code
    finally:
        server.close()


def measure(count: int, parts: tuple[str, ...]) -> Figures:
    work = Path(tempfile.mkdtemp(prefix="govfeed-bigfolder-"))
    figures = Figures({}, [], None, "", {})
    if "big-messages" in parts:
        for label, groups in BIG_CASES.items():
            figures.big_messages[label] = big_messages(work, groups)
            print(f"bench: {label}: {figures.big_messages[label][0]:.0f} MB", file=sys.stderr)
    if "misbehaviour" in parts:
        figures.slowloris_seconds, figures.slowloris_error = slowloris(work)
        figures.sigterm = {command: sigterm(work, command) for command in ("run", "poll")}
    if "big-folder" in parts:
        figures.folders = folders(work, count)
    return figures


def folders(work: Path, count: int) -> list[Folder]:
    server = Dovecot()
    # Dovecot's imap processes may use 256 MB by default: too little to index a folder of
    # a million messages (the connection just closes). A server for such folders has more.
    with server.config_path.open("a") as config:
        config.write("default_vsz_limit = 2G\n")
    server.start()
    done: list[Folder] = []
    try:
        for n in (count // 10, count):
            done.append(big_folder(server, work, n))
            print(  # progress, in case the bigger one does not finish
                f"bench: {n:,} messages: sync {done[-1].sync_seconds:.0f} s,"
                f" peak RSS {done[-1].peak_rss_mb:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
    finally:
        server.close()
    return done


def report(f: Figures) -> None:
    if f.folders:
        report_folders(f.folders)
    for what, (peak, seconds) in f.big_messages.items():
        print(f"`govfeed poll` reading {what} (defaults): peak RSS {peak:.0f} MB, {seconds:.1f} s")
    if f.slowloris_seconds is not None:
        seconds = f.slowloris_seconds
        print(f"slowloris (a byte every 0.5 s, timeout = 5): gave up after {seconds:.1f} s")
        print(f"  {f.slowloris_error[:200]}")
    for command, (seconds, code) in f.sigterm.items():
        stalled = f"SIGTERM to `govfeed {command}` in a stalled command"
        print(f"{stalled}: exit {code} after {seconds:.2f} s")


def report_folders(folders: list[Folder]) -> None:
    small, big = folders
    print(f"| first sync of a big folder (loopback Dovecot) | {small.count:,} | {big.count:,} |")
    print("|---|---|---|")
    for label, value in (
        ("writing the Maildir", lambda x: f"{x.write_seconds:.0f} s"),
        ("Dovecot indexing it (doveadm)", lambda x: f"{x.index_seconds:.0f} s"),
        ("`govfeed poll`, wall time", lambda x: f"{x.sync_seconds:.0f} s"),
        ("messages per second", lambda x: f"{x.count / x.sync_seconds:,.0f}"),
        ("peak RSS (largest process)", lambda x: f"{x.peak_rss_mb:.0f} MB"),
    ):
        print(f"| {label} | {value(small)} | {value(big)} |")
    print()
    print(f"govfeed poll ({big.count:,}): {big.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="messages (1,000,000)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part")
    args = parser.parse_args()
    report(measure(args.count, tuple(args.only or PARTS)))


if __name__ == "__main__":
    main()
