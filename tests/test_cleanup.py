"""Processes the tests start die with the test run, even when pytest itself is SIGKILLed.

Dovecot (tests/dovecot.py) and the tests' `govfeed run` / `govfeed poll` processes
(tests/test_daemon.py, tests/test_hostile_imap.py) are started under `setpriv --pdeathsig
TERM`: the kernel sends them SIGTERM when the process that started them dies, however it
dies, where no finaliser runs. This checks that mechanism with a stand-in for pytest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.dovecot import DIE_WITH_PARENT

pytestmark = pytest.mark.skipif(not DIE_WITH_PARENT, reason="setpriv (util-linux) is missing")

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
RUNNER = f"""
import subprocess, time
child = subprocess.Popen({[*DIE_WITH_PARENT, *SLEEPER]!r}, start_new_session=True)
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting for its reaper is gone too
        return stat.read().split()[2] != "Z"


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as found:
            return found.read()
    except OSError:
        return b""


def _exec_done(pid: int) -> bool:
    """setpriv has set the death signal and become the sleeper (cmdline is its own)."""
    cmdline = _cmdline(pid)
    return cmdline.startswith(SLEEPER[0].encode()) and b"time.sleep(600)" in cmdline


def test_a_child_dies_when_the_test_run_is_sigkilled() -> None:
    runner = subprocess.Popen([sys.executable, "-c", RUNNER], stdout=subprocess.PIPE, text=True)
    assert runner.stdout is not None
    child = int(runner.stdout.readline())
    try:
        # setpriv sets the death signal, then execs the sleeper: wait for that exec, or the
        # kill below may land before the signal is set (a start-up window of a millisecond).
        deadline = time.monotonic() + 10
        while not _exec_done(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert alive(child) and _exec_done(child)
        runner.send_signal(signal.SIGKILL)  # as `kill -9 pytest`: no finaliser runs
        runner.wait()
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        runner.kill()
        runner.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
