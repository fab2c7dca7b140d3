"""A private, real Dovecot IMAP server on 127.0.0.1 for the tests, and a cuttable TCP proxy.

`tests/conftest.py` starts one `Dovecot` per test session (fixture `dovecot`) and hands each
test that wants one a fresh, empty account (fixture `imap_account`). Everything lives in a
temporary directory that is removed at the end; no system Dovecot is touched.

API (for tests that talk IMAP)::

    dovecot.host                  "127.0.0.1"
    dovecot.imap_port             plaintext listener; offers STARTTLS
    dovecot.imaps_port            implicit-TLS listener
    dovecot.ca_file               PEM of the CA that signed the server certificate
                                  (subjectAltName DNS:localhost, IP:127.0.0.1)
    dovecot.user, .password       the default account ("govfeed"); every account has
                                  this password
    dovecot.password_file         a 0600 file holding the password (for `password_file`)
    dovecot.account(name=None) -> Account     an account no test has used yet
                                  (fixture `imap_account` gives each test one)
    dovecot.add_user(name=None) -> str        the same, just its name
    dovecot.account_client(user=None) -> IMAPClient   logged in, plain: to look from outside
    dovecot.deliver(data, folder="INBOX", user=None)   one message via `doveadm save`, as
                                  a local delivery would (IDLE sees it); CRLF mail comes
                                  back byte for byte (IMAP turns bare LF into CRLF)
    dovecot.append_many(messages, folder="INBOX", user=None)  many messages fast (IMAP APPEND)
    dovecot.create_folder(name, user=None) / delete_folder(name, user=None)
    dovecot.create_folders(names, user=None)   many at once
                                  deleting and re-creating a folder gives a new UIDVALIDITY
    dovecot.mailbox_config(security="none", user=None, **overrides) -> dict
                                  the keys of one `[[mailboxes]]` entry for this server
                                  (security none/starttls/imaps; ca_file, password_file and
                                  timeout = 10 set; "none" also sets allow_plaintext)
    dovecot.mailbox_settings(...) -> govfeed.config.MailboxSettings   the same, validated
    dovecot.stop() / dovecot.start()          stop (SIGTERM: clients get BYE) and start
                                  again on the same ports; stop(kill=True) is a crash (no BYE)
    dovecot.running, dovecot.pid, dovecot.log_text()  for assertions and their messages

    Account (.server, .user, .password): deliver, append_many, create_folder, delete_folder,
    mailbox_config, mailbox_settings and client() as above, for that account.

`CutProxy(port)` forwards `proxy.port` to `port` and drops every open connection on `cut()`
or once `cut_after(n)` more bytes went to the client: a network failure in the middle of a
FETCH or an IDLE; `silence()` makes the open connections go quiet without closing them (a
NAT box that forgot them). `proxy.close()` when done.

`Dovecot(max_userip_connections=4, capability="IMAP4rev1 IDLE")` sets Dovecot's connection
limit per user and address (1000 by default here; Dovecot's own default is 10) and what it
announces after login (`imap_capability`: leave NOTIFY or LIST-STATUS out and govfeed takes
its other paths); `dovecot.connections(user)` counts a user's connections at the server
(`doveadm who`) and `dovecot.kick(user)` drops them all.

Works as root (CI) and as an ordinary user. `close()` kills every process this server
started (its process group) and removes the directory; should the test process itself be
killed, the master gets SIGTERM from the kernel (setpriv --pdeathsig) and stops its children.
Start ~0.1 s (certificates, users file, listeners); stop by SIGTERM ~1-3 s; close ~0.01 s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from govfeed.config import MailboxSettings

HOST = "127.0.0.1"
PASSWORD = "correct horse battery staple"
POOL_SIZE = 1000  # accounts written before start: Dovecot re-reads users once a second


def find_dovecot() -> str | None:
    """The dovecot binary, also when /usr/sbin is not on PATH; None when not installed."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    return found if found and shutil.which("doveadm") else None


