"""text/plain bodies read as the same blocks the HTML walk makes.

A paragraph (lines between blank lines) is a block whose lines stay separate ("\n"), so
the DoD layout can read its header lines one by one; `reflow` joins hard-wrapped lines
for the stored body. URLs written as `<url>` or `[ url ]` (or a bare URL on its own
line) become links, kept as written (trackers are unwrapped when a link is used), and
leave the text; `[image: ...]` markers go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape

from govfeed.extract.html import Block, normalize_space
from govfeed.models import Link

MAX_TEXT_CHARS = 1_000_000  # a text part is read up to here; bulletins are far smaller

_ANGLE_URL = re.compile(r"<((?:https?://|mailto:)[^<>\s]{1,4000})>")
# "text <url>" and GovDelivery's "text [ url ]"
_INLINE_URL = re.compile(
    r"<((?:https?://|mailto:)[^<>\s]{1,4000})>|\[ ?((?:https?://|mailto:)[^\s\]]{1,4000}) ?\]"
)
_BARE_URL_LINE = re.compile(r"\[? ?((?:https?://)[^\s\]]{1,4000}) ?\]?\.?")
_IMAGE_MARK = re.compile(r"\[image:[^\]]{0,500}\]", re.IGNORECASE)
_SEPARATOR = re.compile(r"[-_=*~#.·•\s]{3,}")
_BULLET = re.compile(r"(?:[-*•·]|\d{1,3}[.)])\s")
_PUNCTUATION_ONLY = re.compile(r"[-*•·.,;:]{1,3}")


def text_blocks(text: str) -> list[Block]:
    """Paragraph blocks of a text/plain body, lines kept apart, links lifted out."""
    blocks: list[Block] = []
    lines: list[str] = []
    links: list[Link] = []
    previous = ""
    for raw_line in text[:MAX_TEXT_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = raw_line.strip()
        if _angle_only(stripped) or ("://" in stripped and _BARE_URL_LINE.fullmatch(stripped)):
            url = _line_url(stripped)
            if url:
                links.append(Link(url=url, text=previous))
            continue
        line = stripped
        if "[" in line or "<" in line:
            line, inline = _lift_urls(_IMAGE_MARK.sub(" ", line))
            links.extend(inline)
        line = normalize_space(line)
        if len(line) <= 3 and _PUNCTUATION_ONLY.fullmatch(line):  # a "." after a <url>
            continue
        if not line or _SEPARATOR.fullmatch(line):
            if stripped and not line:  # only an image marker: no break, no text
                continue
            _close(blocks, lines, links)
            lines, links = [], []
            continue
        lines.append(line)
        previous = line
    _close(blocks, lines, links)
    return blocks


def reflow(blocks: Iterable[Block]) -> list[Block]:
    """`blocks` for storing: hard-wrapped lines joined, each list item ("- ", "1. ") its
    own list block without its marker (rendered as <ul>/<ol>, as "- " in body text)."""
    out: list[Block] = []
    for block in blocks:
        items: list[tuple[str, list[str]]] = []  # (kind, lines)
        for line in block.text.split("\n"):
            bullet = _BULLET.match(line)
            if bullet:
                kind = "ol" if line[:1].isdigit() else "ul"
                items.append((kind, [line[bullet.end() :].strip()]))
            elif items:
                items[-1][1].append(line)
            else:
                items.append((block.kind, [line]))
        for number, (kind, lines) in enumerate(items):
            text = " ".join(line for line in lines if line)
            if text:
                links = block.links if number == 0 else ()
                out.append(Block(text, links, escape(text, quote=False), kind))
    return out


def _close(blocks: list[Block], lines: list[str], links: list[Link]) -> None:
    if lines:
        text = "\n".join(lines)
        blocks.append(Block(text, tuple(links), _inline_html(text)))
    elif links and blocks:  # a URL after a blank line belongs to the paragraph above
        last = blocks[-1]
        blocks[-1] = Block(last.text, last.links + tuple(links), last.html, last.kind)


def _inline_html(text: str) -> str:
    return "<br>".join(escape(line, quote=False) for line in text.split("\n"))


def _angle_only(line: str) -> bool:
    return line.startswith("<") and line.rstrip(".").endswith(">")


def _line_url(line: str) -> str | None:
    found = _ANGLE_URL.search(line) or _BARE_URL_LINE.fullmatch(line)
    if not found:
        return None
    return found.group(1)


def _lift_urls(line: str) -> tuple[str, list[Link]]:
    links: list[Link] = []
    pieces: list[str] = []
    last = 0
    for found in _INLINE_URL.finditer(line):
        before = line[last : found.start()]
        pieces.append(before)
        url = found.group(1) or found.group(2)
        label = normalize_space(before) or url
        links.append(Link(url=url, text=label))
        last = found.end()
    pieces.append(line[last:])
    return "".join(pieces), links
