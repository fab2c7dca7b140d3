"""Identity of releases and messages: pure functions, no I/O.

A release is known by every key it has, strongest first: its GovDelivery bulletin id,
its canonical article URL, and a fingerprint of agency + normalised title + normalised
body. The store finds an existing release by the first key it already knows, so the same
release mailed to two topics (same bulletin id, different Message-ID and tracker links)
is one release, and a corrected re-send (same bulletin id or article URL, changed body)
becomes a new version of it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from govfeed.models import Release

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Web copies that name exactly one bulletin or article; other URLs (an agency's home
# page, a topic page) are shared by many releases and are no identity.
_CANONICAL_PATH = re.compile(r"/(?:article|bulletins?)/[^/]+", re.IGNORECASE)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalize_text(text: str) -> str:
    """Case-, accent-, punctuation- and whitespace-insensitive form of a text."""
    folded = text.casefold()
    if not folded.isascii():
        folded = _COMBINING.sub("", unicodedata.normalize("NFKD", folded))
    return " ".join(_NON_WORD.sub(" ", folded).split())


def canonical_url(url: str | None) -> str | None:
    """The URL as an identity: https, lower-case host without www., no query or slash."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if not _CANONICAL_PATH.search(parts.path):
        return None
    host = parts.netloc.lower().removeprefix("www.")
    # defense.gov and war.gov serve the same articles under the same ids since 2025-09.
    if host in ("war.gov", "defense.gov"):
        host = "defense.gov"
    return urlunsplit(("https", host, parts.path.rstrip("/").lower(), "", ""))


def fingerprint(release: Release) -> str:
    material = "\x1f".join(
        (
            normalize_text(release.agency or ""),
            normalize_text(release.title),
            normalize_text(release.body_text),
        )
    )
    return sha256_hex(material.encode("utf-8"))


def release_keys(release: Release) -> tuple[str, ...]:
    """Every identity of `release`, strongest first."""
    keys = []
    if release.bulletin_id:
        keys.append(f"bulletin:{release.bulletin_id}")
    url = canonical_url(release.url)
    if url:
        keys.append(f"url:{url}")
    keys.append(f"fingerprint:{fingerprint(release)}")
    return tuple(keys)


def content_hash(release: Release) -> str:
    """What makes two copies of a release different versions: title, date and body."""
    material = "\x1f".join(
        (normalize_text(release.title), release.release_date, normalize_text(release.body_text))
    )
    return sha256_hex(material.encode("utf-8"))


def lookup_keys(release: Release) -> tuple[str, ...]:
    """The keys that may match an existing release.

    A release with a bulletin id is never merged into another by fingerprint alone: two
    bulletins with the same words (a recurring notice) are two releases.
    """
    keys = release_keys(release)
    if release.bulletin_id:
        return tuple(key for key in keys if not key.startswith("fingerprint:"))
    return keys
