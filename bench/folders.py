"""Many folders on few connections: `govfeed run` against a Dovecot at its default limit.

Dovecot lets a user hold 10 connections from one address by default. For each set-up this
starts `govfeed run` (default `max_connections = 3`, `sweep_interval = 60`) on a private
Dovecot (tests/dovecot.py) with that limit and prints, from the same run:
  - the connections govfeed holds, counted at the server (`doveadm who`, sampled every
    0.2 s; the peak), its threads and its RSS once settled, against a 3-folder run;
  - latency, mail delivered -> its row in the database, for a folder watched by NOTIFY,
    by IDLE and by the sweep (the server then announces neither NOTIFY nor LIST-STATUS);
  - the issue's acceptance run: 60 folders while "the user's own client" logs in 5 more
    times, mail in INBOX and in other folders, failed logins and limit refusals logged.
Nothing here asserts: it prints, and says where a target is missed.

    .venv/bin/python bench/folders.py              # 200 folders
    .venv/bin/python bench/folders.py --folders 60

`measure(folders)` is what bench/all.py calls.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

import mailgen  # noqa: E402 - examples/ is not a package
from tests.dovecot import Account, Dovecot, find_dovecot  # noqa: E402

GOVFEED = ROOT / ".venv" / "bin" / "govfeed"
DOVECOT_DEFAULT_LIMIT = 10  # mail_max_userip_connections in Dovecot's own configuration
# What Dovecot announces, less NOTIFY and LIST-STATUS (as Gmail: IDLE only).
PLAIN_CAPABILITY = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS MOVE"
SETTLE_SECONDS = 5.0


def folder_names(count: int) -> list[str]:
    return ["INBOX", *(f"List{n:03}" for n in range(1, count))]


class Counter:
    """Peak connections of an account at the server, sampled every 0.2 s."""

    def __init__(self, account: Account, others: int = 0) -> None:
        self.account, self.others, self.most = account, others, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.most = max(self.most, self.account.connections() - self.others)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.most


@dataclass
class Run:
    """What one `govfeed run` showed."""

    label: str
    folders: int
    connections: int = 0  # peak held by govfeed, at the server
    threads: int = 0
    rss_mb: float = 0.0
    latencies: dict[str, float] = field(default_factory=dict)  # "INBOX (idle)": seconds
    failed_logins: int = 0
    limit_refusals: int = 0


class Daemon:
    """`govfeed run` for one account and its folders, its log in `work`."""

    def __init__(self, server: Dovecot, account: Account, folders: list[str], work: Path) -> None:
        self.account, self.db, self.log = account, work / "g.db", work / "daemon.log"
        config = work / "g.toml"
        names = ", ".join(json.dumps(f) for f in folders)
        config.write_text(
            f'[database]\npath = "{self.db}"\n[authentication]\n'
            'trusted_authserv_ids = ["mx.google.com"]\n[[mailboxes]]\nname = "bench"\n'
            f'host = "{server.host}"\nport = {server.imap_port}\nsecurity = "none"\n'
            f'allow_plaintext = true\nusername = "{account.user}"\n'
            f'password_file = "{server.password_file}"\nfolders = [{names}]\n'
            "poll_interval = 3600\n"
        )
        self.process = subprocess.Popen(
            [str(GOVFEED), "--config", str(config), "--log-level", "info", "run"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.folders = folders
        wait(lambda: self._polled() == len(folders), 120, "the first poll of every folder")

    def _polled(self) -> int:
        found = self._query("select count(*) from mailbox_state where last_success_at is not null")
        return int(found[0]) if found else 0

    def _query(self, sql: str, *args: object) -> tuple[object, ...] | None:
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
                row: tuple[object, ...] | None = conn.execute(sql, args).fetchone()
                return row
        except sqlite3.OperationalError:
            return None

    def latency(self, folder: str, n: int, bound: float) -> float:
        """Deliver a message to `folder`; seconds until its row is in the database."""
        message_id = f"folders.{n}.{time.time_ns()}@public.govdelivery.com"
        data = mailgen.dod_release(
            title=f"Folder probe {n}", message_id=f"<{message_id}>", article_id=7_000 + n
        )
        start = time.perf_counter()
        self.account.deliver(data, folder)
        sql = "select 1 from messages where message_id = ?"
        wait(lambda: self._query(sql, message_id), bound, f"the mail in {folder}")
        return time.perf_counter() - start

    def status(self) -> tuple[int, float]:
        """(threads, RSS in MB) of the daemon now."""
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        )
        return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024

    def events(self, name: str) -> int:
        return self.log.read_text(errors="replace").count(f'"event": "{name}"')

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: not within {timeout} s: {what}")
        time.sleep(0.01)


def one_run(
    label: str,
    count: int,
    probes: dict[str, str],
    *,
    capability: str | None = None,
    other_logins: int = 0,
    bound: float = 150.0,
) -> Run:
    """`govfeed run` with `count` folders; `probes` maps a figure's name to its folder."""
    server = Dovecot(max_userip_connections=DOVECOT_DEFAULT_LIMIT, capability=capability)
    run = Run(label, count)
    try:
        server.start()
        account = server.account()
        folders = folder_names(count)
        account.create_folders(folders[1:])
        with tempfile.TemporaryDirectory(prefix="govfeed-folders-") as work:
            others = [account.client() for _ in range(other_logins)]  # the user's own client
            daemon = Daemon(server, account, folders, Path(work))
            try:
                counter = Counter(account, others=len(others))
                time.sleep(SETTLE_SECONDS)
                for n, (name, folder) in enumerate(probes.items()):
                    run.latencies[name] = daemon.latency(folder, n, bound)
                time.sleep(SETTLE_SECONDS)
                run.threads, run.rss_mb = daemon.status()
                run.connections = counter.stop()
                run.failed_logins = daemon.events("login_failed")
                run.limit_refusals = daemon.events("connection_limit")
            finally:
                daemon.stop()
                for client in others:
                    client.logout()
    finally:
        server.close()
    return run


