"""`govfeed run` with many folders against a Dovecot that limits connections: every folder's
mail is stored within its bound, and govfeed never holds more connections than its budget,
counted at the server (`doveadm who`)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from govfeed import connections
from govfeed.cli import cli
from govfeed.config import DatabaseSettings, Settings
from govfeed.scheduler import Runner
from tests.dovecot import Account, CutProxy, Dovecot, find_dovecot
from tests.test_daemon import RunningDaemon, wait_until, write_config
from tests.test_sync import SETTINGS, release, rows, stored_uids
from tests.test_watch import PLAIN_CAPABILITY

FOLDERS = ["INBOX", *(f"List{n:02}" for n in range(1, 30))]  # 30 folders


@pytest.fixture
def own_dovecot() -> Iterator[Callable[..., Dovecot]]:
    """Start a Dovecot of the test's own with the given settings (closed at the end)."""
    if find_dovecot() is None:
        pytest.skip("dovecot is not installed")
    servers: list[Dovecot] = []

    def start(**settings: Any) -> Dovecot:
        server = Dovecot(**settings)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[[Path], RunningDaemon]]:
    """Start `govfeed run` with a config (killed at the end of the test)."""
    started: list[RunningDaemon] = []

    def start(config: Path) -> RunningDaemon:
        started.append(RunningDaemon(config, tmp_path / f"daemon-{len(started)}.log"))
        return started[-1]

    yield start
    for daemon in started:
        daemon.kill()


class ConnectionCounter:
    """Counts an account's connections at the server every 50 ms; `most` is the peak."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.most = max(self.most, self.account.connections())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.most


def account_with_folders(server: Dovecot) -> Account:
    account = server.account()
    account.create_folders(FOLDERS[1:])
    return account


def start(
    daemons: Callable[[Path], RunningDaemon], tmp_path: Path, account: Account, **settings: Any
) -> tuple[RunningDaemon, Path]:
    db = tmp_path / "g.db"
    settings = {"folders": FOLDERS, **settings}
    entry = account.mailbox_config(name="dod", poll_interval=3600, sweep_interval=2, **settings)
    config = write_config(tmp_path / "g.toml", db, entry)
    daemon = daemons(config)
    count = len(settings["folders"])
    wait_until(lambda: all_polled(db, count), 20, "the first poll of every folder")
    return daemon, config


def all_polled(db: Path, count: int) -> bool:
    found = rows(db, "select count(*) from mailbox_state where last_success_at is not null")
    return bool(found) and found[0][0] == count


def watch_modes(config: Path) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--config", str(config), "status", "--json"])
    return {f["folder"]: f for f in json.loads(result.output)["folders"]}


def delivered_everywhere(account: Account, db: Path, folders: list[str], bound: float) -> None:
    """Deliver one message to each folder; each is stored within `bound` seconds."""
    for n, folder in enumerate(folders, start=1):
        account.deliver(release(n), folder)
    for folder in folders:
        wait_until(lambda f=folder: stored_uids(db, f) == [1], bound, f"the mail in {folder}")


def test_thirty_folders_on_notify_within_a_limit_of_four(
    own_dovecot: Callable[..., Dovecot],
    tmp_path: Path,
    daemons: Callable[[Path], RunningDaemon],
) -> None:
    account = account_with_folders(own_dovecot(max_userip_connections=4))
    daemon, config = start(daemons, tmp_path, account, max_connections=4)
    daemon.wait_for("notify_watching")
    counter = ConnectionCounter(account)
    delivered_everywhere(account, tmp_path / "g.db", ["List29", "INBOX", "List07"], 5)
    assert counter.stop() <= 2  # one NOTIFY connection for 30 folders, and the poll's
    modes = watch_modes(config)
    assert {f["watch"] for f in modes.values()} == {"notify"}
    assert all(f["last_checked_at"] for f in modes.values())
    assert not daemon.events("login_failed") and not daemon.events("connection_limit")


def test_without_notify_idle_on_two_folders_and_a_sweep_for_the_rest(
    own_dovecot: Callable[..., Dovecot],
    tmp_path: Path,
    daemons: Callable[[Path], RunningDaemon],
) -> None:
    server = own_dovecot(max_userip_connections=4, capability=PLAIN_CAPABILITY)
    account = account_with_folders(server)
    daemon, config = start(daemons, tmp_path, account)  # max_connections: 3
    daemon.wait_for("idle_watching", count=2, timeout=30)
    counter = ConnectionCounter(account)
    # INBOX and List01 are IDLE's; List20 and List29 are found by a sweep (STATUS each).
    delivered_everywhere(account, tmp_path / "g.db", ["INBOX", "List20", "List01", "List29"], 10)
    assert counter.stop() <= 3
    modes = watch_modes(config)
    assert [modes[f]["watch"] for f in ("INBOX", "List01", "List02", "List29")] == [
        "idle",
        "idle",
        "sweep",
        "sweep",
    ]
    assert modes["List29"]["last_checked_at"]
    assert not daemon.events("login_failed") and not daemon.events("connection_limit")


def test_another_client_holding_most_connections_costs_watchers_not_mail(
    own_dovecot: Callable[..., Dovecot],
    tmp_path: Path,
    daemons: Callable[[Path], RunningDaemon],
) -> None:
    server = own_dovecot(max_userip_connections=4, capability=PLAIN_CAPABILITY)
    account = account_with_folders(server)
    others = [account.client() for _ in range(3)]  # the user's phone and laptop
    try:
        daemon, config = start(daemons, tmp_path, account)
        [refusal, *_] = daemon.wait_for("connection_limit", timeout=30)
        assert "Maximum number of connections" in refusal["error"]
        counter = ConnectionCounter(account)
        delivered_everywhere(account, tmp_path / "g.db", ["INBOX", "List01", "List29"], 10)
        assert counter.stop() <= 4  # the server's limit: govfeed took only the one left
        assert all(f["watch"] == "sweep" for f in watch_modes(config).values())
        assert not daemon.events("login_failed")
        failed = rows(
            tmp_path / "g.db", "select count(*) from mailbox_state where last_error is not null"
        )
        assert failed == [(0,)]
    finally:
        for client in others:
            client.logout()


def logins(server: Dovecot, user: str) -> int:
    return server.log_text().count(f"Login: user=<{user}>")


def test_the_poll_connection_stays_open_between_polls_and_comes_back_when_dropped(
    own_dovecot: Callable[..., Dovecot],
    tmp_path: Path,
    daemons: Callable[[Path], RunningDaemon],
) -> None:
    server = own_dovecot(max_userip_connections=4)
    account = server.account()
    daemon, _config = start(daemons, tmp_path, account, folders=["INBOX"])
    daemon.wait_for("notify_watching")
    db = tmp_path / "g.db"
    for n in range(1, 4):  # three syncs, each woken by NOTIFY
        account.deliver(release(n))
        wait_until(lambda n=n: stored_uids(db) == list(range(1, n + 1)), 10, f"message {n}")
    assert logins(server, account.user) == 2  # the poll connection and the NOTIFY one
    server.kick(account.user)  # the server drops both
    account.deliver(release(4))
    wait_until(lambda: stored_uids(db) == [1, 2, 3, 4], 20, "the mail after the drop")
    assert logins(server, account.user) == 4
    assert not daemon.events("poll_failed")  # a dropped poll connection is just replaced


class LoopHost:
    """Runs a Runner's job as the daemon would: when asked (after `delay`) and every tick."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self._due = time.monotonic()
        self._poke = threading.Event()

    def request_run(self, job_id: str, delay: float = 0.0) -> None:
        self._due = min(self._due, time.monotonic() + delay)
        self._poke.set()

    def loop(self, runner: Runner) -> None:
        while not self.stop.is_set():
            self._poke.wait(max(self._due - time.monotonic(), 0.0))
            self._poke.clear()
            if time.monotonic() >= self._due:
                self._due = time.monotonic() + runner.interval
                runner.run()


