"""Read mail from files: single .eml files, mbox files, Maildir folders and folders of .eml.

Fetch only: bytes out, nothing parsed, no database. A path that cannot be read as mail
becomes a `SourceError` naming it; the caller reports it and goes on with the rest.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from govfeed.errors import SourceError
from govfeed.models import RawMessage

# The first line of a mail file: a header field ("Name: value") or an mbox "From " line.
_HEADER_LINE = re.compile(rb"^(?:From |[\x21-\x39\x3b-\x7e]+:)")
_SNIFF_BYTES = 4096


@dataclass(frozen=True)
class Source:
    """One path to import, with the number of messages it holds."""

    path: Path
    kind: str  # "eml", "mbox", "maildir", "folder"
    count: int

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
        try:
            box = mailbox.mbox(path, create=False)
            count = len(box)
            box.close()
        except (OSError, mailbox.Error) as err:
            raise SourceError(f"{path}: cannot read as mbox: {err}") from err
        return Source(path, "mbox", count)
    if not _HEADER_LINE.match(head.lstrip(b"\r\n")):
        raise SourceError(f"{path}: not a mail file (no header at the start)")
    return Source(path, "eml", 1)


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
    try:
        box = mailbox.mbox(path, create=False)
        try:
            for number, key in enumerate(box.iterkeys(), start=1):
                yield RawMessage(data=box.get_bytes(key), source=f"{path}#{number}")
        finally:
            box.close()
    except (OSError, mailbox.Error) as err:
        raise SourceError(f"{path}: cannot read as mbox: {err}") from err


def _read(path: Path, limit: int = -1) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(limit)
    except OSError as err:
        raise SourceError(f"{path}: cannot read: {err.strerror or err}") from err
