"""The last gate before any HTML is stored: nh3 (ammonia) with an allow-list.

Structural tags only; links unwrapped from GovDelivery trackers (one that cannot be
decoded loses its link: the wrapper is per-subscriber), limited to http/https/mailto/tel
and stripped of recipient parameters; images only from http(s) and never tracking pixels
or recipient-keyed; no scripts, styles, frames, forms, event handlers or `style`.
"""

from __future__ import annotations

import re

import nh3

from govfeed.extract.links import (
    has_recipient_params,
    is_contact_url,
    is_tracker,
    is_tracking_pixel,
    is_web_url,
    strip_recipient_params,
    unwrap_url,
)

# Lexbor parses 20 MB of HTML in well under a second, but walking it in Python does not:
# only the first MAX_HTML_CHARS characters are read. A bulletin is rarely over 200 KB.
MAX_HTML_CHARS = 2_000_000
_ALLOWED_TAGS_WORDS = (
    "p br a strong em b i u ul ol li h1 h2 h3 h4 h5 h6 blockquote table thead tbody tr td th img hr"
)
_ALLOWED_TAGS = frozenset(_ALLOWED_TAGS_WORDS.split())
_CLEAN_CONTENT_WORDS = (
    "script style iframe object embed form noscript template svg math title head "
    "textarea select button applet frame frameset"
)
_CLEAN_CONTENT = frozenset(_CLEAN_CONTENT_WORDS.split())
_ATTRIBUTES = {
    "a": {"href"},
    "img": {"src", "alt"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
# What the cleaner leaves of a link whose href it refused: the words stay, the <a> goes.
_BARE_ANCHOR = re.compile(r'<a rel="noopener noreferrer nofollow">(.*?)</a>', re.DOTALL)
_IMG_TAG = re.compile(r"<img\b[^>]{0,4000}>", re.IGNORECASE)
_IMG_ATTR = re.compile(
    r"""\b(src|width|height|style)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I
)


def _filter_attribute(tag: str, name: str, value: str) -> str | None:
    if tag == "a" and name == "href":
        url = unwrap_url(value)
        if is_contact_url(url):
            return url.partition("?")[0]  # a mailto: subject or body can name the reader
        # A tracker that cannot be decoded is a per-subscriber link: no link at all.
        if not is_web_url(url) or is_tracker(url):
            return None
        return strip_recipient_params(url)
    if tag == "img" and name == "src":
        keep = is_web_url(value) and not is_tracker(value) and not has_recipient_params(value)
        return value if keep else None
    return value


_CLEANER = nh3.Cleaner(
    tags=set(_ALLOWED_TAGS),
    clean_content_tags=set(_CLEAN_CONTENT),
    attributes=_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    url_schemes={"http", "https", "mailto", "tel"},
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def sanitize_html(fragment: str) -> str:
    """Allow-list sanitizing: structural tags only, http(s)/mailto links unwrapped from
    trackers, `rel="noopener noreferrer nofollow"`, no scripts, styles, event handlers,
    `data:`/`javascript:` URLs or tracking pixels."""
    fragment = fragment[:MAX_HTML_CHARS]
    if "<img" in fragment or "<IMG" in fragment:
        fragment = _IMG_TAG.sub(_drop_pixel, fragment)
    cleaned = _CLEANER.clean(fragment).strip()
    return _BARE_ANCHOR.sub(r"\1", cleaned) if "<a rel=" in cleaned else cleaned


def _drop_pixel(match: re.Match[str]) -> str:
    found: dict[str, str] = {}
    for name, *values in _IMG_ATTR.findall(match.group(0)):
        found.setdefault(name.lower(), next((v for v in values if v), ""))
    src = found.get("src", "")
    pixel = is_tracking_pixel(src, found.get("width"), found.get("height"), found.get("style"))
    return "" if pixel or has_recipient_params(src) else match.group(0)
