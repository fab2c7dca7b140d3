"""A scriptable, misbehaving IMAP server for the tests (asyncio, in a thread of its own).

Dovecot cannot be made to lie, stall or send garbage, and no public server does so on
demand, so this is the one fake IMAP server of the test suite (the README says so). It
speaks just enough IMAP4rev1 for govfeed (CAPABILITY, LOGIN, LIST, SELECT/EXAMINE, UID
SEARCH with UID ranges, UID FETCH of RFC822.SIZE / BODY.PEEK[] / BODY.PEEK[HEADER]<0.N> /
INTERNALDATE, IDLE, NOOP, LOGOUT) and lets a test break any of it::

    server = HostileImap()                      # listening on 127.0.0.1:server.port
    server.folder("INBOX").add(b"From: ...")    # messages get UIDs 1, 2, ...
    server.folder("INBOX").uidnext = 3          # or any number (a lie)
    server.examine_lines.append(b"* OK [UIDVALIDITY abc] x")   # extra EXAMINE lines
    server.trickle = 0.5                        # answers after LOGIN: a byte per 0.5 s
    server.hang = {"EXAMINE"}                   # these commands are never answered
    server.reply["UID FETCH"] = fn              # fn(server, tag, args) -> bytes: the answer
    server.drop = {"UID FETCH"}                 # close the connection after answering these
    server.commands                             # every command line received, in order
    server.connections                          # how many connections were accepted
    server.close()

`mailbox_settings(**overrides)` gives govfeed's settings for it (plaintext, short timeout).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from govfeed.config import MailboxSettings

Reply = Callable[["HostileImap", str, str], bytes | None]


@dataclass
class Folder:
    uidvalidity: Any = 1  # anything: it is written as it is
    messages: dict[int, bytes] = field(default_factory=dict)
    uidnext: Any = None  # None: one above the highest UID
    sizes: dict[int, Any] = field(default_factory=dict)  # RFC822.SIZE lies, by UID

    def add(self, data: bytes, uid: int | None = None) -> int:
        uid = uid if uid is not None else max(self.messages, default=0) + 1
        self.messages[uid] = data
        return uid

    def next_uid(self) -> Any:
        return self.uidnext if self.uidnext is not None else max(self.messages, default=0) + 1


class HostileImap:
    """See the module docstring."""

    def __init__(self) -> None:
        self.capabilities = "IMAP4rev1 IDLE"
        self.folders: dict[str, Folder] = {}
        self.examine_lines: list[bytes] = []
        self.trickle: float | None = None
        self.hang: set[str] = set()
        self.reply: dict[str, Reply] = {}
        self.drop: set[str] = set()
        self.commands: list[str] = []
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hostile-imap", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def folder(self, name: str) -> Folder:
        return self.folders.setdefault(name, Folder())

    def mailbox_settings(self, **overrides: Any) -> MailboxSettings:
        values: dict[str, Any] = {
            "name": "hostile",
            "host": "127.0.0.1",
            "port": self.port,
            "security": "none",
            "allow_plaintext": True,
            "username": "user",
            "password_env": "GOVFEED_TEST_PASSWORD",
            "timeout": 2,
            "idle": False,
        }
        return MailboxSettings.model_validate({**values, **overrides})

    def saw(self, command: str) -> bool:
        return any(command in line for line in list(self.commands))

    def close(self) -> None:
        """Close every connection and stop the server."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the server ----------------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", 0, limit=1 << 20)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        state: dict[str, Any] = {"logged_in": False, "folder": None}
        try:
            greeting = b"* OK [CAPABILITY " + self.capabilities.encode() + b"] hi\r\n"
            await self._send(writer, greeting, state)
            while line := await reader.readline():
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                self.commands.append(text)
                tag, _, rest = text.partition(" ")
                name, _, args = rest.partition(" ")
                name = name.upper()
                if name == "UID":
                    sub, _, args = args.partition(" ")
                    name = f"UID {sub.upper()}"
                if name in self.hang:
                    await asyncio.sleep(3600)
                if name in self.reply:
                    answer = self.reply[name](self, tag, args)
                    if answer is not None:
                        await self._send(writer, answer, state)
                        if name in self.drop:
                            break
                        continue
                answer = await self._answer(tag, name, args, state, reader)
                await self._send(writer, answer, state)
                if name == "LOGOUT":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went, or the server is closing
        finally:
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, data: bytes, state: dict[str, Any]) -> None:
        if self.trickle is None or not state["logged_in"]:
            writer.write(data)
            await writer.drain()
            return
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(self.trickle)

    async def _answer(
        self, tag: str, name: str, args: str, state: dict[str, Any], reader: asyncio.StreamReader
    ) -> bytes:
        ok = f"{tag} OK {name} done\r\n".encode()
        if name == "CAPABILITY":
            return b"* CAPABILITY " + self.capabilities.encode() + b"\r\n" + ok
        if name in ("LOGIN", "AUTHENTICATE"):
            state["logged_in"] = True
            return ok
        if name in ("NOOP", "CHECK"):
            return ok
        if name == "LOGOUT":
            return b"* BYE bye\r\n" + ok
        if name == "LIST":
            lines = b"".join(b'* LIST () "/" "' + n.encode() + b'"\r\n' for n in self.folders)
            return lines + ok
        if name in ("SELECT", "EXAMINE"):
            folder_name = args.strip().strip('"')
            state["folder"] = self.folder(folder_name)
            f = state["folder"]
            lines = [
                f"* {len(f.messages)} EXISTS",
                "* 0 RECENT",
                f"* OK [UIDVALIDITY {f.uidvalidity}] ok",
                f"* OK [UIDNEXT {f.next_uid()}] ok",
                "* FLAGS (\\Seen)",
            ]
            return (
                "\r\n".join(lines).encode()
                + b"\r\n"
                + b"".join(line + b"\r\n" for line in self.examine_lines)
                + ok
            )
        if name == "UID SEARCH" and args.upper().startswith("RETURN (MIN)"):
            found = re.findall(rb"\d+", self._search(state["folder"], args.split(" ", 2)[2]))
            min_part = b" MIN " + found[0] if found else b""
            return b'* ESEARCH (TAG "' + tag.encode() + b'") UID' + min_part + b"\r\n" + ok
        if name == "UID SEARCH":
            return self._search(state["folder"], args) + ok
        if name == "UID FETCH":
            return self._fetch(state["folder"], args) + ok
        if name == "IDLE":
            return b"+ idling\r\n" + await self._idle(tag, reader)
        return f"{tag} BAD unknown command\r\n".encode()

    async def _idle(self, tag: str, reader: asyncio.StreamReader) -> bytes:
        await reader.readline()  # DONE
        return f"{tag} OK IDLE done\r\n".encode()

    def _search(self, folder: Folder, args: str) -> bytes:
        uids = sorted(folder.messages)
        match = re.search(r"(?:UID )?(\d+):(\d+|\*)", args)
        if match:
            low = int(match[1])
            high = max(uids, default=0) if match[2] == "*" else int(match[2])
            low, high = min(low, high), max(low, high)
            chosen = [u for u in uids if low <= u <= high]
            if match[2] == "*" and not chosen and uids:
                chosen = [uids[-1]]
            uids = chosen
        return b"* SEARCH" + b"".join(b" %d" % u for u in uids) + b"\r\n"

    def _fetch(self, folder: Folder, args: str) -> bytes:
        wanted, _, items = args.partition(" ")
        out = []
        for uid in sorted(_uid_set(wanted, folder.messages)):
            out.append(fetch_response(folder, uid, items))
        return b"".join(out)


