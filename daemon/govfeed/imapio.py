"""The IMAP wire under `govfeed.imap`: what a hostile, broken or stalled server can cost.

imaplib reads a response with a socket timeout per read, so a server that sends a byte
every few seconds holds a command forever, and it reads a literal of any announced size
into memory. Here imaplib's file object is replaced by `BoundedReader`, which gives every
command a total deadline, a byte budget (lines, literals and unsolicited responses all
count) and a cap on any one literal, and which gives up within a second once the owner's
stop event is set (SIGTERM). The connection itself (TCP connect, TLS handshake) is made
without blocking for the same reasons. imaplib's own 1 MB line limit stays as it is.
"""

from __future__ import annotations

import errno
import imaplib
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from imapclient import IMAPClient
from imapclient.imap4 import IMAP4WithTimeout

STOP_GRACE_SECONDS = 1.0  # after a stop request, a command may take this much longer
_SLICE_SECONDS = 0.25  # the longest a single wait lasts before stop and deadline are checked
_RECV_BYTES = 256 * 1024


class Cutoff(imaplib.IMAP4.abort):
    """The connection was given up on purpose: a deadline, a budget or a stop request."""


class BoundedReader:
    """Stands in for imaplib's `IMAP4.file`: `readline` and `read`, bounded.

    `arm()` starts a command's limits; between commands the last ones stay in force.
    A non-blocking socket (imapclient's `idle_check`) is read as it is: BlockingIOError
    goes through, and a partial line stays in the buffer for the next call.
    """

    def __init__(self, sock: socket.socket, read_timeout: float, stop: threading.Event) -> None:
        self.sock = sock
        self.read_timeout = read_timeout
        self._stop = stop
        self._stop_deadline: float | None = None
        self._buffer = bytearray()
        self._closed = False
        self.arm("connect", read_timeout, 1 << 20, 1 << 20)

    def arm(self, action: str, seconds: float, max_bytes: int, max_literal: int) -> None:
        """Limits for the next command: done within `seconds`, at most `max_bytes` read,
        no literal above `max_literal` bytes."""
        self.action = action
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.bytes_left = max_bytes
        self.max_literal = max_literal

    def readline(self, limit: int = -1) -> bytes:
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0 or 0 <= limit <= len(self._buffer):
                size = end + 1 if end >= 0 else limit
                if 0 <= limit < size:
                    size = limit
                line = bytes(self._buffer[:size])
                del self._buffer[:size]
                return line
            start = len(self._buffer)
            if not self._fill():
                line = bytes(self._buffer)
                self._buffer.clear()
                return line

    def read(self, size: int) -> bytes:
        if size > self.max_literal:
            raise Cutoff(
                f"the server announced {size} bytes where at most {self.max_literal}"
                " were expected (max_message_bytes); connection dropped"
            )
        if size <= len(self._buffer) or size < _RECV_BYTES:
            while len(self._buffer) < size:
                if not self._fill(size - len(self._buffer)):
                    break
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            return data
        # A big literal goes straight into a buffer of its size: one copy at the end, not
        # three (growing buffer, slice, bytes).
        target = bytearray(size)
        view = memoryview(target)
        have = len(self._buffer)
        view[:have] = self._buffer
        self._buffer.clear()
        while have < size:
            got = self._fill_into(view[have:])
            if not got:
                break
            have += got
        view.release()
        return bytes(target[:have]) if have < size else bytes(target)

    def close(self) -> None:
        self._closed = True
        self._buffer.clear()

    def _fill(self, wanted: int = _RECV_BYTES) -> bool:
        """Receive more into the buffer; False at EOF. Raises Cutoff past the limits."""
        return self._wait_for(lambda: self._receive(wanted)) > 0

    def _fill_into(self, view: memoryview) -> int:
        """Receive into `view`; the bytes received (0 at EOF), within the same limits."""
        return self._wait_for(lambda: self._receive_into(view))

    def _wait_for(self, receive: Callable[[], int]) -> int:
        if self.sock.gettimeout() == 0.0:  # idle_check: never wait here
            return receive()
        started = time.monotonic()
        while True:
            now = time.monotonic()
            deadline = self.deadline
            if self._stop.is_set():
                if self._stop_deadline is None:
                    self._stop_deadline = now + STOP_GRACE_SECONDS
                deadline = min(deadline, self._stop_deadline)
                if now >= deadline:
                    raise Cutoff(f"{self.action}: stopped (govfeed is shutting down)")
            if now >= deadline:
                raise Cutoff(
                    f"{self.action}: timed out: no complete answer within {self.seconds:g} s"
                    " (the server is too slow or stalled); connection dropped"
                )
            if now - started >= self.read_timeout:
                raise TimeoutError("timed out")
            self.sock.settimeout(max(min(_SLICE_SECONDS, deadline - now), 0.001))
            try:
                return receive()
            except TimeoutError:
                continue
            finally:
                if not self._closed:
                    self.sock.settimeout(self.read_timeout)

    def _receive(self, wanted: int) -> int:
        data = self.sock.recv(min(max(wanted, 4096), _RECV_BYTES))
        self._count(len(data))
        self._buffer += data
        return len(data)

    def _receive_into(self, view: memoryview) -> int:
        got = self.sock.recv_into(view, min(len(view), 1 << 20))
        self._count(got)
        return got

    def _count(self, received: int) -> None:
        self.bytes_left -= received
        if self.bytes_left < 0:
            raise Cutoff(
                f"{self.action}: the server sent more than this command can need"
                " (a runaway or hostile response); connection dropped"
            )


