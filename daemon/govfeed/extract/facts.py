"""What every profile needs to know about a message, worked out once.

The HTML is parsed here (once) and kept on the `Facts`; the GovDelivery evidence, the
tagline (agency and subscriber), account code, bulletin id, web copy URL, sender and the
mail's own date are read here so the profiles only lay out title and body.
"""

from __future__ import annotations

import html as htmllib
import re
from datetime import date, timedelta
from functools import cached_property
from itertools import chain, islice

from govfeed.extract.html import Block, normalize_space, parse_html
from govfeed.extract.links import (
    account_code_from_url,
    bulletin_id_from_url,
    bulletin_web_copy,
    is_tracker,
    is_web_url,
    normalize_url,
    unwrap_url,
)
from govfeed.extract.plain import text_blocks
from govfeed.models import Link, ParsedMessage, Sender

_SCAN_CHARS = 400_000  # the tagline is looked for in the last this-many characters
_TAGLINE_START = "this email was sent to"
_TAGLINE_WINDOW = 1500
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]{0,10})\b[^>]{0,2000}>")
_BREAKING_TAGS = frozenset(("br", "p", "div", "td", "tr", "table", "li", "hr"))
_SUBSCRIBER = re.compile(r"this email was sent to\s+<?([^\s<>@]{1,200}@[^\s<>]{1,200}?)>?\s+using")
_BEHALF = re.compile(r"on behalf of\s*:?\s*")
_AGENCY_END = re.compile(r"\s*(?:·|\||\n|\[image|\s<|,?\s+\d{3,}\b)")
_VIEW_WEB = re.compile(
    r"\b(?:view|read|open)\b.{0,30}\b(?:browser|web ?page|online|web version)\b|^web version",
    re.IGNORECASE,
)
# Tracker URLs as written in the HTML or text (the first few are enough for an id).
_TRACKERS = re.compile(
    r"https?://(?:lnks\.gd/l/|links(?:-\d{1,3})?\.govdelivery\.com(?::443)?/(?:track\?|CL0/))"
    r"[^\"'\s<>\]]{1,4000}"
)
_MAX_TRACKERS = 8  # the bulletin id is in the first; any one is evidence
_ZONE = re.compile(r"\s([+-])(\d\d)(\d\d)(?:\s*\([^)]*\))?\s*$")
_CODE = re.compile(r"[A-Za-z0-9_]{2,40}")
_MAILING_ID = re.compile(r"[0-9][0-9.]{0,40}")
_BULLETIN_HEADERS = ("x-bulletin-id", "x-mailing-id")
_GOVDELIVERY_BODY = ("using govdelivery", "using granicus", "govdelivery communications cloud")


class Facts:
    """Profile-independent findings about one message.

    Cheap facts are read at once; the ones that need every link (web copy, account code
    from URLs) on first use, since most messages never ask for them.
    """

    def __init__(self, msg: ParsedMessage) -> None:
        self.msg = msg
        self.headers = _header_map(msg)
        self.tree = parse_html(msg.html) if msg.html and msg.html.strip() else None
        self.text = msg.text or ""
        self._text_blocks: list[Block] | None = None
        html = msg.html or ""
        self.has_trackers, self.bulletin_id = _bulletin_id(
            self.headers, html if self.tree is not None else self.text
        )
        self.tagline = _tagline(self.text, html)
        self.agency = _agency(self.tagline) if self.tagline else None  # as the tagline says
        self.header_evidence = _header_evidence(msg, self.headers)
        self.sender = _sender(msg, self.headers, self.tagline)

    @property
    def is_govdelivery(self) -> bool:
        return bool(self.header_evidence or self.body_evidence)

    @cached_property
    def body_evidence(self) -> tuple[str, ...]:
        """GovDelivery signs in the body: tagline, trackers, template."""
        return _body_evidence(self, self.msg.html or "")

    @cached_property
    def mail_date(self) -> date | None:
        """The mail's Date as a calendar day in the sender's own time zone."""
        return _mail_date(self.msg, self.headers)

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case)."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @cached_property
    def anchors(self) -> tuple[Link, ...]:
        """Every http(s) link of the HTML (else of the text part), href as written."""
        if self.tree is None:
            return tuple(link for block in self.text_blocks() for link in block.links)
        links = []
        for node in self.tree.css("a[href]"):
            href = (node.attributes.get("href") or "").strip()
            if is_web_url(href):
                links.append(Link(url=href, text=normalize_space(node.text())))
        return tuple(links)

    @cached_property
    def web_copy(self) -> str | None:
        """The bulletin's web copy: the "View in browser" target, else a bulletins/ link."""
        for link in self.anchors:
            if _VIEW_WEB.search(link.text):
                url = unwrap_url(link.url)
                if is_web_url(url) and not is_tracker(url):
                    return normalize_url(url)
        for link in self.anchors:
            url = unwrap_url(link.url)
            if bulletin_web_copy(url):
                return normalize_url(url)
        return None

    @cached_property
    def account_code(self) -> str | None:
        """X-Accountcode, else from GovDelivery URLs, else a *.govdelivery.com sender."""
        header = (self.header("X-Accountcode") or "").strip().upper()
        if _CODE.fullmatch(header):
            return header
        listed = re.findall(
            r"https?://[^\s<>,]+", " ".join(self.headers.get("list-unsubscribe", []))
        )
        unwrapped = (unwrap_url(link.url) for link in self.anchors)
        for url in chain(listed, [self.web_copy or ""], unwrapped):
            code = account_code_from_url(url)
            if code:
                return code
        local, _, domain = (self.msg.from_.address if self.msg.from_ else "").rpartition("@")
        if domain.endswith(".govdelivery.com") and _CODE.fullmatch(local):
            return local.upper()
        return None

    def text_blocks(self) -> list[Block]:
        """The text/plain part as blocks (worked out on first use)."""
        if self._text_blocks is None:
            self._text_blocks = text_blocks(self.text) if self.text else []
        return self._text_blocks