def fetch_response(folder: Folder, uid: int, items: str) -> bytes:
    """The `* N FETCH (...)` response for one message, as Dovecot would send it."""
    data = folder.messages[uid]
    seq = sorted(folder.messages).index(uid) + 1
    parts = [b"UID %d" % uid]
    upper = items.upper()
    if "RFC822.SIZE" in upper:
        parts.append(b"RFC822.SIZE " + str(folder.sizes.get(uid, len(data))).encode())
    if "INTERNALDATE" in upper:
        parts.append(b'INTERNALDATE "01-Aug-2024 12:00:00 +0000"')
    header = re.search(r"BODY\.PEEK\[HEADER\]<0\.(\d+)>", upper)
    if header:
        head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        head = head[: int(header[1])]
        parts.append(b"BODY[HEADER]<0> {%d}\r\n" % len(head) + head)
    elif "BODY.PEEK[]" in upper:
        parts.append(b"BODY[] {%d}\r\n" % len(data) + data)
    return b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n"


def _uid_set(text: str, messages: dict[int, bytes]) -> set[int]:
    found: set[int] = set()
    top = max(messages, default=0)
    for piece in text.split(","):
        low, _, high = piece.partition(":")
        a = top if low == "*" else int(low)
        b = a if not high else (top if high == "*" else int(high))
        found |= {u for u in messages if min(a, b) <= u <= max(a, b)}
    return found
