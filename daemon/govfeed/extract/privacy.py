"""The subscriber's privacy: nothing that identifies the subscribing mailbox reaches a
public column (title, body_text, body_html, links, url).

GovDelivery personalises each copy of a bulletin: a greeting with the reader's name
("Hi Luigi," or a lone "Luigi" merge field), the reader's address in the sent-to line,
and per-recipient tokens in every link (lnks.gd `/s/<subscriber>/br/<recipient>`,
`track?enid=` with the address in base64, `?email=`, one-click unsubscribe
`verification=`), also around mailto: and tel: links and in open-tracking images.
`scrub_release` removes them all from a finished Release, whatever profile made it:
- greetings at the start of the body (and of the title);
- the subscriber's addresses anywhere in the text;
- links: unwrapped offline; a tracker that cannot be decoded is dropped (its text stays);
  recipient parameters stripped; a mailto: keeps only its address (no subject/body);
  a link that still names the subscriber is dropped;
- images: 0/1-pixel, tracker and recipient-keyed images are dropped.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass, replace
from urllib.parse import unquote

from govfeed.extract.links import (
    has_recipient_params,
    is_contact_url,
    is_tracker,
    is_tracking_pixel,
    is_web_url,
    strip_recipient_params,
    unwrap_url,
)
from govfeed.models import Link, ParsedMessage, Release

_GREETING = re.compile(
    r"(?:hi|hello|hey|dear|greetings|good (?:morning|afternoon|evening))\b[^.!?\n]{0,60}",
    re.IGNORECASE,
)
# "Hi Luigi, ..." / "Dear Luigi Rossi: ..." opening a longer paragraph.
_GREETING_PREFIX = re.compile(
    r"(?i:hi|hello|hey|dear)\s+[A-Z][\w'’-]{0,30}(?:\s+[A-Z][\w'’-]{0,30})?\s*[,:!]\s*"
)
_LONE_NAME = re.compile(r"[A-Z][a-z'’-]{1,20},?")  # a first-name merge field on its own
_ADDRESSED = re.compile(r"\byou(?:r|rs)?\b", re.IGNORECASE)
# One-word headings that open a paragraph written to "you" and are no name.
_HEADINGS_WORDS = (
    "reminder update updates attention notice alert important announcement welcome summary "
    "overview background highlights news today note correction advisory statement release "
    "urgent deadline action reminders alerts notices"
)
_HEADINGS = frozenset(_HEADINGS_WORDS.split())
_NAME_SPLIT = re.compile(r"[\s._+\-]+")
_ANCHOR = re.compile(r'<a\b[^>]*?\bhref="([^"]*)"[^>]*>(.*?)</a>', re.DOTALL | re.IGNORECASE)
_IMAGE = re.compile(r'<img\b[^>]*?\bsrc="([^"]*)"[^>]*>', re.IGNORECASE)
_FIRST_ELEMENT = re.compile(r"\s*<(p|h[1-6])>(.*?)</\1>", re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
_DIGITS = re.compile(r"[^0-9+]")
_MAX_GREETINGS = 2  # "Dear Luigi Rossi:" then "Hi Luigi," at most


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Who this copy of the bulletin was sent to."""

    addresses: tuple[str, ...]  # lower-case
    names: tuple[str, ...]  # lower-case name words from To display names and local parts


def subscriber_of(msg: ParsedMessage, tagline_address: str | None) -> Subscriber:
    """The subscriber as the tagline and the To header name them."""
    addresses = {a.address.lower() for a in msg.to if a.address}
    if tagline_address:
        addresses.add(tagline_address.lower())
    names: set[str] = set()
    for address in msg.to:
        names.update(w.lower() for w in address.name.split() if len(w) >= 2)
    for known in addresses:
        names.update(w for w in _NAME_SPLIT.split(known.partition("@")[0]) if len(w) >= 3)
    return Subscriber(tuple(sorted(addresses)), tuple(sorted(names)))


def scrub_release(release: Release, subscriber: Subscriber) -> Release:
    """`release` with greetings, the subscriber's addresses and per-recipient tokens gone."""
    body_text, greetings, prefix = _scrub_text_body(release.body_text, subscriber)
    return replace(
        release,
        title=_redact(_strip_name_prefix(release.title, subscriber), subscriber),
        body_text=body_text,
        body_html=_scrub_html(release.body_html, subscriber, greetings, prefix),
        links=tuple(
            Link(url, _redact(link.text, subscriber))
            for link in release.links
            if (url := clean_url(link.url, subscriber))
        ),
        url=clean_url(release.url, subscriber) if release.url else None,
    )


def clean_url(url: str, subscriber: Subscriber) -> str | None:
    """`url` unwrapped and without recipient tokens; None when it cannot be made anonymous."""
    target = unwrap_url(url.strip())
    if is_contact_url(target):
        scheme, _, rest = target.partition(":")
        value = unquote(rest.split("?", 1)[0]).strip()
        if scheme.lower() == "tel":
            digits = _DIGITS.sub("", value)
            return f"tel:{digits}" if digits else None
        return None if not value or _names(value, subscriber) else f"mailto:{value}"
    if not is_web_url(target) or is_tracker(target):
        return None  # an undecodable tracker: its path is the recipient's own id
    cleaned = strip_recipient_params(target)
    return None if _names(cleaned, subscriber) else cleaned


