"""Dates a release states in its body: "July 27, 2024", "Jul. 27, 2024 | 10:00 AM",
"Sept. 3, 2025", "Saturday, July 27, 2024", "7/27/2024", "CONTRACTS FOR July 26, 2024".

A line counts as a date line only when the date is (nearly) all of it, so a sentence
that mentions a date never becomes the release date.
"""

from __future__ import annotations

import re
from datetime import date

_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MAX_LINE = 80
_WEEKDAY = r"(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?"
_WORDS = r"(?P<month>[a-z]{3,9})\.?\s+(?P<day>\d{1,2}),?\s+(?P<year>\d{4})"
_NUMERIC = r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"
_TAIL = r"(?:\s*(?:[|,·–—-]|\bat\b)?\s*[0-9][0-9:.apmdtsec ]{0,24})?"  # "| 10:00 a.m. EDT"
_DATE_LINE = re.compile(rf"{_WEEKDAY}(?:{_WORDS}|{_NUMERIC}){_TAIL}\.?", re.IGNORECASE)
_CONTRACTS = re.compile(rf"contracts\s+for\s+{_WEEKDAY}{_WORDS}\.?", re.IGNORECASE)


def parse_date_line(line: str) -> date | None:
    """The date when `line` is just a date (with an optional time), else None."""
    line = line.strip()
    if len(line) > _MAX_LINE or not line[:1].isalnum():
        return None
    found = _DATE_LINE.fullmatch(line) or _CONTRACTS.fullmatch(line)
    return _date(found) if found else None


def parse_contracts_title(line: str) -> date | None:
    """The date in a DoD contracts title ("Contracts For July 26, 2024"), else None."""
    found = _CONTRACTS.fullmatch(line.strip()) if len(line) <= _MAX_LINE else None
    return _date(found) if found else None


def _date(found: re.Match[str]) -> date | None:
    groups = found.groupdict()
    try:
        if groups.get("month"):
            month = _MONTHS.get(groups["month"][:3].lower())
            if month is None or not _is_month_word(groups["month"]):
                return None
            return date(int(groups["year"]), month, int(groups["day"]))
        return date(int(groups["y"]), int(groups["m"]), int(groups["d"]))
    except (TypeError, ValueError):
        return None


def _is_month_word(word: str) -> bool:
    """ "Sept", "July", "Jul" yes; "Julia" or "Mayday" no."""
    full = "january february march april may june july august september october november december"
    lowered = word.lower()
    return any(name.startswith(lowered) for name in full.split())
