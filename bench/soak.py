"""Soak test: `govfeed run` keeps every message exactly once through faults.

Starts a private Dovecot (tests/dovecot.py), a `CutProxy` in front of its plaintext port
and `govfeed run` (one mailbox through the proxy, folders INBOX and Other, IDLE on,
poll_interval = 10). For `--minutes N` it delivers unique DoD releases (examples/mailgen.py)
at a steady rate, alternating folders; every ~50th delivery is a byte-identical copy of an
earlier message and every ~70th the same Message-ID with a header added. Meanwhile, on a
schedule drawn from a fixed seed, it stops Dovecot for 5-15 s every ~2 minutes, cuts the
proxy's connections every ~90 s (mostly once a few KB more have gone to the daemon, i.e. in
the middle of a FETCH), deletes and re-creates folder Other once (new UIDVALIDITY) and
re-delivers its messages, and sends SIGHUP once.

At the end it waits for the database to catch up, sends SIGTERM, and checks: exit code 0;
every unique Message-ID exactly once among rows with status != 'duplicate'; every variant
exactly one 'duplicate' row; byte-identical copies add no row; releases == unique bulletins;
no 'failed' rows; `PRAGMA integrity_check` = ok. Prints a report and exits 1 on FAIL.

    .venv/bin/python bench/soak.py --minutes 2
    .venv/bin/python bench/soak.py              # 20 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

import mailgen  # noqa: E402 - examples/ is not a package
from tests.dovecot import CutProxy, Dovecot, _abort  # noqa: E402

GOVFEED = ROOT / ".venv" / "bin" / "govfeed"
FOLDERS = ("INBOX", "Other")
KINDS = ("release", "advisory", "transcript", "contract", "speech")
FAILURE_EVENTS = ("poll_failed", "connect_failed", "login_failed")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class SoakProxy(CutProxy):
    """`CutProxy` that keeps accepting while its target is down.

    tests/dovecot.py's accept loop returns on any OSError, including a refused connection
    to the target: after one Dovecot stop it would never serve again (the kernel would
    still queue connections, which then time out waiting for a greeting). Here a refused
    target just closes that client, as a dead server behind a load balancer would look.
    """

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._target, timeout=10)
            except OSError:
                _abort(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()


def one_message(i: int) -> tuple[bytes, str, str]:
    """Unique message i: (bytes, Message-ID without brackets, bulletin id)."""
    message_id = f"soak.{i}@public.govdelivery.com"
    bulletin_id = f"2024{i % 12 + 1:02d}01.{300_000_000 + i}"
    data = mailgen.dod_release(
        kind=KINDS[i % len(KINDS)],
        title=f"Soak Update {i} on Readiness and Alliance Cooperation",
        release_date=date(2024, 1, 1) + timedelta(days=i % 700),
        paragraphs=[
            f"Item {i}: the Department today announced progress on readiness with allies.",
            f"Officials said the effort supports partners, the {i % 97}th update this year.",
        ],
        article_id=6_000_000 + i,
        bulletin_id=bulletin_id,
        message_id=f"<{message_id}>",
        subscriber=f"subscriber{i % 50}@example.org",
    )
    return data, message_id, bulletin_id


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, db: Path, mailbox: dict[str, Any]) -> None:
    lines = ["[database]", f"path = {toml_value(db)}", ""]
    lines += ["[authentication]", 'trusted_authserv_ids = ["mx.google.com"]', ""]
    lines.append("[[mailboxes]]")
    lines += [f"{key} = {toml_value(value)}" for key, value in mailbox.items()]
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Pending:
    kind: str  # unique / copy / variant / redeliver
    data: bytes
    folder: str
    message_id: str
    bulletin_id: str = ""
    attempts: int = 0


@dataclass
class Fault:
    at: float
    kind: str  # restart / cut / recreate / sighup
    downtime: float = 0.0


@dataclass
class State:
    uniques: dict[str, str] = field(default_factory=dict)  # Message-ID -> bulletin id
    variants: set[str] = field(default_factory=set)  # Message-IDs that got a variant
    unique_data: list[tuple[str, bytes]] = field(default_factory=list)
    delivered: Counter[str] = field(default_factory=Counter)  # by kind
    other_items: list[bytes] = field(default_factory=list)  # everything delivered to Other
    faults: Counter[str] = field(default_factory=Counter)
    delivery_errors: int = 0
    cut_targets: list[int] = field(default_factory=list)


def schedule(rng: random.Random, duration: float) -> list[Fault]:
    faults: list[Fault] = []
    t = rng.uniform(40, 80)
    while t < duration - 15:
        faults.append(Fault(t, "restart", rng.uniform(5, 15)))
        t += rng.uniform(100, 140)
    t = rng.uniform(20, 40)
    while t < duration - 5:
        faults.append(Fault(t, "cut"))
        t += rng.uniform(75, 105)
    faults.append(Fault(rng.uniform(0.35, 0.6) * duration, "recreate"))
    faults.append(Fault(rng.uniform(0.15, 0.85) * duration, "sighup"))
    return sorted(faults, key=lambda f: f.at)


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def group_pids(pgid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                pids.append(int(stat.parent.name))
    return pids


def log_events(path: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return events
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def db_connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.execute("pragma busy_timeout = 10000")
    return conn


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)  # a fixed seed: reproducible
        self.workdir = Path(tempfile.mkdtemp(prefix="govfeed-soak-"))
        self.db = self.workdir / "govfeed.db"
        self.config = self.workdir / "govfeed.toml"
        self.daemon_log = self.workdir / "daemon.log"
        self.state = State()
        self.pending: list[Pending] = []
        self.dovecot: Dovecot | None = None
        self.proxy: SoakProxy | None = None
        self.daemon: subprocess.Popen[bytes] | None = None
        self.peak_rss_kb = 0
        self.peak_group_rss_kb = 0
        self.next_unique = 0
        self.slot = 0
        self.t0 = self.t_end = self.next_sample = time.monotonic()
        self.minutes_run = 0.0

    # -- processes ---------------------------------------------------------------------

    def start(self) -> None:
        self.dovecot = Dovecot()
        self.dovecot.start()
        self.dovecot.create_folder("Other")
        self.proxy = SoakProxy(self.dovecot.imap_port)
        mailbox = self.dovecot.mailbox_config(
            "none",
            name="soak",
            port=self.proxy.port,
            folders=list(FOLDERS),
            poll_interval=10,
            idle=True,
        )
        write_config(self.config, self.db, mailbox)
        self.daemon = subprocess.Popen(
            [str(GOVFEED), "--config", str(self.config), "run"],
            stdout=self.daemon_log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GOVFEED_LOG_LEVEL": self.args.log_level},
            start_new_session=True,
        )
        log(f"workdir {self.workdir}; dovecot :{self.dovecot.imap_port}, proxy :{self.proxy.port}")

    def cleanup(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.daemon.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.daemon.wait(10)
        if self.daemon is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.daemon.pid, signal.SIGKILL)  # stray analyzer workers
        if self.proxy is not None:
            self.proxy.close()
        if self.dovecot is not None:
            with contextlib.suppress(OSError):
                shutil.copy(self.dovecot.log_path, self.workdir / "dovecot.log")
            self.dovecot.close()

    def sample_rss(self) -> None:
        if self.daemon is None or self.daemon.poll() is not None:
            return
        main = rss_kb(self.daemon.pid)
        self.peak_rss_kb = max(self.peak_rss_kb, main)
        group = sum(rss_kb(pid) for pid in group_pids(self.daemon.pid))
        self.peak_group_rss_kb = max(self.peak_group_rss_kb, group)

    # -- delivery ----------------------------------------------------------------------

    def next_item(self) -> Pending:
        self.slot += 1
        st = self.state
        if self.slot % 50 == 0 and st.unique_data:
            message_id, data = self.rng.choice(st.unique_data)
            return Pending("copy", data, self.rng.choice(FOLDERS), message_id)
        candidates = [(m, d) for m, d in st.unique_data[-500:] if m not in st.variants]
        if self.slot % 70 == 0 and candidates:
            message_id, data = self.rng.choice(candidates)
            st.variants.add(message_id)  # reserved now, counted once delivered
            header = f"X-Soak-Variant: {self.slot}\r\n".encode()
            return Pending("variant", header + data, self.rng.choice(FOLDERS), message_id)
        i = self.next_unique
        self.next_unique += 1
        data, message_id, bulletin_id = one_message(i)
        return Pending("unique", data, FOLDERS[i % 2], message_id, bulletin_id)

    def flush(self, limit: int = 200) -> None:
        """Deliver what is pending while Dovecot runs (at most `limit` now)."""
        assert self.dovecot is not None
        done = 0
        while self.pending and self.dovecot.running and done < limit:
            item = self.pending[0]
            try:
                self.dovecot.deliver(item.data, item.folder)
            except RuntimeError as err:
                item.attempts += 1
                if item.attempts >= 20:
                    self.pending.pop(0)
                    self.state.delivery_errors += 1
                    log(f"giving up on {item.kind} {item.message_id}: {str(err)[:200]}")
                    if item.kind == "variant":
                        self.state.variants.discard(item.message_id)
                return
            self.pending.pop(0)
            done += 1
            self.record(item)

    def record(self, item: Pending) -> None:
        st = self.state
        st.delivered[item.kind] += 1
        if item.kind == "unique":
            st.uniques[item.message_id] = item.bulletin_id
            st.unique_data.append((item.message_id, item.data))
        if item.folder == "Other" and item.kind != "redeliver":
            st.other_items.append(item.data)

    # -- faults ------------------------------------------------------------------------

    def fault(self, fault: Fault) -> None:
        assert self.dovecot is not None and self.proxy is not None and self.daemon is not None
        st = self.state
        if fault.kind == "restart":
            log(f"fault: stop dovecot for {fault.downtime:.1f} s")
            self.dovecot.stop()
            st.faults["dovecot_restart"] += 1
            self.wait_delivering(fault.downtime)
            self.dovecot.start()
            log("dovecot started again")
        elif fault.kind == "cut":
            if self.rng.random() < 0.7:
                more = self.rng.randint(4_000, 80_000)
                self.proxy.cut_after(more)
                st.cut_targets.append(self.proxy.bytes_to_client + more)
                st.faults["cut_mid_transfer_armed"] += 1
                log(f"fault: cut after {more} more bytes to the daemon")
            else:
                self.proxy.cut()
                st.faults["cut_now"] += 1
                log("fault: cut every proxied connection now")
        elif fault.kind == "recreate":
            count = len(st.other_items)
            log(f"fault: delete and re-create Other, then re-deliver its {count} messages")
            self.dovecot.delete_folder("Other")
            self.dovecot.create_folder("Other")
            st.faults["folder_recreate"] += 1
            for data in list(st.other_items):
                self.pending.append(Pending("redeliver", data, "Other", ""))
            self.flush(limit=100_000)
        elif fault.kind == "sighup":
            log("fault: SIGHUP")
            self.daemon.send_signal(signal.SIGHUP)
            st.faults["sighup"] += 1

    def wait_delivering(self, seconds: float) -> None:
        """Keep generating (and, when Dovecot runs, delivering) for `seconds`."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.tick()
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def tick(self) -> None:
        """Generate the deliveries that are due by the steady rate; flush; sample RSS."""
        now = time.monotonic()
        while self.slot < (now - self.t0) * self.args.rate and now < self.t_end:
            self.pending.append(self.next_item())
        self.flush()
        if now >= self.next_sample:
            self.sample_rss()
            self.next_sample = now + 1.0

    # -- run ---------------------------------------------------------------------------

    def run(self) -> bool:
        duration = self.args.minutes * 60
        faults = schedule(self.rng, duration)
        log("schedule: " + ", ".join(f"{f.kind}@{f.at:.0f}s" for f in faults))
        self.start()
        assert self.daemon is not None and self.dovecot is not None and self.proxy is not None
        self.t0 = time.monotonic()
        self.t_end = self.t0 + duration
        self.next_sample = self.t0
        last_report = self.t0
        while time.monotonic() < self.t_end:
            if self.daemon.poll() is not None:
                log(f"daemon exited early with {self.daemon.returncode}")
                break
            elapsed = time.monotonic() - self.t0
            if faults and faults[0].at <= elapsed and self.dovecot.running:
                self.fault(faults.pop(0))
            self.tick()
            if time.monotonic() - last_report > 60:
                last_report = time.monotonic()
                log(
                    f"{elapsed / 60:.1f} min: delivered {dict(self.state.delivered)}, "
                    f"pending {len(self.pending)}, rows {self.count_rows()}, "
                    f"rss {self.peak_rss_kb // 1024} MB peak"
                )
            time.sleep(0.02)
        self.minutes_run = (time.monotonic() - self.t0) / 60
        # Deliver what is still pending (Dovecot runs: faults only leave it stopped inside).
        deadline = time.monotonic() + 120
        while self.pending and time.monotonic() < deadline:
            self.flush()
            time.sleep(0.05)
        log(f"delivery stopped; {len(self.pending)} left undelivered; waiting for catch-up")
        caught_up, waited = self.wait_caught_up()
        log(f"caught up: {caught_up} after {waited:.0f} s")
        self.sample_rss()
        exit_code: int | None = None
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                exit_code = self.daemon.wait(60)
            except subprocess.TimeoutExpired:
                exit_code = None
        else:
            exit_code = self.daemon.returncode
        return self.verify(caught_up, waited, exit_code)

    def count_rows(self) -> int:
        if not self.db.exists():
            return 0
        try:
            with contextlib.closing(db_connect(self.db)) as conn:
                return int(conn.execute("select count(*) from messages").fetchone()[0])
        except sqlite3.Error:
            return -1

    def wait_caught_up(self) -> tuple[bool, float]:
        """Every delivered Message-ID stored and both folder cursors at the server's end."""
        assert self.dovecot is not None and self.daemon is not None
        start = time.monotonic()
        deadline = start + self.args.catchup_timeout
        expected = set(self.state.uniques) | self.state.variants
        while time.monotonic() < deadline and self.daemon.poll() is None:
            self.sample_rss()
            try:
                with self.dovecot.account_client() as client:
                    server = {
                        folder: client.folder_status(folder, [b"UIDNEXT", b"UIDVALIDITY"])
                        for folder in FOLDERS
                    }
                with contextlib.closing(db_connect(self.db)) as conn:
                    stored = {
                        row[0]
                        for row in conn.execute(
                            "select message_id from messages where message_id is not null"
                        )
                    }
                    cursors = {
                        row[0]: (row[1], row[2])
                        for row in conn.execute(
                            "select folder, uidvalidity, last_uid from mailbox_state"
                            " where mailbox = 'soak'"
                        )
                    }
                at_end = all(
                    cursors.get(folder, (None, -1))[0] == status[b"UIDVALIDITY"]
                    and (cursors[folder][1] or 0) >= status[b"UIDNEXT"] - 1
                    for folder, status in server.items()
                )
                if at_end and expected <= stored:
                    return True, time.monotonic() - start
            except (sqlite3.Error, OSError, KeyError) as err:
                log(f"catch-up check: {err!r}")
            time.sleep(1)
        return False, time.monotonic() - start

    def verify(self, caught_up: bool, waited: float, exit_code: int | None) -> bool:
        st = self.state
        problems: list[str] = []
        if not caught_up:
            problems.append(f"not caught up within {self.args.catchup_timeout} s")
        if exit_code != 0:
            problems.append(f"exit code {exit_code} after SIGTERM (want 0)")
        if self.pending or st.delivery_errors:
            problems.append(f"{len(self.pending) + st.delivery_errors} messages never delivered")
        with contextlib.closing(db_connect(self.db)) as conn:
            integrity = conn.execute("pragma integrity_check").fetchone()[0]
            rows = conn.execute("select id, message_id, status, folder from messages").fetchall()
            releases = conn.execute("select count(*) from releases").fetchone()[0]
            bulletins = Counter(row[0] for row in conn.execute("select bulletin_id from releases"))
        statuses = Counter(row[2] for row in rows)
        kept = Counter(row[1] for row in rows if row[2] != "duplicate")
        dups = Counter(row[1] for row in rows if row[2] == "duplicate")
        missing = sorted(m for m in st.uniques if kept[m] == 0)
        twice = sorted(m for m, n in kept.items() if n > 1)
        extra = sorted(m for m in kept if m not in st.uniques)
        bad_dups = sorted(m for m in st.variants if dups[m] != 1)
        stray_dups = sorted(m for m in dups if m not in st.variants)
        expected_rows = len(st.uniques) + len(st.variants)
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
        for label, found in (
            ("unique Message-IDs missing", missing),
            ("Message-IDs kept more than once", twice),
            ("unexpected kept Message-IDs", extra),
            ("variants without exactly one duplicate row", bad_dups),
            ("duplicate rows for Message-IDs never varied", stray_dups),
        ):
            if found:
                problems.append(f"{label}: {len(found)} e.g. {found[:5]}")
        if len(rows) != expected_rows:
            problems.append(f"{len(rows)} message rows, want {expected_rows}")
        if releases != len(st.uniques):
            problems.append(f"{releases} releases, want {len(st.uniques)}")
        bulletin_twice = [b for b, n in bulletins.items() if n > 1]
        if bulletin_twice:
            problems.append(f"bulletins stored twice: {bulletin_twice[:5]}")
        if statuses.get("failed"):
            problems.append(f"{statuses['failed']} failed messages")
        events = log_events(self.daemon_log)
        counts = Counter(str(e.get("event")) for e in events)
        levels = Counter(
            str(e.get("event")) for e in events if e.get("level") in ("error", "critical")
        )
        ok = not problems
        print()
        print("=" * 72)
        print(f"govfeed soak test (seed {self.args.seed}, {self.args.rate}/s)")
        print(f"minutes run:          {self.minutes_run:.1f}")
        print(
            f"messages delivered:   {sum(st.delivered.values())} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(st.delivered.items()))})"
        )
        print(f"unique Message-IDs:   {len(st.uniques)}; variants {len(st.variants)}")
        print(f"faults injected:      {dict(sorted(st.faults.items()))}")
        fired = sum(1 for target in st.cut_targets if self.proxy_bytes() >= target)
        print(f"  mid-transfer cuts fired: {fired} of {len(st.cut_targets)}")
        print(f"catch-up:             {'yes' if caught_up else 'NO'} after {waited:.0f} s")
        print(f"exit code on SIGTERM: {exit_code}")
        print(f"message rows:         {len(rows)} (want {expected_rows}) {dict(statuses)}")
        print(f"releases:             {releases} (want {len(st.uniques)})")
        print(f"integrity_check:      {integrity}")
        print(
            f"peak RSS:             {self.peak_rss_kb / 1024:.1f} MB daemon, "
            f"{self.peak_group_rss_kb / 1024:.1f} MB with its workers"
        )
        print(
            "log events:           "
            + ", ".join(f"{name} {counts.get(name, 0)}" for name in FAILURE_EVENTS)
        )
        if levels:
            print(f"error-level events:   {dict(levels.most_common(8))}")
        print(f"workdir:              {self.workdir}")
        for problem in problems:
            print(f"PROBLEM: {problem}")
        print("PASS" if ok else "FAIL")
        print("=" * 72, flush=True)
        return ok

    def proxy_bytes(self) -> int:
        return self.proxy.bytes_to_client if self.proxy is not None else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--rate", type=float, default=5.0, help="deliveries per second")
    parser.add_argument("--seed", type=int, default=20240728)
    parser.add_argument("--catchup-timeout", type=float, default=360)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--keep", action="store_true", help="keep the workdir on PASS too")
    args = parser.parse_args()

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, terminate)  # so that `finally` kills what we started
    soak = Soak(args)
    ok = False
    try:
        ok = soak.run()
    finally:
        soak.cleanup()
        if ok and not args.keep:
            shutil.rmtree(soak.workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