# The master gets SIGTERM (and stops its children) when the test process dies, even by
# SIGKILL, where no finaliser or atexit handler runs. util-linux's setpriv; Linux only.
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []
DIE_WITH_PARENT = _DIE_WITH_PARENT  # for the tests' own `govfeed run` processes too


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], *, stdin: bytes | None = None, cwd: Path | None = None) -> None:
    result = subprocess.run(args, input=stdin, capture_output=True, cwd=cwd, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {output}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed; returns (ca.pem, server.pem, server.key)."""
    ca_key, ca_pem = directory / "ca.key", directory / "ca.pem"
    key, csr, pem = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    # fmt: off
    _run([
        "openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_pem),
        "-days", "2", "-subj", "/CN=govfeed test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ])
    _run([
        "openssl", "req", "-new", *ec, "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=localhost",
    ])
    _run([
        "openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-out", str(pem), "-extfile", str(ext),
    ])
    # fmt: on
    return ca_pem, pem, key


class Dovecot:
    """A Dovecot master process with its own config, users file and Maildirs (see module doc)."""

    def __init__(
        self, *, max_userip_connections: int = 1000, capability: str | None = None
    ) -> None:
        self.max_userip_connections = max_userip_connections
        self.capability = capability  # imap_capability: what it announces after login
        dovecot = find_dovecot()
        if dovecot is None:
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd)")
        self._binary = dovecot
        self.host = HOST
        self.password = PASSWORD
        # Not pytest's tmp_path: its parents are 0700 and Dovecot's unprivileged processes
        # must reach the users file and the Maildirs.
        self.root = Path(tempfile.mkdtemp(prefix="govfeed-dovecot-"))
        self.root.chmod(0o755)
        self.config_path = self.root / "dovecot.conf"
        self.log_path = self.root / "dovecot.log"
        self.users_path = self.root / "users"
        self.password_file = self.root / "password"
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.ca_file, self._cert, self._key = make_certificates(self.root)
        self._key.chmod(0o600)
        # As root, mail belongs to nobody (Dovecot refuses uids < 500); otherwise to us.
        self._uid, self._gid = (65534, 65534) if os.getuid() == 0 else (os.getuid(), os.getgid())
        (self.root / "mail").mkdir()
        if os.getuid() == 0:
            os.chown(self.root / "mail", self._uid, self._gid)
        self._users: list[str] = []
        self._pool = ["govfeed"] + [f"user{n}" for n in range(1, POOL_SIZE + 1)]
        self._write_users(self._pool)
        self._lock = threading.Lock()
        self.user = self.add_user("govfeed")
        self._write_config()
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start the master in the foreground (its own process group); wait for both ports."""
        if self._process is not None:
            return
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*_DIE_WITH_PARENT, self._binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        for port in (self.imap_port, self.imaps_port):
            while True:
                if self._process.poll() is not None:
                    self._process = None
                    raise RuntimeError(f"dovecot exited at start:\n{self.log_text()}")
                try:
                    socket.create_connection((self.host, port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"dovecot did not listen:\n{self.log_text()}") from None
                    time.sleep(0.02)

    def stop(self, timeout: float = 10.0, *, kill: bool = False) -> None:
        """SIGTERM the master (or with `kill`, SIGKILL every process of the server at once),
        then SIGKILL whatever is left in its process group."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if kill:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Children (imap, imap-login, auth...) share the group whose id is the master's pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        """Kill the server (no need to be graceful: nothing of it is kept) and remove it."""
        self.stop(kill=True)
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- accounts and mail -------------------------------------------------------------

    def add_user(self, name: str | None = None) -> str:
        """An account (password `self.password`) no test has used yet; returns its name.

        Dovecot re-reads the users file at most once a second, so unnamed accounts come from
        a pool written before the server starts; a new `name` costs up to a second's wait.
        """
        with self._lock:
            if name is None:
                name = next(user for user in self._pool if user not in self._users)
            elif name in self._users:
                raise ValueError(f"user {name} exists")
            self._users.append(name)
            if name in self._pool:
                return name
            self._write_users([name])
        deadline = time.monotonic() + 3
        while self.running and time.monotonic() < deadline:
            with contextlib.suppress(Exception), self.account_client(name):
                break
            time.sleep(0.1)
        return name

    def _write_users(self, names: Iterable[str]) -> None:
        with self.users_path.open("a") as users:
            for name in names:
                home = self.root / "mail" / name
                users.write(f"{name}:{{PLAIN}}{PASSWORD}:{self._uid}:{self._gid}::{home}\n")
        self.users_path.chmod(0o644)

    def account_client(self, user: str | None = None) -> IMAPClient:
        """A logged-in plain imapclient connection, to look at a mailbox from outside."""
        client = IMAPClient(self.host, self.imap_port, ssl=False, timeout=10)
        try:
            client.login(user or self.user, self.password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def account(self, name: str | None = None) -> Account:
        """A new, empty account, with the mail helpers bound to it."""
        return Account(self, self.add_user(name))

    def deliver(self, data: bytes, folder: str = "INBOX", user: str | None = None) -> None:
        """Save one message with `doveadm save`, as a local delivery would."""
        self._doveadm("save", "-u", user or self.user, "-m", folder, stdin=data)

    def append_many(
        self, messages: Iterable[bytes], folder: str = "INBOX", user: str | None = None
    ) -> None:
        """Append many messages over IMAP (much faster than one `doveadm` per message)."""
        with IMAPClient(self.host, self.imap_port, ssl=False, timeout=30) as client:
            client.login(user or self.user, self.password)
            for data in messages:
                client.append(folder, data)

    def connections(self, user: str | None = None) -> int:
        """How many IMAP connections `user` holds now, as the server counts them."""
        result = subprocess.run(
            ["doveadm", "-c", str(self.config_path), "who", "-1", user or self.user],
            capture_output=True,
            check=False,
            cwd=self.root,
            text=True,
        )
        if result.returncode not in (0, 68):  # 68: nobody is logged in
            raise RuntimeError(f"doveadm who failed ({result.returncode}): {result.stderr}")
        rows = [line.split() for line in result.stdout.splitlines()[1:]]
        return sum(1 for row in rows if len(row) >= 2 and row[1] == "imap")

    def create_folder(self, name: str, user: str | None = None) -> None:
        self._doveadm("mailbox", "create", "-u", user or self.user, name)

    def kick(self, user: str | None = None) -> None:
        """Drop every connection of `user` (`doveadm kick`), as a server restart would."""
        self._doveadm("kick", user or self.user)

    def create_folders(self, names: Iterable[str], user: str | None = None) -> None:
        """Many folders with one `doveadm` (one takes about 0.1 s)."""
        self._doveadm("mailbox", "create", "-u", user or self.user, *names)

    def delete_folder(self, name: str, user: str | None = None) -> None:
        """Delete a folder and its messages."""
        self._doveadm("mailbox", "delete", "-u", user or self.user, name)

    def _doveadm(self, *args: str, stdin: bytes | None = None) -> None:
        _run(["doveadm", "-c", str(self.config_path), *args], stdin=stdin, cwd=self.root)

    # -- govfeed configuration for this server -----------------------------------------

    def mailbox_config(
        self, security: str = "none", user: str | None = None, **overrides: Any
    ) -> dict[str, Any]:
        """The keys of a `[[mailboxes]]` entry that reach this server with `security`."""
        config: dict[str, Any] = {
            "name": "test",
            "host": self.host,
            "port": self.imaps_port if security == "imaps" else self.imap_port,
            "security": security,
            "username": user or self.user,
            "password_file": str(self.password_file),
            "timeout": 10,
        }
        if security == "none":
            config["allow_plaintext"] = True
        else:
            config["ca_file"] = str(self.ca_file)
        config.update(overrides)
        return config

    def mailbox_settings(
        self, security: str = "none", user: str | None = None, **overrides: Any
    ) -> MailboxSettings:
        return MailboxSettings.model_validate(self.mailbox_config(security, user, **overrides))

    def _write_config(self) -> None:
        root = self.root
        anvil_chroot = "  chroot =" if os.getuid() != 0 else ""
        unprivileged = ""
        if os.getuid() != 0:
            # Without root Dovecot cannot switch users or chroot (NOTES.md).
            unprivileged = (
                "default_login_user = nobody\n"
                "default_internal_user = nobody\n"
                "default_internal_group = nogroup\n"
                f"first_valid_uid = {min(self._uid, 500)}\n"
            )
        self.config_path.write_text(
            f"""# govfeed test server; generated by tests/dovecot.py
protocols = imap
listen = {self.host}
base_dir = {root}/run
state_dir = {root}/state
log_path = {self.log_path}
info_log_path = {self.log_path}
ssl = yes
ssl_cert = <{self._cert}
ssl_key = <{self._key}
auth_mechanisms = plain login xoauth2
disable_plaintext_auth = no
mail_location = maildir:{root}/mail/%u
mail_fsync = never
# Wrong-password tests must not slow every later login from 127.0.0.1 (auth penalty).
auth_failure_delay = 0
mail_max_userip_connections = {self.max_userip_connections}
{f"imap_capability = {self.capability}" if self.capability else ""}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{anvil_chroot}
}}
{unprivileged}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users_path}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users_path}
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
{"  chroot =" if os.getuid() != 0 else ""}
}}
"""
        )


@dataclass(frozen=True)
class Account:
    """One account on a `Dovecot`: the server's helpers with `user` filled in."""

    server: Dovecot
    user: str

    @property
    def password(self) -> str:
        return self.server.password

    def deliver(self, data: bytes, folder: str = "INBOX") -> None:
        self.server.deliver(data, folder, self.user)

    def append_many(self, messages: Iterable[bytes], folder: str = "INBOX") -> None:
        self.server.append_many(messages, folder, self.user)

    def create_folder(self, name: str) -> None:
        self.server.create_folder(name, self.user)

    def create_folders(self, names: Iterable[str]) -> None:
        self.server.create_folders(names, self.user)

    def connections(self) -> int:
        return self.server.connections(self.user)

    def delete_folder(self, name: str) -> None:
        self.server.delete_folder(name, self.user)

    def mailbox_config(self, security: str = "none", **overrides: Any) -> dict[str, Any]:
        return self.server.mailbox_config(security, self.user, **overrides)

    def mailbox_settings(self, security: str = "none", **overrides: Any) -> MailboxSettings:
        return self.server.mailbox_settings(security, self.user, **overrides)

    def client(self) -> IMAPClient:
        """A plain imapclient connection, logged in: to look at the mailbox from outside."""
        return self.server.account_client(self.user)


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is still in process group `pgid`."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid pgrp ...; comm may hold spaces, so split after ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
    return False


