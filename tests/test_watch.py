"""Watching many folders on few connections: the plan, the budget, NOTIFY, IDLE, the sweep's
numbers, limit refusals and connections that go silent, against a real Dovecot."""

from __future__ import annotations

import socket
import time
from collections.abc import Collection, Iterator

import pytest

from govfeed.config import MailboxSettings
from govfeed.connections import ConnectionBudget, Plan, plan
from govfeed.errors import ImapAuthError, ImapLimitError
from govfeed.imap import ImapSession, is_connection_limit
from govfeed.watch import IdleWatcher, NotifyWatcher, Watcher
from tests.dovecot import Account, CutProxy, Dovecot, find_dovecot
from tests.test_daemon import wait_until
from tests.test_sync import release

# What Dovecot announces, less NOTIFY and LIST-STATUS: a server like Gmail.
PLAIN_CAPABILITY = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS MOVE"


@pytest.fixture
def small_dovecot() -> Iterator[Dovecot]:
    """A Dovecot of its own that lets a user hold 2 connections, without NOTIFY or
    LIST-STATUS."""
    if find_dovecot() is None:
        pytest.skip("dovecot is not installed")
    server = Dovecot(max_userip_connections=2, capability=PLAIN_CAPABILITY)
    try:
        server.start()
        yield server
    finally:
        server.close()


class Host:
    """What a watcher reports, recorded."""

    def __init__(self) -> None:
        self.woken: list[tuple[float, set[str]]] = []
        self.checked: list[set[str]] = []
        self.limited_slots: list[int] = []

    def wake(self, folders: Collection[str]) -> None:
        self.woken.append((time.monotonic(), set(folders)))

    def check(self, folders: Collection[str]) -> None:
        self.checked.append(set(folders))

    def limited(self, slot: int) -> None:
        self.limited_slots.append(slot)


def run_watcher(watcher: Watcher) -> Watcher:
    watcher.start()
    wait_until(lambda: watcher.live, 10, "the watcher connected")
    return watcher


def stop(watcher: Watcher) -> None:
    watcher.stop.set()
    assert watcher.join(5)


# -- the plan and the budget -----------------------------------------------------------

FOLDERS = ("INBOX", "A", "B", "C", "D")


def test_notify_watches_every_folder_on_one_connection() -> None:
    found = plan(FOLDERS, 3, watch=True, has_notify=True, has_idle=True)
    assert found.notify == FOLDERS and not found.idle and not found.swept
    assert set(found.modes.values()) == {"notify"}


def test_without_notify_idle_takes_the_first_folders_and_the_rest_is_swept() -> None:
    found = plan(FOLDERS, 3, watch=True, has_notify=False, has_idle=True)
    assert found.idle == ("INBOX", "A")  # config order: one connection is the poll's
    assert found.swept == ("B", "C", "D")
    assert found.modes == {"INBOX": "idle", "A": "idle", "B": "sweep", "C": "sweep", "D": "sweep"}


def test_one_connection_sweeps_everything_and_idle_false_polls() -> None:
    for has_notify in (True, False):
        found = plan(FOLDERS, 1, watch=True, has_notify=has_notify, has_idle=True)
        assert found == Plan(swept=FOLDERS, modes=dict.fromkeys(FOLDERS, "sweep"))
    assert plan(FOLDERS, 3, watch=False, has_notify=True, has_idle=True).polled == FOLDERS
    no_idle = plan(FOLDERS, 3, watch=True, has_notify=False, has_idle=False)
    assert no_idle.swept == FOLDERS


def test_a_limit_refusal_costs_one_connection_for_a_while() -> None:
    now = [0.0]
    budget = ConnectionBudget(3, monotonic=lambda: now[0])
    assert budget.limit == 3
    assert budget.limit_hit() == 60
    assert budget.limit == 2 and budget.allows(1) and not budget.allows(2)
    now[0] = 30
    assert budget.limit_hit() == 120  # again soon: a longer hold
    assert budget.limit == 1
    budget.limit_hit()
    assert budget.limit == 1  # never below the poll connection
    now[0] += 240
    assert budget.limit == 2  # back one at a time...
    assert budget.limit == 2
    now[0] += 240
    assert budget.limit == 3  # ...to the configured size


def test_limit_wording_is_told_apart_from_rejected_credentials() -> None:
    for text in (
        "[UNAVAILABLE] Maximum number of connections from user+IP exceeded",
        "[LIMIT] Maximum number of connections from user+IP exceeded",
        "[ALERT] Too many simultaneous connections. (Failure)",
        "too many connections",
    ):
        assert is_connection_limit(text), text
    for text in ("[AUTHENTICATIONFAILED] Authentication failed.", "Invalid credentials"):
        assert not is_connection_limit(text), text


def test_dovecots_connection_limit_is_a_limit_not_a_wrong_password(
    small_dovecot: Dovecot,
) -> None:
    held = [small_dovecot.account_client() for _ in range(2)]
    session = ImapSession(small_dovecot.mailbox_settings())
    with pytest.raises(ImapLimitError, match="Maximum number of connections") as refused:
        session.connect()
    assert not isinstance(refused.value, ImapAuthError)
    held.pop().logout()
    session.connect()  # a connection freed: it goes through
    session.close()
    held.pop().logout()