def keep_image(src: str, subscriber: Subscriber) -> bool:
    """False for open-tracking, tracker and recipient-keyed images."""
    if is_tracking_pixel(src) or has_recipient_params(src):
        return False
    return not _names(src, subscriber)


def is_greeting(text: str, following: str, subscriber: Subscriber) -> bool:
    """True for a paragraph that only greets the reader ("Hi Luigi,", "Luigi")."""
    line = " ".join(text.split())
    if not line or len(line) > 80:
        return False
    if _GREETING.fullmatch(line.rstrip(",:!")):
        return True
    words = [w.lower() for w in _NAME_SPLIT.split(line.rstrip(",:!")) if w]
    if words and all(word in subscriber.names for word in words):
        return True
    # A lone capitalised word before a paragraph that speaks to "you": a first-name field.
    if not _LONE_NAME.fullmatch(line) or line.rstrip(",").lower() in _HEADINGS:
        return False
    return bool(_ADDRESSED.search(following[:300]))


def _scrub_text_body(body: str, subscriber: Subscriber) -> tuple[str, list[str], str]:
    """(body without greetings and addresses, greeting paragraphs removed, greeting
    prefix cut from the first paragraph that is left)."""
    paragraphs = body.split("\n\n") if body else []
    greetings: list[str] = []
    while paragraphs and len(greetings) < _MAX_GREETINGS:
        following = paragraphs[1] if len(paragraphs) > 1 else ""
        if not is_greeting(paragraphs[0], following, subscriber):
            break
        greetings.append(paragraphs.pop(0))
    prefix = ""
    if paragraphs:
        paragraphs[0], prefix = _strip_greeting_prefix(paragraphs[0])
    return _redact("\n\n".join(paragraphs), subscriber), greetings, prefix


def _scrub_html(html: str, subscriber: Subscriber, greetings: list[str], prefix: str) -> str:
    for greeting in greetings:  # the same paragraphs, first in the HTML too
        first = _FIRST_ELEMENT.match(html)
        if not first or _plain(first.group(2)) != " ".join(greeting.split()):
            break
        html = html[first.end() :].lstrip()
    first = _FIRST_ELEMENT.match(html)
    escaped = htmllib.escape(prefix, quote=False)
    if prefix and first and first.group(2).startswith(escaped):
        start = first.start(2) + len(escaped)
        html = html[: first.start(2)] + html[start : start + 1].upper() + html[start + 1 :]
    html = _ANCHOR.sub(lambda m: _anchor(m, subscriber), html)
    html = _IMAGE.sub(lambda m: m.group(0) if keep_image(_attr(m), subscriber) else "", html)
    for address in subscriber.addresses:
        html = re.sub(re.escape(htmllib.escape(address)), "", html, flags=re.IGNORECASE)
    return html


def _anchor(match: re.Match[str], subscriber: Subscriber) -> str:
    url = clean_url(_attr(match), subscriber)
    if url is None:
        return match.group(2)
    old = match.group(1)
    return match.group(0).replace(f'href="{old}"', f'href="{htmllib.escape(url)}"', 1)


def _attr(match: re.Match[str]) -> str:
    return htmllib.unescape(match.group(1))


def _strip_name_prefix(title: str, subscriber: Subscriber) -> str:
    """A Subject that opens with a greeting or the reader's name ("Luigi, your plan
    ends soon") without it."""
    title, prefix = _strip_greeting_prefix(title)
    if prefix:
        return title
    name, comma, rest = title.partition(",")
    words = [w.lower() for w in name.split()]
    if comma and words and len(words) <= 3 and all(w in subscriber.names for w in words):
        rest = rest.strip()
        return rest[:1].upper() + rest[1:] if len(rest) >= 10 else title
    return title


def _strip_greeting_prefix(text: str) -> tuple[str, str]:
    """(`text` without an opening "Hi Luigi, ", the prefix cut or "")."""
    found = _GREETING_PREFIX.match(text)
    if not found or len(text) - found.end() < 20:  # "Hi there, friends" stays a title
        return text, ""
    rest = text[found.end() :]
    return rest[:1].upper() + rest[1:], found.group(0)


def _redact(text: str, subscriber: Subscriber) -> str:
    for address in subscriber.addresses:
        if address in text.lower():
            text = re.sub(re.escape(address), "", text, flags=re.IGNORECASE)
    return text


def _names(value: str, subscriber: Subscriber) -> bool:
    lowered = unquote(value).lower()
    return any(address in lowered for address in subscriber.addresses)


def _plain(fragment: str) -> str:
    return " ".join(htmllib.unescape(_TAGS.sub(" ", fragment)).split())
