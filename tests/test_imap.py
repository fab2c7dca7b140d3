"""ImapSession against a real Dovecot: TLS, login, UIDs, batches, IDLE, post-actions, timeouts."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from govfeed.config import Secret
from govfeed.errors import ConfigError, ImapAuthError, ImapError
from govfeed.imap import ImapSession
from tests.dovecot import Account, CutProxy, Dovecot


def message(n: int, size: int = 0) -> bytes:
    """A small bulletin-like message; `size` pads the body with lines of text."""
    body = b"".join(b"Line %d of the release text.\r\n" % i for i in range(size // 30))
    return (
        b"From: Department of Defense <USDOD@public.govdelivery.com>\r\n"
        b"To: feeds@example.org\r\n"
        b"Subject: Release number %d\r\n"
        b"Message-ID: <release-%d@govdelivery.example>\r\n"
        b"Date: Sat, 27 Jul 2024 10:00:00 -0400\r\n"
        b"\r\n"
        b"Release %d.\r\n" % (n, n, n)
    ) + body


def flags(account: Account, folder: str, uid: int) -> tuple[bytes, ...]:
    with account.client() as client:
        client.select_folder(folder, readonly=True)
        return tuple(client.get_flags([uid]).get(uid, ()))


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel does) and never says a word."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as server:
        yield server.getsockname()[1]


def test_plaintext_login_fetches_the_exact_bytes(imap_account: Account) -> None:
    data = message(1, size=2000)
    imap_account.deliver(data)
    with ImapSession(imap_account.mailbox_settings("none", name="dod")) as imap:
        assert imap.tls_version is None
        uidvalidity, uidnext = imap.folder_status("INBOX")
        uids = imap.new_uids("INBOX", 0)
        [[raw]] = list(imap.fetch_batches("INBOX", uids, 10))
    assert (uids, uidnext) == ([1], 2)
    assert raw.data == data
    assert (raw.mailbox, raw.folder, raw.uid, raw.uidvalidity) == ("dod", "INBOX", 1, uidvalidity)
    assert raw.source == "imap:dod/INBOX"
    assert raw.received_at is not None and raw.received_at.tzinfo == UTC
    assert abs(datetime.now(UTC) - raw.received_at) < timedelta(minutes=5)


def test_imaps_verifies_the_server_with_the_configured_ca(imap_account: Account) -> None:
    with ImapSession(imap_account.mailbox_settings("imaps")) as imap:
        assert imap.tls_version in ("TLSv1.2", "TLSv1.3")
        assert "INBOX" in imap.list_folders()


def test_imaps_refuses_a_server_certificate_from_an_unknown_ca(imap_account: Account) -> None:
    mailbox = imap_account.mailbox_settings("imaps", ca_file=None)  # system CAs only
    with pytest.raises(ImapError, match="certificate not trusted") as raised:
        ImapSession(mailbox).connect()
    assert not isinstance(raised.value, ImapAuthError)


def test_starttls_upgrades_the_plain_port_and_verifies(imap_account: Account) -> None:
    with ImapSession(imap_account.mailbox_settings("starttls")) as imap:
        assert imap.tls_version in ("TLSv1.2", "TLSv1.3")
        assert imap.folder_status("INBOX")[1] == 1
    with pytest.raises(ImapError, match="certificate not trusted"):
        ImapSession(imap_account.mailbox_settings("starttls", ca_file=None)).connect()


def test_imaps_on_a_plain_port_suggests_starttls(imap_account: Account) -> None:
    """security = "imaps" against the plain port: a sentence that says what to do, not
    OpenSSL's WRONG_VERSION_NUMBER."""
    server = imap_account.server
    mailbox = imap_account.mailbox_settings("imaps", port=server.imap_port)
    with pytest.raises(ImapError) as raised:
        ImapSession(mailbox).connect()
    assert str(raised.value) == (
        f"test: the server at {server.host}:{server.imap_port} did not answer TLS;"
        ' if it offers STARTTLS set security = "starttls"'
    )
    assert not isinstance(raised.value, ImapAuthError)


def test_wrong_password_is_an_auth_error_that_does_not_show_it(imap_account: Account) -> None:
    wrong = "not-the-password-7f3a"
    session = ImapSession(imap_account.mailbox_settings(), Secret(wrong, "password"))
    with pytest.raises(ImapAuthError) as raised:
        session.connect()
    assert wrong not in str(raised.value)
    assert imap_account.user in str(raised.value)
    assert "AUTHENTICATIONFAILED" in str(raised.value)
    assert not session.connected


