"""Reading the fields of one DoD award paragraph: contractors and places, amounts,
contract types, work location, completion date, contracting activity, headings.

Pure helpers for `contracts`; each takes text and returns what it found, or None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The last part of "Name, City, State": U.S. states and territories, and the countries
# foreign contractors are most often in.
_PLACES = frozenset(
    name.lower()
    for name in (
        "Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut",
        "Delaware", "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa",
        "Kansas", "Kentucky", "Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan",
        "Minnesota", "Mississippi", "Missouri", "Montana", "Nebraska", "Nevada", "New Hampshire",
        "New Jersey", "New Mexico", "New York", "North Carolina", "North Dakota", "Ohio",
        "Oklahoma", "Oregon", "Pennsylvania", "Rhode Island", "South Carolina", "South Dakota",
        "Tennessee", "Texas", "Utah", "Vermont", "Virginia", "Washington", "West Virginia",
        "Wisconsin", "Wyoming", "District of Columbia", "D.C.", "Washington D.C.", "Guam",
        "Puerto Rico", "U.S. Virgin Islands", "American Samoa", "Northern Mariana Islands",
        "Australia", "Austria", "Bahrain", "Belgium", "Canada", "Czech Republic", "Denmark",
        "England", "Finland", "France", "Germany", "Greece", "India", "Israel", "Italy", "Japan",
        "Jordan", "Kuwait", "Mexico", "Netherlands", "the Netherlands", "New Zealand",
        "Northern Ireland", "Norway", "Poland", "Qatar", "Republic of Korea", "Romania",
        "Saudi Arabia", "Scotland", "Singapore", "South Korea", "Spain", "Sweden", "Switzerland",
        "Taiwan", "Turkey", "Türkiye", "Ukraine", "United Arab Emirates", "United Kingdom", "Wales",
    )
)  # fmt: skip

_BRANCHES = {
    "ARMY": "Army",
    "NAVY": "Navy",
    "AIR FORCE": "Air Force",
    "SPACE FORCE": "Space Force",
    "MARINE CORPS": "Marine Corps",
    "U.S. SPECIAL OPERATIONS COMMAND": "U.S. Special Operations Command",
    "U.S. TRANSPORTATION COMMAND": "U.S. Transportation Command",
    "U.S. CYBER COMMAND": "U.S. Cyber Command",
    "DEFENSE ADVANCED RESEARCH PROJECTS AGENCY": "Defense Advanced Research Projects Agency",
}
_SMALL_WORDS = {"of", "and", "the", "for", "in", "on", "at", "to"}
_HEADING = re.compile(r"[A-Z][A-Z0-9 .,&'’/()\-]*[A-Z.)]")
_ABBREVIATIONS = {
    "st", "ft", "mt", "inc", "co", "corp", "no", "jr", "sr", "ltd", "bros", "jan", "feb", "mar",
    "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "dept", "gov", "vs",
}  # fmt: skip
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"“])")
_AMOUNT = re.compile(
    r"\$\s?(\d{1,3}(?:,\d{3}){1,5}|\d{1,15})(?![\d,]\d)(?:\.(\d{1,6}))?(?:\s+(million|billion)\b)?"
)
# Larger is no award but a typo or hostile text, and would not fit SQLite's INTEGER.
_MAX_AMOUNT = 10**15
_CLAUSE_END = re.compile(
    r"\s(?:for|to provide|to support|to procure|to perform|to exercise|to fund|to acquire|"
    r"which|that|under which)\s|\.\s+[A-Z]"
)
_S = r"[- ]"
_TYPE = re.compile(
    rf"hybrid|firm{_S}fixed{_S}price(?:{_S}level{_S}of{_S}effort)?"
    rf"|fixed{_S}price(?:{_S}(?:incentive|award|plus|with|economic|price|adjustment|fee"
    rf"|successive|targets?|level|of|effort)\b)*"
    rf"|\(?firm{_S}target\)?|cost{_S}plus{_S}(?:fixed|incentive|award){_S}fee"
    rf"|cost{_S}(?:no{_S}fee|only|sharing|reimbursable|reimbursement|type)"
    rf"|time{_S}and{_S}materials?|labor{_S}hours?"
    rf"|indefinite{_S}delivery\s*/\s*indefinite{_S}quantity"
    rf"|indefinite{_S}delivery{_S}indefinite{_S}quantity"
    rf"|indefinite{_S}delivery(?:{_S}requirements)?|order{_S}dependent|\bIDIQ\b",
    re.IGNORECASE,
)
_IDIQ = "indefinite-delivery/indefinite-quantity"
_SPELLINGS = {
    "indefinite delivery/indefinite quantity": _IDIQ,
    "indefinite delivery indefinite quantity": _IDIQ,
    "idiq": _IDIQ,
    "fixed price with economic price adjustment": "fixed-price with economic-price-adjustment",
    "firm fixed price level of effort": "firm-fixed-price level-of-effort",
    "indefinite delivery requirements": "indefinite-delivery requirements",
}
_TYPE_GAP = re.compile(r"[\s,/()]*(?:and\s+|or\s+)?[\s,/()]*")
_THIS_IS = re.compile(r"^This (?:is|was|will be) an? (?P<kind>.+?)\b(?:contract|order|agreement)")
_WORK = re.compile(
    r"\b(?:work will be performed|work is to be performed|(?:the )?location of performance is)"
    r"\s+(?:in\s+|at\s+|on\s+)?(?P<place>.+)",
    re.IGNORECASE,
)
_WORK_END = re.compile(
    r"[,;]?\s+(?:with an?\b|and (?:is|are|work is) expected|is expected|and will be completed)",
    re.IGNORECASE,
)
_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_MONTHS = {name[:3]: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_DATE = r"(?P<month>[A-Z][a-z]{2,8})\.?\s+(?:(?P<day>\d{1,2}),?\s+)?(?P<year>\d{4})"
_COMPLETION = re.compile(
    r"(?:estimated completion date of|expected to be complete[d]?\s+(?:by|in|on|no later than)"
    r"|(?:performance )?completion date (?:is|of)|ordering period end date is"
    r"|(?:is|will be) completed by|with an?)\s+" + _DATE + r"(?P<after>,? performance completion)?",
)
_ACTIVITY_BEFORE = re.compile(r"^(?P<who>.+?),?\s+is the contracting activity\b", re.IGNORECASE)
_ACTIVITY_AFTER = re.compile(
    r"\bthe contracting activity(?: responsible for this action)? is\s+(?:with\s+)?(?:the\s+)?"
    r"(?P<who>.+?)(?:\s*\([^()]*\))?\s*\.?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Contractor:
    """One contractor named before an award verb."""

    name: str
    location: str | None
    number: str | None  # its own "(W912DY-24-C-0012)" in a list
    amount: int | None  # its own "$N" in its parentheses
    small_business: bool


def is_heading(line: str) -> bool:
    """A section heading in capitals: "ARMY", "U.S. SPECIAL OPERATIONS COMMAND"."""
    line = line.strip()
    letters = sum(ch.isalpha() for ch in line)
    return len(line) <= 80 and letters >= 3 and _HEADING.fullmatch(line) is not None


def branch_name(heading: str) -> str:
    """ "DEFENSE LOGISTICS AGENCY" -> "Defense Logistics Agency"; "ARMY" -> "Army"."""
    heading = " ".join(heading.split()).rstrip(".:")
    if heading in _BRANCHES:
        return _BRANCHES[heading]
    words = []
    for index, word in enumerate(heading.split(" ")):
        lowered = word.lower()
        if word in ("U.S.", "U.S"):
            words.append("U.S.")
        elif word.startswith("(") or (len(word) <= 4 and "." in word):
            words.append(word)  # "(DARPA)", initials
        elif index and lowered in _SMALL_WORDS:
            words.append(lowered)
        else:
            words.append("-".join(part.capitalize() for part in lowered.split("-")))
    return " ".join(words)


def sentences(paragraph: str) -> list[str]:
    """The paragraph's sentences; "Ft. Belvoir", "D.C." and "St. Louis" do not end one."""
    out: list[str] = []
    for piece in _SENTENCE_BREAK.split(paragraph):
        if out and _ends_with_abbreviation(out[-1]):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def _ends_with_abbreviation(text: str) -> bool:
    last = text.rsplit(" ", 1)[-1].rstrip(".")
    return (
        last.lower().lstrip("(") in _ABBREVIATIONS
        or re.fullmatch(r"(?:[A-Z]\.)*[A-Z]", last) is not None  # "D.C", "U.S", "A"
    )


