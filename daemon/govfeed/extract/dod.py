"""The U.S. Department of Defense / Department of War release profile.

The layout (../shared/samples/dod-release-as-text-2024-07-28.txt), top to bottom: the
type label ("Release"), "View Online" (the article link), "IMMEDIATE RELEASE", the
title, the release's own date line, the body paragraphs, then navigation rows, social
links, "Unsubscribe | Contact Us" and the GovDelivery tagline. `read_layout` reads that
order from a sequence of blocks, so the HTML walk and the text part share one reading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from html import escape
from urllib.parse import urlsplit

from govfeed.extract.boilerplate import (
    body_links,
    is_footer_start,
    is_nav_line,
    is_noise,
)
from govfeed.extract.dates import parse_contracts_title, parse_date_line
from govfeed.extract.facts import Facts
from govfeed.extract.html import Block, blocks_text, html_blocks, render_html
from govfeed.extract.links import is_tracker, is_web_url, normalize_url, unwrap_url
from govfeed.extract.plain import reflow
from govfeed.models import ParsedMessage, Release

_DOD_AGENCY = re.compile(r"\bdepartment of (?:defense|war)\b", re.IGNORECASE)
_DOD_HOSTS = frozenset(("www.defense.gov", "defense.gov", "www.war.gov", "war.gov"))
_ARTICLE_PATH = re.compile(r"^/news/([a-z-]{3,40})/[a-z-]{3,40}/article/", re.IGNORECASE)
_VIEW_ONLINE = re.compile(r"view (?:it |this )?online\.?", re.IGNORECASE)
_STATUS = re.compile(r"(?:for )?immediate release|embargoed\b.{0,80}", re.IGNORECASE)
_SPACERS = frozenset(("left", "right"))
_ANCHOR_WINDOW = 40  # the header sits within the first units; the body may be long

_LABELS = {
    **dict.fromkeys(("release", "releases", "press release", "news release"), "release"),
    **dict.fromkeys(("statement", "statements", "readout", "readouts"), "release"),
    **dict.fromkeys(("advisory", "advisories", "press advisory", "media advisory"), "advisory"),
    **dict.fromkeys(("press advisories", "media advisories"), "advisory"),
    **dict.fromkeys(("transcript", "transcripts"), "transcript"),
    **dict.fromkeys(("speech", "speeches"), "speech"),
    **dict.fromkeys(("contract", "contracts"), "contract"),
    **dict.fromkeys(("publication", "publications"), "publication"),
    **dict.fromkeys(("story", "stories", "news story", "feature", "feature story"), "story"),
}
_SECTIONS = {
    "releases": "release",
    "advisories": "advisory",
    "transcripts": "transcript",
    "speeches": "speech",
    "contracts": "contract",
    "publications": "publication",
    "news-stories": "story",
    "feature-stories": "story",
    "stories": "story",
}


@dataclass(frozen=True, slots=True)
class Layout:
    """What `read_layout` found; `body` is still raw blocks."""

    label: str | None
    view_online: str | None
    title: str
    release_date: date | None
    body: list[Block]


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    block: int
    line: int


def is_dod(msg: ParsedMessage, facts: Facts) -> bool:
    """True when the agency, account or "View Online" target says DoD / War."""
    if facts.agency and _DOD_AGENCY.search(facts.agency):
        return True
    if msg.from_ and _DOD_AGENCY.search(msg.from_.name):
        return True
    if facts.account_code == "USDOD":
        return True
    return any(
        _VIEW_ONLINE.fullmatch(link.text) and dod_article(unwrap_url(link.url))
        for link in facts.anchors
    )


def dod_article(url: str) -> bool:
    """True for an article URL on defense.gov or war.gov."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (parts.hostname or "") in _DOD_HOSTS and bool(_ARTICLE_PATH.match(parts.path))


def extract_dod(msg: ParsedMessage, facts: Facts) -> Release | None:
    """The release, or None when the mail does not follow the DoD layout.

    The HTML part is read first; the text part when the HTML has no DoD layout or no body.
    """
    layout = None
    if facts.tree is not None:
        blocks = html_blocks(facts.tree.body, stop_at_footer=True)
        layout = read_layout(blocks, join_title_lines=True)
    if (layout is None or not layout.body) and facts.text:
        from_text = read_layout(facts.text_blocks(), join_title_lines=False)
        if from_text is not None and (layout is None or from_text.body):
            layout = replace(from_text, body=reflow(from_text.body))
    if layout is None:
        return None
    url = _canonical_url(layout.view_online, facts)
    title = layout.title or msg.subject
    release_date = layout.release_date or facts.mail_date
    return Release(
        title=title,
        release_date=release_date.isoformat() if release_date else "",
        release_date_source="body" if layout.release_date else "mail",
        release_type=_release_type(layout.label, url, title),
        agency=_agency(msg, facts, url),
        account_code=facts.account_code,
        bulletin_id=facts.bulletin_id,
        url=url,
        body_text=blocks_text(layout.body),
        body_html=render_html(layout.body),
        profile="dod",
        links=body_links(layout.body),
        sender=facts.sender,
    )


