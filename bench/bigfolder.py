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
- **Big messages**: peak RSS of `govfeed poll` (default `max_message_bytes`, 25 MiB)
  reading 8 messages of 1 MB, one of 24 MB and 8 of 24 MB from the hostile server.

Nothing here asserts: it prints.

    .venv/bin/python bench/bigfolder.py                  # 1,000,000 messages (~40 min)
    .venv/bin/python bench/bigfolder.py --count 100000   # a quicker look
"""

from __future__ import annotations

import argparse
import os
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


@dataclass
class Figures:
    big_messages: dict[str, float]  # what was read -> peak RSS in MB
    folders: list[Folder]
    slowloris_seconds: float
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


def big_messages(work: Path, count: int = 8, size: int = 24 << 20) -> tuple[float, str]:
    """Peak RSS of `govfeed poll` (defaults: max_message_bytes 25 MiB) reading `count`
    messages of `size` bytes from one folder, and its summary line."""
    server = HostileImap()
    for n in range(1, count + 1):
        server.folder("INBOX").add(big_message(n, size))
    try:
        os.environ["GOVFEED_BENCH_PASSWORD"] = PASSWORD  # for govfeed(), which inherits it
        run = govfeed("--config", str(hostile_config(work, server, 60)), "poll")
        return run.peak_rss_mb, run.output
    finally:
        server.close()


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


def measure(count: int) -> Figures:
    work = Path(tempfile.mkdtemp(prefix="govfeed-bigfolder-"))
    messages = {
        f"{n} x {size >> 20} MB": big_messages(work, n, size)[0]
        for n, size in ((8, 1 << 20), (1, 24 << 20), (8, 24 << 20))
    }
    loris, error = slowloris(work)
    stops = {command: sigterm(work, command) for command in ("run", "poll")}
    server = Dovecot()
    # Dovecot's imap processes may use 256 MB by default: too little to index a folder of
    # a million messages (the connection just closes). A server for such folders has more.
    with server.config_path.open("a") as config:
        config.write("default_vsz_limit = 2G\n")
    server.start()
    folders = []
    try:
        for n in (count // 10, count):
            folders.append(big_folder(server, work, n))
            done = folders[-1]  # progress, in case the bigger one does not finish
            print(
                f"bench: {n:,} messages: sync {done.sync_seconds:.0f} s,"
                f" peak RSS {done.peak_rss_mb:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
    finally:
        server.close()
    return Figures(messages, folders, loris, error, stops)


def report(f: Figures) -> None:
    small, big = f.folders
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
    for what, peak in f.big_messages.items():
        print(f"peak RSS of `govfeed poll` reading {what} messages (defaults): {peak:.0f} MB")
    print(f"slowloris (a byte every 0.5 s, timeout = 5): gave up after {f.slowloris_seconds:.1f} s")
    print(f"  {f.slowloris_error[:200]}")
    for command, (seconds, code) in f.sigterm.items():
        stalled = f"SIGTERM to `govfeed {command}` in a stalled command"
        print(f"{stalled}: exit {code} after {seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="messages (1,000,000)")
    args = parser.parse_args()
    report(measure(args.count))


if __name__ == "__main__":
    main()