def award_clause(paragraph: str, start: int) -> str:
    """From the award verb to where the purpose begins ("for ...", "to provide ...")."""
    rest = paragraph[start : start + 400]
    end = _CLAUSE_END.search(rest)
    return rest[: end.start()] if end else rest


def first_amount(text: str) -> int | None:
    """The first dollar amount, in whole dollars: "$1,234,567" or "$1.5 million"."""
    found = _AMOUNT.search(text)
    if found is None:
        return None
    whole, fraction, scale = found.groups()
    value = float(f"{whole.replace(',', '')}.{fraction or 0}")
    value *= {"million": 1e6, "billion": 1e9}.get(scale or "", 1)
    return round(value) if value <= _MAX_AMOUNT else None


def contract_type(paragraph: str, start: int, parts: list[str]) -> str | None:
    """The contract type as written: "firm-fixed-price, indefinite-delivery/indefinite-quantity"."""
    sentence_end = re.search(r"\.\s+[A-Z]", paragraph[start:])
    head = paragraph[start : start + sentence_end.start() if sentence_end else None]
    purpose = re.search(r"\s(?:for|to provide|to support|which|that)\s", head)
    found = _type_run(head[: purpose.start()] if purpose else head)
    if found:
        return found
    for sentence in parts:
        this_is = _THIS_IS.match(sentence)
        if this_is:
            found = _type_run(this_is.group("kind"))
            if found:
                return found
    return None