def read_layout(blocks: Sequence[Block], *, join_title_lines: bool) -> Layout | None:
    """Read label, View Online, title, date and body from `blocks`; None if not DoD."""
    units = [
        _Unit(line, index, number)
        for index, block in enumerate(blocks)
        for number, line in enumerate(block.text.split("\n"))
        if line and line.lower() not in _SPACERS
    ]
    head = units[:_ANCHOR_WINDOW]
    at = next((i for i, unit in enumerate(head) if _VIEW_ONLINE.fullmatch(unit.text)), None)
    label = view_online = None
    if at is not None:
        view_online = _view_online_link(blocks[units[at].block])
        label = units[at - 1].text if at > 0 and _is_label(units[at - 1].text) else None
    else:
        at = next((i for i, unit in enumerate(head) if unit.text.lower() in _LABELS), None)
        status = next((i for i, unit in enumerate(head) if _STATUS.fullmatch(unit.text)), None)
        if at is None and status is None:
            return None
        label = units[at].text if at is not None else None
        at = max(i for i in (at, status) if i is not None)
    i = at + 1
    while i < len(units) and (_STATUS.fullmatch(units[i].text) or _is_header(units[i].text)):
        i += 1
    if i >= len(units):
        return None
    title, i = _title(units, i, join_title_lines)
    released = parse_contracts_title(title)
    if i < len(units) and (stated := parse_date_line(units[i].text)):
        released = released or stated
        i += 1
    return Layout(label, view_online, title, released, _body(blocks, units, i))


def _title(units: list[_Unit], i: int, join_lines: bool) -> tuple[str, int]:
    first = units[i]
    parts = [first.text]
    i += 1
    while (
        join_lines
        and i < len(units)
        and units[i].block == first.block
        and not parse_date_line(units[i].text)
    ):
        parts.append(units[i].text)
        i += 1
    return " ".join(parts), i


def _body(blocks: Sequence[Block], units: list[_Unit], i: int) -> list[Block]:
    if i >= len(units):
        return []
    start = units[i]
    first = blocks[start.block]
    body: list[Block] = []
    if start.line > 0:
        rest = "\n".join(first.text.split("\n")[start.line :])
        html = "<br>".join(escape(line, quote=False) for line in rest.split("\n"))
        body.append(Block(rest, first.links, html, first.kind))
    else:
        body.append(first)
    for block in blocks[start.block + 1 :]:
        if is_footer_start(block.text) or is_nav_line(block.text):
            break
        if block.text and is_noise(block.text):
            continue
        body.append(block)
    while body and not body[-1].text:  # trailing images are the footer's
        body.pop()
    return body


def _is_label(text: str) -> bool:
    if text.lower() in _LABELS:
        return True
    return len(text) <= 30 and len(text.split()) <= 3 and not any(c.isdigit() for c in text)


def _is_header(text: str) -> bool:
    return bool(_VIEW_ONLINE.fullmatch(text)) or text.lower() in _LABELS


def _view_online_link(block: Block) -> str | None:
    for link in block.links:
        if _VIEW_ONLINE.fullmatch(link.text):
            return unwrap_url(link.url)
    return unwrap_url(block.links[0].url) if len(block.links) == 1 else None


def _canonical_url(view_online: str | None, facts: Facts) -> str | None:
    """The View Online article, else the web copy, else a View Online that is neither."""
    usable = view_online if view_online and not is_tracker(view_online) else None
    if usable and is_web_url(usable) and dod_article(usable):
        return normalize_url(usable)
    web_copy = facts.web_copy  # worked out only now: it reads every link
    if web_copy and (dod_article(web_copy) or not usable):
        return web_copy
    return normalize_url(usable) if usable and is_web_url(usable) else None


def _release_type(label: str | None, url: str | None, title: str) -> str:
    if label and label.lower() in _LABELS:
        return _LABELS[label.lower()]
    if url:
        found = _ARTICLE_PATH.match(urlsplit(url).path)
        if found and found.group(1).lower() in _SECTIONS:
            return _SECTIONS[found.group(1).lower()]
    return "contract" if parse_contracts_title(title) else "other"


def _agency(msg: ParsedMessage, facts: Facts, url: str | None) -> str:
    for name in (facts.agency, msg.from_.name if msg.from_ else None):
        if name and _DOD_AGENCY.search(name):
            return name
    host = (urlsplit(url).hostname or "") if url else ""
    return "U.S. Department of War" if host.endswith("war.gov") else "U.S. Department of Defense"
