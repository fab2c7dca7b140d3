"""Shared fixtures: a real, private Dovecot for the IMAP tests (its API: tests/dovecot.py)."""

from __future__ import annotations

import atexit
from collections.abc import Iterator

import pytest
import structlog

from tests.dovecot import Account, Dovecot, find_dovecot


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Every test starts with structlog's defaults: a command run in-process (click's
    runner) configures logging for the whole process, and a `--log-level critical` left
    behind would hide the events a later test captures with `capture_logs`."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One Dovecot for the session on 127.0.0.1 (plain+STARTTLS and IMAPS listeners, its own
    CA); skips the test when dovecot is not installed. Stopped and removed at the end."""
    if find_dovecot() is None:
        pytest.skip("dovecot is not installed (scripts/bootstrap installs dovecot-imapd)")
    server = Dovecot()
    atexit.register(server.close)  # also when the session ends without finalisers
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def imap_account(dovecot: Dovecot) -> Account:
    """A fresh, empty account on the running session Dovecot (restarted if a test stopped it)."""
    dovecot.start()
    return dovecot.account()