def connect_socket(
    host: str, port: int, timeout: float, stop: threading.Event, tls: ssl.SSLContext | None
) -> socket.socket:
    """A connected (and, with `tls`, handshaken) socket within `timeout` seconds in all;
    gives up within a second when `stop` is set."""
    deadline = time.monotonic() + timeout
    last: OSError = TimeoutError("timed out")
    for family, kind, proto, _name, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS):
                raise OSError(code, f"{errno.errorcode.get(code, code)} connecting to {host}")
            _wait(sock, select.POLLOUT, deadline, stop)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise ConnectionRefusedError(code, f"cannot connect to {host}:{port}")
            if tls is not None:
                sock = _handshake(
                    tls.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False),
                    deadline,
                    stop,
                )
            sock.settimeout(timeout)
            return sock
        except OSError as err:
            sock.close()
            last = err
    raise last


def _handshake(sock: ssl.SSLSocket, deadline: float, stop: threading.Event) -> ssl.SSLSocket:
    while True:
        try:
            sock.do_handshake()
            return sock
        except ssl.SSLWantReadError:
            _wait(sock, select.POLLIN, deadline, stop)
        except ssl.SSLWantWriteError:
            _wait(sock, select.POLLOUT, deadline, stop)


def _wait(sock: socket.socket, event: int, deadline: float, stop: threading.Event) -> None:
    poller = select.poll()
    poller.register(sock, event)
    while not poller.poll(_SLICE_SECONDS * 1000):
        if stop.is_set():
            raise Cutoff("connect: stopped (govfeed is shutting down)")
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out")


class _Plain(IMAP4WithTimeout):  # type: ignore[misc]
    """imaplib over a `BoundedReader`, no TLS."""

    _tls: ssl.SSLContext | None = None

    def __init__(self, host: str, port: int, timeout: float, stop: threading.Event) -> None:
        self._stop = stop
        self.reader: BoundedReader | None = None
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return connect_socket(self.host, self.port, self._timeout or 60.0, self._stop, self._tls)

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        super().open(host, port, timeout)
        self.install_reader()

    def install_reader(self) -> None:
        """(Again after STARTTLS, which gives imaplib a new socket and file.)"""
        self.reader = BoundedReader(self.sock, self._timeout or 60.0, self._stop)
        self.file = self.reader


class _Tls(_Plain):
    """imaplib over a `BoundedReader` on a TLS socket (imaps)."""

    def __init__(
        self, host: str, port: int, timeout: float, stop: threading.Event, tls: ssl.SSLContext
    ) -> None:
        self._tls = tls
        super().__init__(host, port, timeout, stop)


class BoundedClient(IMAPClient):  # type: ignore[misc]
    """IMAPClient whose imaplib object reads through a `BoundedReader`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        timeout: float,
        stop: threading.Event,
    ) -> None:
        self._bounded = (tls, timeout, stop)
        super().__init__(host, port, ssl=tls is not None, ssl_context=tls, timeout=timeout)
        # imapclient sets imaplib's debug level to 5 to log through its own logger, and at
        # that level imaplib formats every literal it reads with %r before any logger can
        # decline it: 55 MB more for a 24 MB message, and a repr of every message fetched.
        self._imap.debug = 0

    def _create_IMAP4(self) -> Any:
        tls, timeout, stop = self._bounded
        if tls is not None:
            return _Tls(self.host, self.port, timeout, stop, tls)
        return _Plain(self.host, self.port, timeout, stop)

    @property
    def reader(self) -> BoundedReader:
        imap = self._imap
        assert isinstance(imap, _Plain) and imap.reader is not None
        if imap.file is not imap.reader:  # STARTTLS replaced it
            imap.install_reader()
            assert imap.reader is not None
        return imap.reader

    def starttls(self, ssl_context: Any = None) -> Any:
        data = super().starttls(ssl_context)
        imap = self._imap
        assert isinstance(imap, _Plain)
        imap.install_reader()
        return data