@dataclass
class Figures:
    runs: list[Run]
    acceptance: list[Run]


def measure(count: int) -> Figures:
    middle, last = f"List{count // 2:03}", f"List{count - 1:03}"
    runs = [
        one_run("3 folders, NOTIFY", 3, {"INBOX (notify)": "INBOX"}),
        one_run(
            f"{count} folders, NOTIFY",
            count,
            {"INBOX (notify)": "INBOX", f"{middle} (notify)": middle, f"{last} (notify)": last},
        ),
        one_run(
            f"{count} folders, no NOTIFY/LIST-STATUS",
            count,
            {"INBOX (idle)": "INBOX", "List001 (idle)": "List001", f"{last} (sweep)": last},
            capability=PLAIN_CAPABILITY,
        ),
    ]
    acceptance = [
        one_run(
            "60 folders, NOTIFY, 5 other logins",
            60,
            {"INBOX": "INBOX", "List030": "List030", "List059": "List059"},
            other_logins=5,
        ),
        one_run(
            "60 folders, IDLE + sweep, 5 other logins",
            60,
            {"INBOX": "INBOX", "List030": "List030", "List059": "List059"},
            capability=PLAIN_CAPABILITY,
            other_logins=5,
        ),
    ]
    return Figures(runs, acceptance)


def report(f: Figures) -> None:
    base = f.runs[0]
    print(
        f"| `govfeed run`, Dovecot limit {DOVECOT_DEFAULT_LIMIT} | connections | threads"
        " | RSS | latency, delivered → stored |"
    )
    print("|---|---|---|---|---|")
    for run in f.runs:
        ratio = f" ({run.rss_mb / base.rss_mb:.2f}×)" if run is not base else ""
        latencies = ", ".join(f"{k} {v:.2f} s" for k, v in run.latencies.items())
        print(
            f"| {run.label} | {run.connections} | {run.threads} | {run.rss_mb:.0f} MB{ratio}"
            f" | {latencies} |"
        )
    print()
    print(
        "| acceptance (issue K) | connections (target ≤ 5) | INBOX (≤ 2 s) | other folders"
        " (≤ 90 s; ≤ 1 s with NOTIFY) | failed logins | limit refusals | RSS vs 3 folders"
        " (≤ 1.2×) |"
    )
    print("|---|---|---|---|---|---|---|")
    for run in f.acceptance:
        others = ", ".join(f"{v:.2f} s" for k, v in run.latencies.items() if k != "INBOX")
        print(
            f"| {run.label} | {run.connections} | {run.latencies['INBOX']:.2f} s | {others}"
            f" | {run.failed_logins} | {run.limit_refusals}"
            f" | {run.rss_mb / base.rss_mb:.2f}× |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", type=int, default=200, help="folders (200)")
    args = parser.parse_args()
    if find_dovecot() is None:
        raise SystemExit("bench: dovecot is not installed (apt-get install dovecot-imapd)")
    report(measure(args.folders))


if __name__ == "__main__":
    main()
