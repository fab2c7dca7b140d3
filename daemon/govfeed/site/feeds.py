"""Atom feeds (RFC 4287) of published releases and of contract awards.

Entries carry the release's sanitized body as `<content type="html">` (escaped once by the
XML writer, as Atom wants) and ids that never change: `tag:govfeed,2024:release:ID`, the
same ids the earlier datasette-atom feed used, so feed readers do not see old entries as new.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from markupsafe import escape

from govfeed.site.text import dollars

ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_TYPE = "application/atom+xml; charset=utf-8"
EPOCH = "2024-01-01T00:00:00Z"  # a feed with no entries still needs an <updated>


@dataclass(frozen=True)
class FeedInfo:
    """What describes a feed: its id, title and addresses (absolute URLs)."""

    feed_id: str
    title: str
    self_url: str
    page_url: str


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _rfc3339(value: str | None, fallback: str) -> str:
    """Database times are ISO 8601 UTC with a Z already; a bare date becomes midnight UTC."""
    if not value:
        return fallback
    return value if "T" in value else f"{value}T00:00:00Z"


def _feed(info: FeedInfo, updated: str) -> ET.Element:
    root = ET.Element("feed", {"xmlns": ATOM_NS})
    _add(root, "id", info.feed_id)
    _add(root, "title", info.title)
    _add(root, "updated", updated)
    _add(root, "link", rel="self", href=info.self_url, type="application/atom+xml")
    _add(root, "link", rel="alternate", href=info.page_url, type="text/html")
    _add(root, "generator", "govfeed")
    return root


def _serialize(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def releases_feed(info: FeedInfo, rows: list[dict[str, Any]], page: Callable[[int], str]) -> str:
    """A feed of releases; `page(id)` is the release page's absolute URL."""
    stamps = [_rfc3339(r["updated"] or r["first_seen_at"], EPOCH) for r in rows]
    root = _feed(info, max(stamps, default=EPOCH))
    for row, updated in zip(rows, stamps, strict=True):
        entry = _add(root, "entry")
        _add(entry, "id", f"tag:govfeed,2024:release:{row['id']}")
        _add(entry, "title", row["title"])
        _add(entry, "updated", updated)
        _add(entry, "published", _rfc3339(row["first_seen_at"], updated))
        _add(entry, "link", rel="alternate", href=page(int(row["id"])), type="text/html")
        if row["url"]:
            _add(entry, "link", rel="related", href=row["url"], type="text/html")
        author = _add(entry, "author")
        _add(author, "name", row["agency"] or "unknown")
        _add(entry, "category", term=row["release_type"])
        _add(entry, "content", row["body_html"] or "", type="html")
    return _serialize(root)


def awards_feed(info: FeedInfo, rows: list[dict[str, Any]], page: Callable[[int], str]) -> str:
    """A feed of contract awards, one entry per award, newest release first."""
    stamps = [_rfc3339(r["first_seen_at"], EPOCH) for r in rows]
    root = _feed(info, max(stamps, default=EPOCH))
    for row, updated in zip(rows, stamps, strict=True):
        entry = _add(root, "entry")
        _add(entry, "id", f"tag:govfeed,2024:award:{row['release_id']}:{row['position']}")
        title = f"{dollars(row['amount_usd'])} to {row['contractor']} ({row['branch']})"
        _add(entry, "title", title)
        _add(entry, "updated", updated)
        _add(entry, "link", rel="alternate", href=page(int(row["release_id"])), type="text/html")
        author = _add(entry, "author")
        _add(author, "name", row["agency"] or "unknown")
        # The paragraph is plain text: escape it into the HTML content.
        _add(entry, "content", f"<p>{escape(row['paragraph'] or '')}</p>", type="html")
    return _serialize(root)
