"""One logged-in connection to one configured mailbox: connect, TLS, login, and the
limits and error handling every command goes through.

Every imapclient, socket and TLS failure leaves here as `ImapError` (or `ImapAuthError`
for rejected credentials, `ImapLimitError` for a server's connection limit), and no message
carries a secret. Each command is armed with a deadline and a byte budget (see
`govfeed.imapio` for the wire). What is done on the connection is in `govfeed.imapwatch`
(waiting for new mail) and `govfeed.imap` (searching, fetching, post-actions).
"""

from __future__ import annotations

import functools
import imaplib
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any, Self

import structlog
from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, LoginError, ProtocolError

from govfeed.config import MailboxSettings, Secret, read_secret
from govfeed.errors import ConfigError, ImapAuthError, ImapError, ImapLimitError
from govfeed.imapdata import MAX_UID, number
from govfeed.imapio import BoundedClient, Cutoff

log = structlog.get_logger("govfeed.imap")  # the name it logged under before the split

# What imapclient, imaplib, ssl and socket raise for a failed, refused or cut connection.
_FAILURES = (imaplib.IMAP4.error, OSError, EOFError)
# Those of them after which the connection is unusable (rather than a NO or BAD answer).
_BROKEN = (imaplib.IMAP4.abort, ProtocolError, OSError, EOFError)
# What imapclient's and imaplib's parsers raise on an answer that makes no sense (a
# UIDVALIDITY of "abc", a truncated FETCH): the server's fault, so an ImapError.
_GARBAGE = (ValueError, IndexError, KeyError, TypeError, AttributeError)
FETCH_BYTES_PER_SECOND = 128 * 1024  # a FETCH's deadline grows by a second per 128 KiB
_COMMAND_BYTES = 4 << 20  # what any other command's answer may carry, all lines together
# A refusal for a limit rather than for the credentials: RFC 5530's UNAVAILABLE and LIMIT,
# and the wording of servers that say it in words (Dovecot's "Maximum number of connections
# from user+IP exceeded", Gmail's "Too many simultaneous connections").
_LIMIT_WORDING = re.compile(
    r"\[(UNAVAILABLE|LIMIT)\]|too many (simultaneous |concurrent )?connections"
    r"|maximum number of connections|connection limit",
    re.IGNORECASE,
)
# TCP keepalive on every IMAP socket: a NAT box or firewall that forgot a quiet flow (AWS
# NAT: 350 s) drops its packets without a word; unanswered probes end the socket instead
# after about KEEPIDLE + KEEPCNT * KEEPINTVL = 2 minutes.
TCP_KEEPIDLE_SECONDS = 60
TCP_KEEPINTVL_SECONDS = 15
TCP_KEEPCNT = 4


