"""Navigation, footer and subscription text that never belongs in a release body."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import urlsplit

from govfeed.extract.html import Block
from govfeed.extract.links import unwrap_url
from govfeed.models import Link

# A block starting like this is the footer: the body ends before it.
_FOOTER_STARTS = (
    "this email was sent to",
    "you can update your subscriptions",
    "update your subscriptions",
    "you can modify your subscriptions",
    "manage your subscriptions",
    "manage subscriptions",
    "manage preferences",
    "subscriber preferences",
    "this service is provided to you at no charge",
    "powered by govdelivery",
    "powered by granicus",
    "unsubscribe",
    "privacy policy",
    "stay connected with",
    "sign up for email updates",
)
# A block like this is dropped wherever it is (the web-copy line at the top).
_NOISE = re.compile(
    r"(?:having trouble viewing this (?:e-?mail|message)\??.{0,60}|view (?:it )?(?:as a web ?page"
    r"|in (?:your )?browser|online)\.?|view this (?:e-?mail|message) (?:in (?:your )?browser"
    r"|online|as a web ?page)\.?|left|right|\[?image:.{0,200}\]?)",
    re.IGNORECASE,
)
_NAV_PHRASES = re.compile(
    r"\b(?:press advisories|advisories|press releases|releases|transcripts|speeches|"
    r"publications|contracts|news stories|feature stories|about|news|help center|"
    r"press products|contact us|contact|unsubscribe|subscribe|home|facebook|twitter|x|"
    r"instagram|youtube|linkedin|flickr|threads|rss|privacy policy|privacy|accessibility|"
    r"foia|faqs?|help|photos|videos|war\.gov|defense\.gov)\b",
    re.IGNORECASE,
)
_SEPARATORS = re.compile(r"[\s|·•/,:\-–—]*")
_SOCIAL_HOSTS = (
    "facebook.com",
    "twitter.com",
    "x.com",
    "instagram.com",
    "youtube.com",
    "linkedin.com",
    "flickr.com",
    "threads.net",
)
_SERVICE_HOSTS = frozenset(
    ("subscriberhelp.govdelivery.com", "govdelivery.com", "www.govdelivery.com", "granicus.com")
)
_BOILERPLATE_TEXT = re.compile(
    r"unsubscribe|preferences|manage (?:your )?subscriptions?|view (?:it )?(?:as a web ?page|in "
    r"(?:your )?browser|online)|privacy policy|subscriber help",
    re.IGNORECASE,
)


def is_footer_start(text: str) -> bool:
    """True when a block begins the mail's footer (tagline, preferences, unsubscribe)."""
    return text.lower().startswith(_FOOTER_STARTS)


def is_noise(text: str) -> bool:
    """True for "View in browser"-type lines and the template's image alt leftovers."""
    return len(text) < 300 and _NOISE.fullmatch(text.strip()) is not None


def is_nav_line(text: str) -> bool:
    """True for a row of site navigation or social links ("Releases · Transcripts ...")."""
    if len(text) > 200 or not text[:1].isupper():
        return False
    count = 0
    pos = 0
    while pos < len(text):  # anchored matches only: no scanning through prose
        found = _NAV_PHRASES.match(text, pos)
        if found is None or not found.group(0)[0].isupper():
            return False
        count += 1
        pos = _SEPARATORS.match(text, found.end()).end()  # type: ignore[union-attr]
    return count >= 2


def trim_boilerplate(blocks: Sequence[Block]) -> list[Block]:
    """The blocks before the footer, without web-copy lines and navigation rows.

    A block of several lines (a text/plain paragraph) is judged line by line.
    """
    kept: list[Block] = []
    for block in blocks:
        lines = block.text.split("\n")
        good: list[str] = []
        footer = False
        for line in lines:
            footer = is_footer_start(line)
            if footer:
                break
            if not (is_noise(line) or is_nav_line(line)):
                good.append(line)
        if len(good) == len(lines):
            kept.append(block)
        elif any(good):
            text = "\n".join(good)
            html = "<br>".join(escape(line, quote=False) for line in good)
            kept.append(Block(text, block.links, html, block.kind))
        if footer:
            break
    return kept


def body_links(blocks: Iterable[Block]) -> tuple[Link, ...]:
    """The links of `blocks` unwrapped, first of each URL, without social or subscription
    links."""
    seen: set[str] = set()
    out: list[Link] = []
    for block in blocks:
        for raw in block.links:
            link = Link(url=unwrap_url(raw.url), text=raw.text)
            if link.url in seen or is_boilerplate_link(link):
                continue
            seen.add(link.url)
            out.append(link)
    return tuple(out)


def is_social_link(link: Link) -> bool:
    """A link to the agency's page on a social network."""
    try:
        host = urlsplit(link.url.lower()).hostname or ""
    except ValueError:
        return False
    return any(host == social or host.endswith("." + social) for social in _SOCIAL_HOSTS)


def is_boilerplate_link(link: Link) -> bool:
    """Social, unsubscribe, preference and GovDelivery links."""
    url = link.url.lower()
    if url.startswith("mailto:"):
        return False
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return True
    if host in _SERVICE_HOSTS or host.endswith(".granicus.com"):
        return True
    if any(host == social or host.endswith("." + social) for social in _SOCIAL_HOSTS):
        return True
    if "unsubscribe" in url or "/subscriber/" in url:
        return True
    return bool(_BOILERPLATE_TEXT.search(link.text)) and len(link.text) < 80