def _type_run(text: str) -> str | None:
    """The first run of contract-type terms, joined by commas, "and" or parentheses, each
    term in DoD's usual spelling ("firm fixed price" -> "firm-fixed-price")."""
    matches = list(_TYPE.finditer(text))
    if not matches:
        return None
    parts, end = [_spelled(matches[0].group(0))], matches[0].end()
    for match in matches[1:]:
        gap = text[end : match.start()]
        if len(gap) > 12 or _TYPE_GAP.fullmatch(gap) is None:
            break
        parts += [" ".join(gap.split(" ")), _spelled(match.group(0))]
        end = match.end()
    run = "".join(parts)
    if run.count("(") > run.count(")") and text[end : end + 1] == ")":
        run += ")"
    return run.strip(" ,") or None


def _spelled(term: str) -> str:
    """One spelling per contract type, so that a facet counts them together."""
    key = re.sub(r"\s*/\s*", "/", re.sub(r"[-\s]+", " ", term.lower())).strip()
    if key in _SPELLINGS:
        return _SPELLINGS[key]
    if key.startswith("(") or key.endswith(")"):
        return term.lower()  # "(firm-target)"
    return key.replace(" ", "-")


def work_location(parts: list[str], contractor: str = "") -> str | None:
    """Where the work is performed, as written: "Norfolk, Virginia (60%); and ...". In a
    combined award, "For <contractor>, work will be performed in ..." is that one's."""
    found_places = [(sentence, found) for sentence in parts if (found := _WORK.search(sentence))]
    own = [pair for pair in found_places if contractor and pair[0].startswith(f"For {contractor},")]
    for _sentence, found in own or found_places[:1]:
        place = found.group("place")
        cut = _WORK_END.search(place)
        place = (place[: cut.start()] if cut else place).strip().rstrip(",;")
        return _drop_full_stop(place) or None
    return None


def _drop_full_stop(text: str) -> str:
    """Drop a sentence's closing period, not the one of "D.C." or "Inc."."""
    if text.endswith(".") and not _ends_with_abbreviation(text):
        return text[:-1].rstrip()
    return text