class ImapConnection:
    """A connection to one mailbox; `with ImapSession(mailbox) as imap: ...`.

    Folders are opened read-only (EXAMINE) unless a post-action needs to write. Every
    command, the connection included, has a deadline derived from the mailbox's timeout.
    """

    def __init__(
        self,
        mailbox: MailboxSettings,
        secret: Secret | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.mailbox = mailbox
        self._secret = secret  # None: read_secret() at each connect
        # Set (SIGTERM): every network call gives up within about a second.
        self.stop = stop or threading.Event()
        self._client: BoundedClient | None = None
        self._selected: tuple[str, bool] | None = None  # (folder, readonly)
        self._last_select: dict[bytes, Any] = {}
        self._log = log.bind(mailbox=mailbox.name)

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Connect (verified TLS unless the config says otherwise) and log in.

        Raises ImapAuthError when the server rejects the credentials, ImapError when it
        cannot be reached, times out or fails, ConfigError when the secret or CA file is
        unusable. After an ImapError that broke the connection, `connected` is False:
        `connect()` again (or open a new session)."""
        m = self.mailbox
        if m.security == "none" and not m.allow_plaintext:
            raise ImapError(f"{self._where}: plaintext IMAP is not allowed for this mailbox")
        self.close()
        secret = self._secret or read_secret(m)
        try:
            context = _tls_context(str(m.ca_file) if m.ca_file else None)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"mailbox {m.name}: ca_file: cannot load {m.ca_file}: {err}") from err
        with self._errors("connect"):
            client = BoundedClient(
                m.host,
                m.port,
                tls=context if m.security == "imaps" else None,
                timeout=m.timeout,
                stop=self.stop,
            )
        client.normalise_times = False  # INTERNALDATE with its offset, made UTC below
        _set_keepalive(client.socket())
        try:
            if m.security == "starttls":
                with self._errors("STARTTLS", client):
                    try:
                        client.starttls(context)
                    except CapabilityError as err:
                        raise ImapError(f"{self._where}: the server offers no STARTTLS") from err
            self._login(client, secret)
        except BaseException:
            _shutdown(client)
            raise
        self._client = client
        self._selected = None
        self._log.debug("imap_connected", host=m.host, port=m.port, security=m.security)

    def _login(self, client: BoundedClient, secret: Secret) -> None:
        value = secret.reveal()
        self._arm(client, "LOGIN")
        try:
            if secret.kind == "oauth2":
                client.oauth2_login(self.mailbox.username, value)
            else:
                client.login(self.mailbox.username, value)
        except LoginError as err:
            text = server_text(err).replace(value, "********")
            # imapclient turns every failure during login into LoginError, a dropped
            # connection included; and RFC 5530 UNAVAILABLE is no verdict on the password.
            if is_connection_limit(text):
                raise ImapLimitError(f"{self._where}: connection limit: {text}") from None
            if isinstance(err.__context__, imaplib.IMAP4.abort):
                raise ImapError(f"{self._where}: login failed: {text}") from None
            raise ImapAuthError(
                f"{self._where}: login as {self.mailbox.username} rejected: {text}"
            ) from None
        except (*_FAILURES, *_GARBAGE) as err:
            raise ImapError(f"{self._where}: login failed: {_describe(err)}") from None

    def close(self) -> None:
        """Log out; a connection that is already gone is just dropped."""
        client, self._client, self._selected = self._client, None, None
        if client is None:
            return
        try:
            self._arm(client, "LOGOUT", min(self.mailbox.timeout, 5.0))
            client.logout()
        except (*_FAILURES, *_GARBAGE):
            _shutdown(client)

    def _drop(self) -> None:
        client, self._client, self._selected = self._client, None, None
        if client is not None:
            _shutdown(client)

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def tls_version(self) -> str | None:
        """The TLS version in use ("TLSv1.3"), or None on a plaintext connection."""
        sock = self._imap.socket()
        return sock.version() if isinstance(sock, ssl.SSLSocket) else None

    def has_idle(self) -> bool:
        return self._has("IDLE")

    def has(self, capability: str) -> bool:
        """Whether the server announced `capability` (IDLE, NOTIFY, LIST-STATUS...)."""
        return self._has(capability)

    def noop(self) -> None:
        """Keep the connection alive during long work (and notice a dead one)."""
        with self._errors("NOOP"):
            self._imap.noop()

    def folder_status(self, folder: str) -> tuple[int, int]:
        """(UIDVALIDITY, UIDNEXT) of `folder`, from a fresh EXAMINE, both checked."""
        response = self._select(folder, readonly=True, fresh=True)
        return self._uidvalidity(folder, response), self._uidnumber(folder, response, b"UIDNEXT")

    def message_count(self, folder: str) -> int:
        """EXISTS of `folder` as its last EXAMINE said."""
        response = self._select(folder, readonly=True)
        return number(response.get(b"EXISTS"), f"{self._where}: {folder}: EXISTS", 0)

    @property
    def _imap(self) -> IMAPClient:
        if self._client is None:
            raise ImapError(f"{self._where}: not connected")
        return self._client

    @property
    def _where(self) -> str:
        m = self.mailbox
        return f"{m.name} ({m.host}:{m.port})"

    def _has(self, capability: str) -> bool:
        with self._errors("CAPABILITY"):
            return bool(self._imap.has_capability(capability))

    def _select(self, folder: str, *, readonly: bool, fresh: bool = False) -> dict[bytes, Any]:
        """SELECT/EXAMINE `folder` unless it is open already in a mode that will do."""
        # A read-write SELECT serves reads too: BODY.PEEK[] never sets \Seen.
        open_ok = self._selected in ((folder, readonly), (folder, False))
        if open_ok and not fresh:
            return self._last_select
        command = "EXAMINE" if readonly else "SELECT"
        with self._errors(f"{folder}: {command}"):
            self._selected = None
            response: dict[bytes, Any] = self._imap.select_folder(folder, readonly=readonly)
        self._selected = (folder, readonly)
        self._last_select = response
        return response

    def _uidvalidity(self, folder: str, response: dict[bytes, Any]) -> int:
        return self._uidnumber(folder, response, b"UIDVALIDITY")

    def _uidnumber(self, folder: str, response: dict[bytes, Any], key: bytes) -> int:
        if key not in response:
            raise ImapError(f"{self._where}: {folder}: EXAMINE gave no {key.decode()}")
        top = MAX_UID + 1 if key == b"UIDNEXT" else MAX_UID
        return number(response[key], f"{self._where}: {folder}: {key.decode()}", 1, top)

    def _arm(
        self,
        client: BoundedClient,
        action: str,
        seconds: float | None = None,
        budget: int = 0,
    ) -> None:
        """The limits of the next command: `seconds` (default: the mailbox's timeout, plus
        time for the `budget` bytes of messages it may carry) and its bytes."""
        limit = self.mailbox.max_message_bytes
        if seconds is None:
            seconds = self.mailbox.timeout + budget / FETCH_BYTES_PER_SECOND
        client.reader.arm(
            action,
            seconds,
            max_bytes=_COMMAND_BYTES + budget + budget // 8,
            max_literal=limit if budget else 1 << 20,
        )

    @contextmanager
    def _errors(
        self, action: str, client: BoundedClient | None = None, *, budget: int = 0
    ) -> Iterator[None]:
        """Arm the deadline and budget of the command(s) inside, and turn imapclient,
        socket and TLS failures and unreadable answers into ImapError naming the server
        and action."""
        try:
            client = client or self._client
            if client is not None:
                self._arm(client, action, budget=budget)
            yield
        except ImapError:
            raise
        except _FAILURES as err:  # first: an SSL error is a ValueError too
            if isinstance(err, _BROKEN):
                self._drop()
            text = _describe(err)
            if action == "connect" and is_connection_limit(text):  # a greeting of BYE
                raise ImapLimitError(f"{self._where}: connection limit: {text}") from err
            if action == "connect" and _not_tls(err):
                m = self.mailbox
                raise ImapError(
                    f"{m.name}: the server at {m.host}:{m.port} did not answer TLS; if it"
                    ' offers STARTTLS set security = "starttls"'
                ) from err
            raise ImapError(f"{self._where}: {action}: {text}") from err
        except _GARBAGE as err:
            self._drop()
            raise ImapError(
                f"{self._where}: {action}: unreadable answer from the server"
                f" ({type(err).__name__}: {err})"
            ) from err


_IMAPLIB_PREFIX = re.compile(r"^command: [A-Z]+ => ")


def _not_tls(err: BaseException) -> bool:
    """A TLS handshake answered by something that is no TLS (a plain IMAP greeting)."""
    reason = getattr(err, "reason", None)
    return isinstance(err, ssl.SSLError) and reason in (
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "HTTP_REQUEST",
    )


def _describe(err: BaseException) -> str:
    if isinstance(err, Cutoff):
        return server_text(err)
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {err.verify_message}"
    return server_text(err) or type(err).__name__


def server_text(err: BaseException) -> str:
    """The readable text of an imaplib, imapclient or socket error (the server's words)."""
    text = str(err.args[0]) if len(err.args) == 1 else str(err)
    if text.startswith(("b'", 'b"')):  # imapclient passes the server's bytes through str()
        text = text[2:-1]
    text = _IMAPLIB_PREFIX.sub("", text)  # the action is named by the caller already
    if isinstance(err, imaplib.IMAP4.abort) and text.endswith("socket error: EOF"):
        text = text.removesuffix("socket error: EOF") + "the server closed the connection"
    elif isinstance(err, imaplib.IMAP4.abort) and not isinstance(err, Cutoff):
        text = f"connection lost: {text}"  # BYE (its text), or an answer imaplib gave up on
    return text


def is_connection_limit(text: str) -> bool:
    """Whether a server's refusal speaks of a connection limit rather than credentials."""
    return _LIMIT_WORDING.search(text) is not None


def _set_keepalive(sock: socket.socket) -> None:
    """TCP keepalive with short timers (where the platform has them; Linux does)."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (
            ("TCP_KEEPIDLE", TCP_KEEPIDLE_SECONDS),
            ("TCP_KEEPINTVL", TCP_KEEPINTVL_SECONDS),
            ("TCP_KEEPCNT", TCP_KEEPCNT),
        ):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _shutdown(client: IMAPClient) -> None:
    with suppress(*_FAILURES):
        client.shutdown()


@functools.lru_cache(maxsize=16)
def _tls_context(cafile: str | None) -> ssl.SSLContext:
    """A verifying TLS context per CA file, made once: loading the system CA bundle costs
    20-30 ms, most of an empty poll. (A changed CA file is read again after a restart.)"""
    return ssl.create_default_context(cafile=cafile)