def test_password_from_the_environment(
    imap_account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_IMAP_PASSWORD", imap_account.password)
    mailbox = imap_account.mailbox_settings(password_file=None, password_env="TEST_IMAP_PASSWORD")
    with ImapSession(mailbox) as imap:
        assert imap.connected


def test_xoauth2_login_with_a_token_command(imap_account: Account) -> None:
    # The test Dovecot checks an XOAUTH2 token as it would a password (passwd-file passdb).
    command = [sys.executable, "-c", f"print({imap_account.password!r})"]
    mailbox = imap_account.mailbox_settings(password_file=None, oauth2_token_command=command)
    with ImapSession(mailbox) as imap:
        assert imap.folder_status("INBOX")[1] == 1
    bad = ImapSession(imap_account.mailbox_settings(), Secret("expired-token", "oauth2"))
    with pytest.raises(ImapAuthError) as raised:
        bad.connect()
    assert "expired-token" not in str(raised.value)


def test_new_uids_after_a_cursor_ignores_the_star_quirk(imap_account: Account) -> None:
    imap_account.append_many(message(n) for n in range(1, 4))
    with ImapSession(imap_account.mailbox_settings()) as imap:
        assert imap.new_uids("INBOX", 0) == [1, 2, 3]
        assert imap.new_uids("INBOX", 1) == [2, 3]
        # "UID 4:*" matches UID 3 (the highest) on the server: nothing is new.
        assert imap.new_uids("INBOX", 3) == []
        assert imap.new_uids("INBOX", 10) == []
        assert imap.new_uids("INBOX", 0, since=date.today() + timedelta(days=2)) == []
        assert imap.new_uids("INBOX", 0, since=date.today() - timedelta(days=2)) == [1, 2, 3]


def test_new_uids_on_an_empty_folder(imap_account: Account) -> None:
    with ImapSession(imap_account.mailbox_settings()) as imap:
        assert imap.new_uids("INBOX", 0) == []


def test_fetch_batches_are_bounded_and_exact(imap_account: Account) -> None:
    sent = [message(n, size=500 * n) for n in range(1, 6)]
    imap_account.append_many(sent)
    with ImapSession(imap_account.mailbox_settings()) as imap:
        uidvalidity, _ = imap.folder_status("INBOX")
        batches = list(imap.fetch_batches("INBOX", imap.new_uids("INBOX", 0), batch_size=2))
    assert [len(batch) for batch in batches] == [2, 2, 1]
    fetched = [raw for batch in batches for raw in batch]
    assert [raw.uid for raw in fetched] == [1, 2, 3, 4, 5]
    assert {raw.uidvalidity for raw in fetched} == {uidvalidity}
    assert [raw.data for raw in fetched] == sent


def test_fetch_skips_a_uid_that_does_not_exist(imap_account: Account) -> None:
    imap_account.deliver(message(1))
    with ImapSession(imap_account.mailbox_settings()) as imap:
        [batch] = list(imap.fetch_batches("INBOX", [1, 7], batch_size=10))
    assert [raw.uid for raw in batch] == [1]


def test_uidvalidity_changes_when_a_folder_is_recreated(imap_account: Account) -> None:
    imap_account.create_folder("Feeds")
    imap_account.deliver(message(1), folder="Feeds")
    imap_account.deliver(message(2), folder="Feeds")
    with ImapSession(imap_account.mailbox_settings()) as imap:
        before, uidnext = imap.folder_status("Feeds")
        assert uidnext == 3
        imap_account.delete_folder("Feeds")
        imap_account.create_folder("Feeds")
        imap_account.deliver(message(3), folder="Feeds")
        after, uidnext = imap.folder_status("Feeds")
        assert after != before
        assert uidnext == 2
        [[raw]] = list(imap.fetch_batches("Feeds", imap.new_uids("Feeds", 0), 10))
    assert (raw.uid, raw.uidvalidity, raw.data) == (1, after, message(3))


def test_a_missing_folder_is_an_imap_error(imap_account: Account) -> None:
    with ImapSession(imap_account.mailbox_settings()) as imap:
        with pytest.raises(ImapError, match="Nope: EXAMINE"):
            imap.folder_status("Nope")
        assert imap.connected  # a NO answer leaves the connection usable
        assert imap.folder_status("INBOX")[1] == 1


def test_idle_wakes_within_two_seconds_of_a_delivery(imap_account: Account) -> None:
    delivered: list[float] = []

    def deliver_later() -> None:
        time.sleep(0.5)
        imap_account.deliver(message(1))
        delivered.append(time.monotonic())

    with ImapSession(imap_account.mailbox_settings()) as imap:
        assert imap.has_idle()
        thread = threading.Thread(target=deliver_later)
        thread.start()
        woke = imap.idle_wait("INBOX", timeout=20)
        returned = time.monotonic()
        thread.join()
        assert woke is True
        assert returned - delivered[0] < 2.0
        assert imap.new_uids("INBOX", 0) == [1]  # the session works after IDLE


def test_idle_times_out_quietly_and_sees_mail_that_came_before_it(
    imap_account: Account,
) -> None:
    with ImapSession(imap_account.mailbox_settings()) as imap:
        started = time.monotonic()
        assert imap.idle_wait("INBOX", timeout=0.3) is False
        assert 0.25 < time.monotonic() - started < 2
        imap.noop()
        _, uidnext = imap.folder_status("INBOX")
        imap_account.deliver(message(1))  # between the last poll and the next IDLE
        started = time.monotonic()
        assert imap.idle_wait("INBOX", timeout=10, known_uidnext=uidnext) is True
        assert time.monotonic() - started < 1


def test_idle_on_a_cut_connection_raises_instead_of_spinning(
    dovecot: Dovecot, imap_account: Account
) -> None:
    proxy = CutProxy(dovecot.imap_port)
    try:
        mailbox = imap_account.mailbox_settings(port=proxy.port)
        imap = ImapSession(mailbox)
        imap.connect()
        threading.Timer(0.3, proxy.cut).start()
        started = time.monotonic()
        with pytest.raises(ImapError):
            imap.idle_wait("INBOX", timeout=10)
        assert time.monotonic() - started < 5
        assert not imap.connected
    finally:
        proxy.close()


def test_a_connection_cut_in_the_middle_of_a_fetch_raises(
    dovecot: Dovecot, imap_account: Account
) -> None:
    imap_account.append_many(message(n, size=100_000) for n in range(1, 11))
    proxy = CutProxy(dovecot.imap_port)
    try:
        with ImapSession(imap_account.mailbox_settings(port=proxy.port)) as imap:
            uids = imap.new_uids("INBOX", 0)
            proxy.cut_after(350_000)  # inside the literal of the fourth message
            started = time.monotonic()
            with pytest.raises(ImapError, match="UID FETCH"):
                list(imap.fetch_batches("INBOX", uids, batch_size=10))
            assert time.monotonic() - started < 5
            assert not imap.connected
            imap.connect()  # through the proxy again: it only cut the old connection
            assert imap.new_uids("INBOX", 8) == [9, 10]
    finally:
        proxy.close()


def test_an_unreadable_ca_file_is_a_config_error(imap_account: Account) -> None:
    mailbox = imap_account.mailbox_settings("imaps", ca_file="/nonexistent/ca.pem")
    with pytest.raises(ConfigError, match=r"ca_file: cannot load /nonexistent/ca\.pem"):
        ImapSession(mailbox).connect()


def test_a_server_restart_ends_idle_with_an_error_then_reconnect_works(
    dovecot: Dovecot, imap_account: Account
) -> None:
    imap = ImapSession(imap_account.mailbox_settings())
    imap.connect()
    stopper = threading.Timer(0.3, dovecot.stop)
    stopper.start()
    try:
        with pytest.raises(ImapError):
            imap.idle_wait("INBOX", timeout=20)
        assert not imap.connected
    finally:
        stopper.join()
        dovecot.start()
    imap_account.deliver(message(1))
    with imap:  # connects again
        assert imap.new_uids("INBOX", 0) == [1]


def test_fetch_does_not_set_seen(imap_account: Account) -> None:
    imap_account.deliver(message(1))
    with ImapSession(imap_account.mailbox_settings()) as imap:
        list(imap.fetch_batches("INBOX", [1], 10))
    assert b"\\Seen" not in flags(imap_account, "INBOX", 1)


def test_mark_seen(imap_account: Account) -> None:
    imap_account.append_many([message(1), message(2)])
    with ImapSession(imap_account.mailbox_settings()) as imap:
        imap.mark_seen("INBOX", [2])
        assert imap.new_uids("INBOX", 0) == [1, 2]  # still readable after the SELECT
    assert b"\\Seen" not in flags(imap_account, "INBOX", 1)
    assert b"\\Seen" in flags(imap_account, "INBOX", 2)


def test_move_creates_the_target_and_moves_only_those_uids(imap_account: Account) -> None:
    imap_account.append_many([message(1), message(2), message(3)])
    with ImapSession(imap_account.mailbox_settings()) as imap:
        imap.move("INBOX", [1, 3], "Processed")
        assert imap.new_uids("INBOX", 0) == [2]
        moved = [raw.data for batch in imap.fetch_batches("Processed", [1, 2], 10) for raw in batch]
        assert "Processed" in imap.list_folders()
    assert moved == [message(1), message(3)]


def test_connect_to_a_silent_server_times_out(silent_port: int, imap_account: Account) -> None:
    for security in ("none", "imaps"):
        mailbox = imap_account.mailbox_settings(security, port=silent_port, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ImapError, match="timed out"):
            ImapSession(mailbox).connect()
        assert time.monotonic() - started < 3


def test_connection_refused_is_an_imap_error(imap_account: Account) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(ImapError, match="connect"):
        ImapSession(imap_account.mailbox_settings(port=port)).connect()


def test_every_command_has_the_socket_timeout(imap_account: Account) -> None:
    for security in ("none", "starttls", "imaps"):
        with ImapSession(imap_account.mailbox_settings(security, timeout=7)) as imap:
            imap.list_folders()
            assert imap._imap.socket().gettimeout() == 7