def gather_facts(msg: ParsedMessage) -> Facts:
    """Read the GovDelivery facts of `msg`; never raises on odd input."""
    return Facts(msg)


def _header_map(msg: ParsedMessage) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in msg.headers:
        found.setdefault(name.lower(), []).append(value)
    return found


def _header_evidence(msg: ParsedMessage, headers: dict[str, list[str]]) -> tuple[str, ...]:
    found = []
    if headers.get("x-accountcode"):
        found.append("X-Accountcode header")
    domain = msg.from_.address.rpartition("@")[2] if msg.from_ else ""
    if domain == "govdelivery.com" or domain.endswith(".govdelivery.com"):
        found.append("GovDelivery sender")
    listing = headers.get("list-unsubscribe", []) + headers.get("list-id", [])
    if any("govdelivery" in value.lower() for value in listing):
        found.append("GovDelivery List-Unsubscribe")
    if any("govdelivery.com" in value.lower() for value in headers.get("received", [])):
        found.append("relayed by GovDelivery")
    return tuple(found)


def _body_evidence(facts: Facts, html: str) -> tuple[str, ...]:
    found = []
    tagline = " ".join((facts.tagline or "").lower().split())
    if any(marker in tagline for marker in _GOVDELIVERY_BODY):
        found.append("GovDelivery tagline")
    if facts.has_trackers:
        found.append("GovDelivery tracker links")
    if facts.tree is not None and (
        "gd_ab_" in html or facts.tree.css_first("table#yahoo") is not None
    ):
        found.append("GovDelivery template")
    return tuple(found)


def _tagline(text: str, html: str) -> str | None:
    """The "This email was sent to ... on behalf of ..." footer, tags removed."""
    text, html = text[-_SCAN_CHARS:], html[-_SCAN_CHARS:]
    at = text.rfind("This email was sent to")  # the usual spelling: no lower() copy needed
    if at < 0 and text:
        at = text.lower().rfind(_TAGLINE_START)
    if at >= 0:
        return text[at : at + _TAGLINE_WINDOW].strip()
    at = html.rfind("This email was sent to")
    if at < 0 and html:
        at = html.lower().rfind(_TAGLINE_START)
    if at < 0:
        return None
    window = _TAG.sub(_tag_break, html[at : at + _TAGLINE_WINDOW * 2])
    lines = (normalize_space(line) for line in htmllib.unescape(window).split("\n"))
    return "\n".join(line for line in lines if line)[:_TAGLINE_WINDOW]


def _tag_break(match: re.Match[str]) -> str:
    return "\n" if match.group(2).lower() in _BREAKING_TAGS else ""


def _agency(tagline: str) -> str | None:
    found = _BEHALF.search(tagline)
    if not found:
        return None
    rest = tagline[found.end() : found.end() + 300]
    rest = rest.removeprefix("the ")  # "on behalf of the Health Insurance Marketplace"
    end = _AGENCY_END.search(rest)
    name = normalize_space(rest[: end.start()] if end else rest).strip(" .,;:")
    return name or None


def _bulletin_id(headers: dict[str, list[str]], body: str) -> tuple[bool, str | None]:
    """(any tracker links?, the bulletin id): a bulletin-id header if there is one, else
    the first tracker in `body` that carries an id (most often the very first)."""
    for name in _BULLETIN_HEADERS:
        value = (headers.get(name) or [""])[0].strip()
        if _MAILING_ID.fullmatch(value):
            return bool(_TRACKERS.search(body, 0, _SCAN_CHARS)), value
    seen = False
    for found in islice(_TRACKERS.finditer(body, 0, _SCAN_CHARS), _MAX_TRACKERS):
        seen = True
        url = found.group(0)
        bulletin_id = bulletin_id_from_url(htmllib.unescape(url) if "&" in url else url)
        if bulletin_id:
            return True, bulletin_id
    return seen, None


def _sender(msg: ParsedMessage, headers: dict[str, list[str]], tagline: str | None) -> Sender:
    found = _SUBSCRIBER.search(tagline.lower()) if tagline else None
    subscriber = found.group(1) if found else None
    if subscriber is None and msg.to:
        subscriber = msg.to[0].address or None
    return Sender(
        from_name=(msg.from_.name or None) if msg.from_ else None,
        from_address=(msg.from_.address or None) if msg.from_ else None,
        reply_to=msg.reply_to[0].address if msg.reply_to else None,
        list_unsubscribe=next(iter(headers.get("list-unsubscribe", ())), None),
        subscriber=subscriber,
    )


def _mail_date(msg: ParsedMessage, headers: dict[str, list[str]]) -> date | None:
    """The calendar date of the Date header in the sender's own time zone, else UTC.

    `sent_at` is the Date header in UTC; its numeric zone ("-0400") turns it back into
    the day the sender wrote. A mail sent at 22:30 -0400 on July 28 is a July 28 mail.
    """
    if msg.sent_at is None:
        return None
    zone = _ZONE.search((headers.get("date") or [""])[0][-60:])
    if zone is None:
        return msg.sent_at.date()
    sign = -1 if zone.group(1) == "-" else 1
    minutes = int(zone.group(2)) * 60 + int(zone.group(3))
    if minutes >= 24 * 60:  # "+9999": junk, keep UTC
        return msg.sent_at.date()
    return (msg.sent_at + timedelta(minutes=sign * minutes)).date()
