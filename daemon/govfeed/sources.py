"""Read mail from files: single .eml files, mbox files, Maildir folders and folders of .eml.

Fetch only: bytes out, nothing parsed, no database. A path that cannot be read as mail
becomes a `SourceError` naming it; the caller reports it and goes on with the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from govfeed.errors import SourceError
from govfeed.models import RawMessage

# The first line of a mail file: a header field ("Name: value") or an mbox "From " line.
_HEADER_LINE = re.compile(rb"^(?:From |[\x21-\x39\x3b-\x7e]+:)")
_SNIFF_BYTES = 4096
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Source:
    """One path to import; `count` says how many messages it holds."""

    path: Path
    kind: str  # "eml", "mbox", "maildir", "folder"
    files: int | None = None  # messages of a Maildir or folder (listed to classify it)

    @cached_property
    def count(self) -> int:
        """Messages in the source; an mbox is read through to count them (0.4 s for
        240 MB), so only a progress bar asks."""
        return self.count_up_to(None)

    def count_up_to(self, limit: int | None) -> int:
        """The count, or `limit` when there are at least that many (an mbox is read only
        as far as that)."""
        if self.kind == "mbox":
            return _count_mbox(self.path, limit)
        found = 1 if self.files is None else self.files
        return found if limit is None else min(found, limit)

    def fetch(self) -> Iterator[RawMessage]:
        """Yield every message; a file that vanished or became unreadable raises SourceError."""
        if self.kind == "eml":
            yield RawMessage(data=_read(self.path), source=str(self.path))
        elif self.kind == "mbox":
            yield from _fetch_mbox(self.path)
        else:
            for file in _message_files(self.path, self.kind):
                yield RawMessage(data=_read(file), source=str(file))


def open_sources(paths: Sequence[Path]) -> tuple[list[Source], list[SourceError]]:
    """Classify each path; the ones that are no mail come back as errors, not exceptions."""
    sources: list[Source] = []
    problems: list[SourceError] = []
    for path in paths:
        try:
            sources.append(_classify(path))
        except SourceError as err:
            problems.append(err)
    return sources, problems


def _classify(path: Path) -> Source:
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            return Source(path, "maildir", len(_message_files(path, "maildir")))
        files = _message_files(path, "folder")
        if not files:
            raise SourceError(f"{path}: neither a Maildir nor a folder of .eml files")
        return Source(path, "folder", len(files))
    head = _read(path, _SNIFF_BYTES)
    if head.startswith(b"From "):
        return Source(path, "mbox")
    if not _HEADER_LINE.match(head.lstrip(b"\r\n")):
        raise SourceError(f"{path}: not a mail file (no header at the start)")
    return Source(path, "eml")


def _message_files(path: Path, kind: str) -> list[Path]:
    try:
        if kind == "maildir":
            found = [
                f for sub in ("new", "cur") if (path / sub).is_dir() for f in (path / sub).iterdir()
            ]
            return sorted(f for f in found if f.is_file() and not f.name.startswith("."))
        return sorted(f for f in path.rglob("*.eml") if f.is_file())
    except OSError as err:
        raise SourceError(f"{path}: cannot list: {err.strerror or err}") from err


def _fetch_mbox(path: Path) -> Iterator[RawMessage]:
    """Split an mbox at its "From " lines, giving the bytes the stdlib's mailbox.mbox gives.

    The stdlib builds its table of contents with a tell() per line, which costs more than
    parsing the mail; searching 1 MB blocks for a newline + "From " gives the same bytes
    (the From_ line dropped, the blank separator line before the next one removed,
    ">From " left as stored) at C speed.
    """
    try:
        with path.open("rb") as handle:
            for number, chunk in enumerate(_split_mbox(handle), start=1):
                newline = chunk.find(b"\n")
                body = chunk[newline + 1 :] if newline >= 0 else b""
                if body.endswith(b"\n\n") or body == b"\n":
                    body = body[:-1]
                yield RawMessage(data=body, source=f"{path}#{number}")
    except OSError as err:
        raise SourceError(f"{path}: cannot read as mbox: {err.strerror or err}") from err


def _split_mbox(handle: BinaryIO) -> Iterator[bytes]:
    """Each message of the mbox, its From_ line included."""
    buffer = handle.read(_BLOCK)
    start = 0 if buffer.startswith(b"From ") else buffer.find(b"\nFrom ") + 1
    if start == 0 and not buffer.startswith(b"From "):
        return
    searched = start
    while start < len(buffer):
        cut = buffer.find(b"\nFrom ", searched)
        if cut == -1:
            block = handle.read(_BLOCK)
            if not block:
                yield buffer[start:]
                return
            buffer = buffer[start:] + block  # keep only the unfinished message
            searched = max(0, len(buffer) - len(block) - 6)
            start = 0
            continue
        yield buffer[start : cut + 1]
        start = searched = cut + 1


def _count_mbox(path: Path, limit: int | None = None) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in islice(_split_mbox(handle), limit))
    except OSError as err:
        raise SourceError(f"{path}: cannot read as mbox: {err.strerror or err}") from err


def _read(path: Path, limit: int = -1) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(limit)
    except OSError as err:
        raise SourceError(f"{path}: cannot read: {err.strerror or err}") from err
