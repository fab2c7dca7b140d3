"""Text helpers for the reader's site: summaries, search marks, version diffs, slugs.

Everything here returns plain text or `Markup` built from escaped text: the only HTML a
page renders as-is is a release's `body_html`, which nh3 sanitized at ingest.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from govfeed.site.data import MARK_CLOSE, MARK_OPEN

SUMMARY_CHARS = 220
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def summary(body_text: str | None) -> str:
    """One line for a listing: the first sentence(s) up to ~220 characters."""
    text = _SPACE.sub(" ", body_text or "").strip()
    if len(text) <= SUMMARY_CHARS:
        return text
    cut = text[:SUMMARY_CHARS]
    ends = [m.start() for m in _SENTENCE_END.finditer(cut)]
    if ends and ends[-1] > SUMMARY_CHARS // 3:
        return cut[: ends[-1]]
    return cut.rsplit(" ", 1)[0] + " …"


def marked(text: str | None) -> Markup:
    """Escape `text`, then turn the search markers (char 2/3) into <mark> elements."""
    escaped = str(escape(text or ""))
    marks = escaped.replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>")
    return Markup(marks)  # noqa: S704 - escaped above; only our own <mark> tags added


def slug(name: str) -> str:
    """`U.S. Department of Defense` -> `u-s-department-of-defense`."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "none"


def dollars(amount: int | None) -> str:
    return "" if amount is None else f"${amount:,}"


@dataclass(frozen=True)
class Change:
    """What one version changed from the one before it."""

    version: int
    sent_at: str
    title: tuple[str, str] | None = None
    release_date: tuple[str, str] | None = None
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def _paragraphs(text: str | None) -> list[str]:
    return [_SPACE.sub(" ", p).strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]


def changes(versions: list[dict[str, str]]) -> list[Change]:
    """Each version after the first, against the one before: title, date, paragraphs."""
    found = []
    for before, after in itertools.pairwise(versions):
        old, new = _paragraphs(before["body_text"]), _paragraphs(after["body_text"])
        removed: list[str] = []
        added: list[str] = []
        matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                removed.extend(old[i1:i2])
                added.extend(new[j1:j2])
        found.append(
            Change(
                version=int(after["version"]),
                sent_at=str(after["sent_at"] or ""),
                title=_pair(before, after, "title"),
                release_date=_pair(before, after, "release_date"),
                removed=removed,
                added=added,
            )
        )
    return found


def _pair(before: dict[str, str], after: dict[str, str], key: str) -> tuple[str, str] | None:
    return (before[key], after[key]) if before[key] != after[key] else None