def test_every_imap_socket_has_short_tcp_keepalive(imap_account: Account) -> None:
    with ImapSession(imap_account.mailbox_settings()) as session:
        sock = session._imap.socket()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 15


# -- the sweep's numbers ---------------------------------------------------------------


def numbers_both_ways(account: Account, plain: Account) -> None:
    for name in (account, plain):
        name.create_folder("Lists.DoD")
        name.create_folder("Ünïcode list")
        name.deliver(release(1), "Lists.DoD")
        name.deliver(release(2), "Lists.DoD")
    folders = ["INBOX", "Lists.DoD", "Ünïcode list", "Missing"]
    rich, poor = ImapSession(account.mailbox_settings()), ImapSession(plain.mailbox_settings())
    with rich, poor:
        assert rich.has("LIST-STATUS") and not poor.has("LIST-STATUS")
        one, each = rich.folder_numbers(folders), poor.folder_numbers(folders)
    assert set(one) == set(each) == {"INBOX", "Lists.DoD", "Ünïcode list"}  # Missing left out
    for found in (one, each):
        assert found["Lists.DoD"][1:] == (3, 2)  # UIDNEXT, MESSAGES
        assert found["INBOX"][1:] == (1, 0)


def test_folder_numbers_from_list_status_or_status_agree(
    imap_account: Account, small_dovecot: Dovecot
) -> None:
    numbers_both_ways(imap_account, small_dovecot.account())


# -- watchers on a real server ---------------------------------------------------------


def test_notify_reports_new_mail_in_any_folder(imap_account: Account) -> None:
    folders = [f"List{n}" for n in range(120)]  # more names than Dovecot's NOTIFY takes (100)
    imap_account.create_folders(folders)
    host = Host()
    mailbox = imap_account.mailbox_settings(folders=["INBOX", *folders])
    watcher = run_watcher(NotifyWatcher(mailbox, 1, mailbox.folders, host))
    try:
        assert host.checked == [set(mailbox.folders)]  # after connecting: check them all
        imap_account.deliver(release(1), "List117")
        wait_until(lambda: host.woken, 10, "a wake for List117")
        imap_account.deliver(release(2), "INBOX")
        wait_until(lambda: len(host.woken) >= 2, 10, "a wake for INBOX")
        assert [folders for _, folders in host.woken[:2]] == [{"List117"}, {"INBOX"}]
    finally:
        stop(watcher)


def test_the_idle_watcher_renews_its_idle_and_wakes_on_mail(imap_account: Account) -> None:
    host = Host()
    mailbox = imap_account.mailbox_settings(keepalive_interval=1)
    watcher = run_watcher(IdleWatcher(mailbox, 1, ["INBOX"], host))
    try:
        first = watcher.checked_at
        wait_until(lambda: watcher.checked_at != first, 10, "a renewal")  # to the second
        imap_account.deliver(release(1))
        wait_until(lambda: host.woken, 10, "the wake for new mail")
        assert host.woken[0][1] == {"INBOX"}
    finally:
        stop(watcher)


@pytest.mark.parametrize("kind", [IdleWatcher, NotifyWatcher])
def test_a_connection_that_goes_silent_is_replaced_and_mail_still_reported(
    imap_account: Account, kind: type[Watcher]
) -> None:
    proxy = CutProxy(imap_account.server.imap_port)
    # Renewed every second, with a 2-second reply deadline (4 minutes and `timeout` in use).
    mailbox = imap_account.mailbox_settings(port=proxy.port, keepalive_interval=1, timeout=2)
    host = Host()
    watcher = run_watcher(kind(mailbox, 1, mailbox.folders, host))
    try:
        proxy.silence()  # a NAT box forgot the flow: nothing passes, nothing closes
        wait_until(lambda: not watcher.live, 10, "the silent connection noticed")
        wait_until(lambda: watcher.live, 10, "a new connection")
        imap_account.deliver(release(1))
        wait_until(lambda: host.woken, 10, "the wake for new mail on the new connection")
    finally:
        stop(watcher)
        proxy.close()


def test_a_watcher_refused_for_the_limit_reports_it_and_ends(small_dovecot: Dovecot) -> None:
    held = [small_dovecot.account_client() for _ in range(2)]
    host = Host()
    mailbox: MailboxSettings = small_dovecot.mailbox_settings()
    watcher = IdleWatcher(mailbox, 2, ["INBOX"], host)
    watcher.start()
    assert watcher.join(10)  # no retry loop against the limit: the runner decides
    assert host.limited_slots == [2]
    for client in held:
        client.logout()


def test_a_stopped_watcher_ends_without_waiting_for_its_renewal(imap_account: Account) -> None:
    for kind in (IdleWatcher, NotifyWatcher):
        mailbox = imap_account.mailbox_settings()  # renewal every 240 s
        watcher = run_watcher(kind(mailbox, 1, mailbox.folders, Host()))
        time.sleep(0.3)  # in IDLE now
        stop(watcher)  # a reload or a shutdown does not leave it holding a connection
