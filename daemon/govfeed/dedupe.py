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
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from govfeed.models import Release

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Web copies that name exactly one bulletin or article; other URLs (an agency's home
# page, a topic page) are shared by many releases and are no identity.
_CANONICAL_PATH = re.compile(r"/(?:article|bulletins?)/[^/]+", re.IGNORECASE)


def sha256_hex(data: bytes | memoryview) -> str:
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


@dataclass(frozen=True, slots=True)
class Identity:
    keys: tuple[str, ...]  # every identity of the release, strongest first: all are recorded
    lookup: tuple[str, ...]  # the ones that may match a release already stored
    content_hash: str  # what makes two copies different versions: title, date and body


def identify(release: Release) -> Identity:
    """The release's keys and content hash, normalising its text once.

    A release with a bulletin id is never merged into another by fingerprint alone: two
    bulletins with the same words (a recurring notice) are two releases.
    """
    title = normalize_text(release.title)
    body = normalize_text(release.body_text)
    keys = []
    if release.bulletin_id:
        keys.append(f"bulletin:{release.bulletin_id}")
    url = canonical_url(release.url)
    if url:
        keys.append(f"url:{url}")
    fingerprint = _hash(normalize_text(release.agency or ""), title, body)
    lookup = tuple(keys) if release.bulletin_id else (*keys, f"fingerprint:{fingerprint}")
    keys.append(f"fingerprint:{fingerprint}")
    return Identity(tuple(keys), lookup, _hash(title, release.release_date, body))


def _hash(*parts: str) -> str:
    return sha256_hex("\x1f".join(parts).encode("utf-8"))
