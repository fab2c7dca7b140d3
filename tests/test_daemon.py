"""`govfeed run`, `poll` and `check-config` against a real Dovecot.

The daemon runs as a subprocess with a config written in tmp_path; the tests watch its
JSON log lines and the database, and send it real signals.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from govfeed.cli import cli
from govfeed.daemon import Notifier
from govfeed.scheduler import retry_delay
from tests.dovecot import DIE_WITH_PARENT, Account, Dovecot
from tests.test_sync import debug_logs, release, rows, state, stored_uids  # noqa: F401 - debug_logs: a fixture

WRONG_PASSWORD = "not-the-password-5e1d"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string here


def write_config(path: Path, db: Path, *mailboxes: dict[str, Any]) -> Path:
    lines = ["[database]", f"path = {toml_value(db)}", ""]
    # The test mail carries Gmail's Authentication-Results, as mail fetched from Gmail would.
    lines += ["[authentication]", 'trusted_authserv_ids = ["mx.google.com"]', ""]
    for mailbox in mailboxes:
        lines.append("[[mailboxes]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in mailbox.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


class RunningDaemon:
    """`govfeed run` in a subprocess, its stdout (JSON log lines) in a file."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.process = subprocess.Popen(
            # setpriv --pdeathsig: it dies with the test run, even a SIGKILLed pytest
            [*DIE_WITH_PARENT, sys.executable, "-m", "govfeed", "--config", str(config), "run"],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "GOVFEED_LOG_LEVEL": "debug", **(env or {})},
            start_new_session=True,  # a process group of its own, as under systemd
        )

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                found.append(event)
        return found

    def wait_for(self, name: str, timeout: float = 10, count: int = 1) -> list[dict[str, Any]]:
        return wait_until(
            lambda: len(self.events(name)) >= count and self.events(name),
            timeout,
            f"{count} x {name} in the daemon's log:\n{self.log.read_text()[-3000:]}",
        )

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def send_group(self, signum: int) -> None:
        """To every process of the daemon, as Ctrl-C or systemd's default KillMode does."""
        os.killpg(self.process.pid, signum)

    def exit_code(self, timeout: float = 15) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGUSR1)  # every thread's stack into the log, to see where
            time.sleep(1)
            tail = self.log.read_text()[-12000:]
            raise AssertionError(f"no exit in {timeout} s:\n{tail}") from None

    def kill(self) -> None:
        """Whatever is left of it (analyzer workers included)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., RunningDaemon]]:
    """Start `govfeed run` (killed at the end of the test if still running)."""
    started: list[RunningDaemon] = []

    def start(config: Path, env: dict[str, str] | None = None) -> RunningDaemon:
        daemon = RunningDaemon(config, tmp_path / f"daemon-{len(started)}.log", env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def mailbox(account: Account, **overrides: Any) -> dict[str, Any]:
    """A [[mailboxes]] entry for the account that only IDLE (or startup) would poll soon."""
    return account.mailbox_config(**{"name": "dod", "poll_interval": 3600, **overrides})


def test_idle_delivery_reaches_the_database_within_two_seconds(
    imap_account: Account, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    db = tmp_path / "g.db"
    daemon = start_daemon(write_config(tmp_path / "g.toml", db, mailbox(imap_account)))
    daemon.wait_for("notify_watching")  # Dovecot has NOTIFY: one watcher for all
    wait_until(lambda: state(db).get("last_success_at"), 10, "the first poll")
    imap_account.deliver(release(1))
    delivered = time.monotonic()
    wait_until(lambda: stored_uids(db) == [1], 10, "the delivered message in the database")
    assert time.monotonic() - delivered < 2.0
    daemon.send(signal.SIGTERM)
    assert daemon.exit_code() == 0


def test_the_daemon_recovers_by_itself_from_a_server_restart(
    dovecot: Dovecot,
    imap_account: Account,
    tmp_path: Path,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    db = tmp_path / "g.db"
    daemon = start_daemon(write_config(tmp_path / "g.toml", db, mailbox(imap_account)))
    daemon.wait_for("notify_watching")  # Dovecot has NOTIFY: one watcher for all
    imap_account.deliver(release(1))
    wait_until(lambda: stored_uids(db) == [1], 10, "the first message")
    dovecot.stop()
    dovecot.start()
    imap_account.deliver(release(2))
    wait_until(lambda: stored_uids(db) == [1, 2], 20, "the message sent after the restart")
    assert daemon.events("notify_failed")  # the watcher saw the server go and came back
    assert daemon.process.poll() is None
    daemon.send(signal.SIGTERM)
    assert daemon.exit_code() == 0


def sigterm_during_a_batch(
    imap_account: Account, tmp_path: Path, start_daemon: Callable[..., RunningDaemon], group: bool
) -> None:
    imap_account.append_many(release(n) for n in range(1, 301))  # 300: in the worker pool
    db = tmp_path / "g.db"
    config = mailbox(imap_account, batch_size=20, idle=False)
    daemon = start_daemon(write_config(tmp_path / "g.toml", db, config))
    daemon.wait_for("batch_stored")
    # The next batches are being fetched and analyzed now.
    if group:
        daemon.send_group(signal.SIGTERM)
    else:
        daemon.send(signal.SIGTERM)
    assert daemon.exit_code() == 0
    assert daemon.events("daemon_stopped")
    uids = stored_uids(db)
    cursor = state(db)["last_uid"]
    assert 0 < cursor < 300
    assert uids == list(range(1, cursor + 1))  # each message once, none beyond the cursor
    assert rows(db, "select distinct status from messages") == [("stored",)]
    assert rows(db, "pragma integrity_check") == [("ok",)]


def test_sigterm_during_a_batch_commits_it_and_exits_0(
    imap_account: Account, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    sigterm_during_a_batch(imap_account, tmp_path, start_daemon, group=False)


def test_sigterm_to_the_process_group_during_a_batch_commits_it_and_exits_0(
    imap_account: Account, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    sigterm_during_a_batch(imap_account, tmp_path, start_daemon, group=True)


def test_sighup_reloads_the_config_and_a_bad_one_is_ignored(
    imap_account: Account, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    imap_account.create_folder("Later")
    imap_account.deliver(release(1), folder="Later")
    db = tmp_path / "g.db"
    config = write_config(tmp_path / "g.toml", db, mailbox(imap_account, idle=False))
    daemon = start_daemon(config)
    wait_until(lambda: state(db).get("last_success_at"), 10, "the first poll")
    assert stored_uids(db, "Later") == []
    write_config(config, db, mailbox(imap_account, idle=False, folders=["INBOX", "Later"]))
    daemon.send(signal.SIGHUP)
    wait_until(lambda: stored_uids(db, "Later") == [1], 10, "the folder the reload added")
    assert daemon.wait_for("config_reloaded")[0]["changed"] == ["dod"]
    config.write_text("[[mailboxes]]\nname = 'dod'\nhots = 'typo'\n")
    daemon.send(signal.SIGHUP)
    [failed] = daemon.wait_for("config_reload_failed")
    assert "hots: unknown key (did you mean host?)" in failed["error"]
    assert daemon.process.poll() is None
    daemon.send(signal.SIGTERM)
    assert daemon.exit_code() == 0


def test_sd_notify_ready_watchdog_and_stopping(
    imap_account: Account, tmp_path: Path, start_daemon: Callable[..., RunningDaemon]
) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(10)
        config = write_config(tmp_path / "g.toml", tmp_path / "g.db", mailbox(imap_account))
        env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}
        daemon = start_daemon(config, env)
        first = sock.recv(4096).decode().split("\n")
        assert first[0] == "READY=1" and first[1].startswith("STATUS=")
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert sock.recv(4096) == b"WATCHDOG=1"  # again, every 0.1 s (half of WATCHDOG_USEC)
        daemon.send(signal.SIGTERM)
        while (message := sock.recv(4096)) == b"WATCHDOG=1":
            pass
        assert message == b"STOPPING=1"
        assert daemon.exit_code() == 0


def test_sd_notify_reaches_an_abstract_socket() -> None:
    name = f"govfeed-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        Notifier("@" + name).send("READY=1")
        assert sock.recv(4096) == b"READY=1"
    Notifier(None).send("READY=1")  # no NOTIFY_SOCKET: nothing to do, no error


def test_a_rejected_login_is_retried_slowly_or_at_once_after_sighup(
    dovecot: Dovecot,
    imap_account: Account,
    tmp_path: Path,
    start_daemon: Callable[..., RunningDaemon],
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text(WRONG_PASSWORD)
    wrong.chmod(0o600)
    db = tmp_path / "g.db"
    config = write_config(
        tmp_path / "g.toml", db, mailbox(imap_account, password_file=str(wrong), poll_interval=10)
    )
    daemon = start_daemon(config)
    daemon.wait_for("login_failed")  # the poll's: no watcher starts before it logs in
    [retry] = daemon.wait_for("poll_retry_scheduled")
    time.sleep(0.5)
    [failed] = daemon.events("login_failed")  # one line, no tight loop of logins
    assert retry["retry_in"] >= 300
    assert failed["retry_in"] == retry["retry_in"]  # the real delay
    assert state(db)["last_error"].startswith("login failed: ")
    assert WRONG_PASSWORD not in daemon.log.read_text()
    wrong.write_text(imap_account.password)  # the operator fixes it and sends SIGHUP:
    daemon.send(signal.SIGHUP)  # no waiting out the backoff
    wait_until(lambda: state(db)["last_error"] is None, 10, "a poll with the fixed password")
    assert daemon.wait_for("config_reloaded")[0]["retried"] == ["dod"]
    daemon.send(signal.SIGTERM)
    assert daemon.exit_code() == 0


def test_retry_delay_doubles_with_jitter_up_to_the_cap() -> None:
    for failures, low in ((1, 1), (2, 2), (3, 4), (10, 60), (50, 60)):
        delay = retry_delay(failures, 1.0, 60.0)
        assert low <= delay <= low * 1.25


# -- govfeed poll and check-config -----------------------------------------------------


def cli_run(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), "--log-level", "critical", *args])


def test_poll_prints_a_line_per_mailbox_and_fails_when_one_does(
    imap_account: Account, tmp_path: Path
) -> None:
    imap_account.append_many([release(1), release(2)])
    wrong = tmp_path / "wrong"
    wrong.write_text(WRONG_PASSWORD)
    wrong.chmod(0o600)
    db = tmp_path / "g.db"
    good = mailbox(imap_account)
    config = write_config(tmp_path / "g.toml", db, good)
    result = cli_run(config, "poll")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "dod: read 2, new releases 2, new versions 0, duplicates 0, ignored 0, failed 0\n"
    )
    bad = mailbox(imap_account, name="other", password_file=str(wrong))
    result = cli_run(write_config(config, db, good, bad), "poll")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("dod: read 0,")
    assert lines[1].startswith("other: read 0,") and "INBOX: login failed: " in lines[1]
    assert WRONG_PASSWORD not in result.output


def test_poll_without_mailboxes_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "g.toml", tmp_path / "g.db")
    result = cli_run(config, "poll")
    assert result.exit_code == 2 and "no [[mailboxes]]" in result.output


def test_check_config_shows_where_secrets_come_from_never_the_secret(
    imap_account: Account, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "g.toml", tmp_path / "g.db", mailbox(imap_account))
    result = cli_run(config, "check-config")
    assert result.exit_code == 0, result.output
    assert f"secret from password_file {imap_account.server.password_file}" in result.output
    assert "folders INBOX" in result.output
    connected = cli_run(config, "check-config", "--connect")
    assert connected.exit_code == 0, connected.output
    assert "logged in; 1 folders: INBOX" in connected.output
    for output in (result.output, connected.output):
        assert imap_account.password not in output


def test_check_config_exit_codes(imap_account: Account, tmp_path: Path) -> None:
    invalid = tmp_path / "bad.toml"
    invalid.write_text("[[mailboxes]]\nname = 'dod'\n")
    result = cli_run(invalid, "check-config")
    assert result.exit_code == 2 and "mailboxes[0].host: required" in result.output
    wrong = tmp_path / "wrong"
    wrong.write_text(WRONG_PASSWORD)
    wrong.chmod(0o600)
    entry = mailbox(imap_account, password_file=str(wrong))
    config = write_config(tmp_path / "g.toml", tmp_path / "g.db", entry)
    assert cli_run(config, "check-config").exit_code == 0  # no --connect: no login
    refused = cli_run(config, "check-config", "--connect")
    assert refused.exit_code == 1 and "rejected" in refused.output
    assert WRONG_PASSWORD not in refused.output
    missing = write_config(
        tmp_path / "m.toml", tmp_path / "g.db", mailbox(imap_account, folders=["Nope"])
    )
    result = cli_run(missing, "check-config", "--connect")
    assert result.exit_code == 1 and "no such folder on the server: Nope" in result.output