def completion_date(paragraph: str) -> str | None:
    """ "estimated completion date of Dec. 31, 2026" -> "2026-12-31"; "May 2025" -> "2025-05"."""
    for found in _COMPLETION.finditer(paragraph):
        if found.group(0).startswith(("with a ", "with an ")) and not found.group("after"):
            continue  # "with an Oct. 17, 2027, performance completion date" only
        month = _MONTHS.get(found.group("month")[:3].lower())
        if month is None or not _month_word(found.group("month")):
            continue
        year, day = int(found.group("year")), found.group("day")
        if day is None:
            return f"{year:04d}-{month:02d}"
        if 1 <= int(day) <= 31:
            return f"{year:04d}-{month:02d}-{int(day):02d}"
    return None


def _month_word(word: str) -> bool:
    """ "Sept", "July" yes; "Febtober" no."""
    return any(name.startswith(word.lower()) for name in _MONTH_NAMES)


def contracting_activity(parts: list[str]) -> str | None:
    """ "Naval Sea Systems Command, Washington, D.C., is the contracting activity" -> the
    command and its place."""
    for sentence in parts:
        found = _ACTIVITY_BEFORE.search(sentence) or _ACTIVITY_AFTER.search(sentence)
        if found:
            who = re.sub(r"^the\s+", "", found.group("who").strip(), flags=re.IGNORECASE)
            return _drop_full_stop(who.rstrip(" ,")) or None
    return None


def split_contractors(subject: str) -> list[Contractor]:
    """The contractors named before the award verb, one per "Name, City, State"."""
    subject = re.sub(r"\)\s*,?\s*and\s+", "); ", subject.strip().rstrip(","))
    if not subject or len(subject) > 1500:
        return []
    items: list[list[str]] = []
    current: list[str] = []
    pieces = _top_level_split(subject)
    for index, (piece, separator) in enumerate(pieces):
        current.append(piece)
        following = _clean(pieces[index + 1][0]) if index + 1 < len(pieces) else ""
        place_ends = _is_place(_clean(piece)) and not _is_place(following)
        if separator == ";" or (place_ends and len(current) >= 2):
            items.append(current)
            current = []
    if current:
        items.append(current)
    return [found for item in items if (found := _contractor(item)) is not None]


def _top_level_split(text: str) -> list[tuple[str, str]]:
    """Split at commas and semicolons outside parentheses: [(piece, separator after it)]."""
    pieces: list[tuple[str, str]] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char in ",;" and depth == 0:
            pieces.append((text[start:index], char))
            start = index + 1
    pieces.append((text[start:], ""))
    return [(piece, sep) for piece, sep in pieces if piece.strip()]


def _clean(piece: str) -> str:
    piece = re.sub(r"\([^()]*\)", " ", piece).replace("*", " ")
    piece = re.sub(r"^\s*and\s+", "", piece)
    return " ".join(piece.split())


def _is_place(text: str) -> bool:
    return text.lower() in _PLACES


def _contractor(pieces: list[str]) -> Contractor | None:
    raw = ",".join(pieces)
    parenthesised = " ".join(re.findall(r"\(([^()]*)\)", raw))
    number = re.search(r"\b[A-Z][A-Z0-9]{5}-?\d{2}-?[A-Z]-?[A-Z0-9]{4}\b", parenthesised)
    cleaned = [part for part in (_clean(piece) for piece in pieces) if part]
    if not cleaned:
        return None
    if len(cleaned) >= 3 or (len(cleaned) == 2 and _is_place(cleaned[-1])):
        split = -2 if len(cleaned) >= 3 else -1
        name, location = ", ".join(cleaned[:split]), ", ".join(cleaned[split:])
    else:
        name, location = ", ".join(cleaned), None
    return Contractor(
        name=name,
        location=location,
        number=number.group(0) if number else None,
        amount=first_amount(parenthesised) if "$" in parenthesised else None,
        small_business=re.search(r"(?<!\*)\*(?!\*)", raw) is not None,
    )