class CutProxy:
    """A loopback TCP proxy to `target_port` whose connections a test can cut at any moment.

    `proxy.port` is where clients connect; `proxy.cut()` closes every open connection at once
    (both sides, with RST), new connections are still accepted; `proxy.cut_after(n)` does the
    same once `n` more bytes have gone to clients (in the middle of a FETCH, say);
    `proxy.freeze_after(n)` instead stops passing anything on, both ways, with the
    connections left open: a server that stops answering (`proxy.thaw()` undoes it);
    `proxy.close()` stops it.
    """

    def __init__(self, target_port: int, host: str = HOST) -> None:
        self._target = (host, target_port)
        self._listener = socket.create_server((host, 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.bytes_to_client = 0
        self._cut_at: int | None = None
        self._freeze_at: int | None = None
        self._frozen = threading.Event()
        self._silent: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self._target, timeout=10)
            except OSError:
                return
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, to_client: bool) -> None:
        try:
            while data := source.recv(65536):
                while (self._frozen.is_set() or source in self._silent) and not self._closed:
                    time.sleep(0.02)  # held back: the peer hears nothing
                sink.sendall(data)
                if to_client:
                    self.bytes_to_client += len(data)
                    if self._cut_at is not None and self.bytes_to_client >= self._cut_at:
                        self._cut_at = None
                        self.cut()
                    if self._freeze_at is not None and self.bytes_to_client >= self._freeze_at:
                        self._freeze_at = None
                        self._frozen.set()
        except OSError:
            pass
        finally:
            _abort(sink)

    def cut_after(self, more_bytes: int) -> None:
        self._cut_at = self.bytes_to_client + more_bytes

    def freeze_after(self, more_bytes: int) -> None:
        self._freeze_at = self.bytes_to_client + more_bytes

    def thaw(self) -> None:
        self._frozen.clear()

    def silence(self) -> None:
        """The connections open now stop passing anything on, both ways, and stay open (a
        NAT box that forgot the flow); connections made later pass as usual."""
        with self._lock:
            self._silent.update(self._sockets)

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _abort(sock)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()


def _abort(sock: socket.socket) -> None:
    """Close with RST rather than FIN, as a dropped NAT entry or a dead peer looks."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)  # wakes the thread blocked in recv() on it
    with contextlib.suppress(OSError):
        sock.close()