def test_watchers_come_back_once_the_other_client_lets_go(
    own_dovecot: Callable[..., Dovecot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "LIMIT_HOLD_SECONDS", 1.0)  # a minute in use
    server = own_dovecot(max_userip_connections=4, capability=PLAIN_CAPABILITY)
    account = account_with_folders(server)
    others = [account.client() for _ in range(3)]
    db = tmp_path / "g.db"
    settings = SETTINGS.model_copy(update={"database": DatabaseSettings(path=db)})
    mailbox = account.mailbox_settings(name="dod", folders=FOLDERS[:5], sweep_interval=1)
    host = LoopHost(settings)
    runner = Runner(host, mailbox)
    thread = threading.Thread(target=host.loop, args=(runner,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: watch_of(db, "INBOX") == "sweep", 20, "INBOX swept: no room")
        assert account.connections() == 4  # the others' 3 and govfeed's poll connection
        for client in others:
            client.logout()
        others.clear()
        wait_until(lambda: watch_of(db, "INBOX") == "idle", 30, "INBOX watched by IDLE again")
        wait_until(lambda: watch_of(db, "List01") == "idle", 30, "the second IDLE back too")
        assert watch_of(db, "List02") == "sweep"
        assert account.connections() <= 3
    finally:
        host.stop.set()
        thread.join(10)
        runner.retire()
        runner.stop_watchers(5)
        for client in others:
            client.logout()


def watch_of(db: Path, folder: str) -> str | None:
    try:
        found = rows(db, "select watch from mailbox_state where folder = ?", folder)
    except sqlite3.OperationalError:  # the schema is being made
        return None
    return found[0][0] if found else None


@pytest.mark.parametrize("capability", [None, PLAIN_CAPABILITY], ids=["notify", "idle"])
def test_mail_is_stored_after_every_connection_went_silent(
    own_dovecot: Callable[..., Dovecot],
    tmp_path: Path,
    daemons: Callable[[Path], RunningDaemon],
    capability: str | None,
) -> None:
    server = own_dovecot(max_userip_connections=10, capability=capability)
    account = server.account()
    proxy = CutProxy(server.imap_port)
    try:
        # Renewals every second with a 2-second reply deadline (in use: 240 s and 60 s).
        daemon, _config = start(
            daemons,
            tmp_path,
            account,
            folders=["INBOX"],
            port=proxy.port,
            keepalive_interval=1,
            timeout=2,
        )
        daemon.wait_for("notify_watching" if capability is None else "idle_watching")
        proxy.silence()  # a NAT box forgot every flow: nothing passes, nothing closes
        account.deliver(release(1))
        wait_until(lambda: stored_uids(tmp_path / "g.db") == [1], 30, "the mail, stored")
        # The watcher notices its silent connection too (the poll connection's replacement
        # may have stored the mail first).
        daemon.wait_for("notify_failed" if capability is None else "idle_failed", timeout=30)
    finally:
        proxy.close()
