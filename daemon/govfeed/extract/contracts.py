"""DoD contract announcements as data: one `ContractAward` per award in the body.

A "Contracts For <date>" release is a run of section headings in capitals ("ARMY",
"DEFENSE LOGISTICS AGENCY") each followed by award paragraphs written to a house style:
"<Contractor>, <City>, <State>, was awarded a $N <type> contract for ... Work will be
performed in ..., with an estimated completion date of ... <Activity> is the contracting
activity (<contract number>)." `parse_awards` reads that style; it is pure and never
raises on odd text: a paragraph it cannot read as an award gives no row.

Decisions the rows rest on:
- An award paragraph holds an award verb ("was/is/has been/is being awarded", "are each
  awarded", "have each been awarded", "will compete for", "are sharing") after its
  contractors. Notes ("CORRECTION:", "UPDATE:", "*Small business", the title and date
  lines) give no row.
- Several contractors before the verb ("A, City, State (N1); B, City, State (N2); and C,
  ...") or after "The following companies ...:" give one row each, sharing the paragraph,
  its amount (unless one is stated per contractor) and the rest.
- amount_usd: the first dollar amount in the paragraph (face value, "maximum", ceiling).
- contract_number: a contractor's own "(number)" in a list; for a modification the
  contract it modifies; else the number in parentheses at the paragraph's end; else the
  first contract number in the paragraph.
- small_business: a single `*` after the contractor's name; `**` (mandatory source,
  AbilityOne) is not a small-business marker.
- completion_date: YYYY-MM-DD; YYYY-MM when DoD states only a month ("May 2025").
"""

from __future__ import annotations

import re

from govfeed.extract.contract_text import (
    award_clause,
    branch_name,
    completion_date,
    contract_type,
    contracting_activity,
    first_amount,
    is_heading,
    sentences,
    split_contractors,
    work_location,
)
from govfeed.models import ContractAward

__all__ = ["parse_awards"]

# Contract numbers (PIIDs): a six-character activity code, the fiscal year, the type
# letter and four characters, with or without dashes: W912DY-24-C-0012, N0001924F0010.
PIID = re.compile(r"\b[A-Z][A-Z0-9]{5}-?\d{2}-?[A-Z]-?[A-Z0-9]{4}\b")
_NOTE = re.compile(r"^\W*(?:correction|update|note|editor'?s note)\b\s*:", re.IGNORECASE)
_VERB = re.compile(
    r"\b(?:(?:(?:is|are|was|were)\s+(?:each\s+)?(?:being\s+)?|(?:has|have)\s+(?:each\s+)?been\s+"
    r"|will\s+(?:each\s+)?be\s+)(?:competitively\s+)?awarded"
    r"|will\s+(?:each\s+)?compete\s+for|are\s+sharing|(?:is|are)\s+receiving)\b",
    re.IGNORECASE,
)
_NOT_BRANCHES = {"CONTRACTS", "CONTRACT", "CORRECTION", "CORRECTIONS", "UPDATE"}
# The longest award paragraphs run to about 3,000 characters; a longer block is no award
# paragraph, and skipping it bounds the work a hostile body can cause.
_MAX_PARAGRAPH = 20_000
_FOLLOWING = re.compile(r"^the\s+following\b", re.IGNORECASE)
_MODIFIED = re.compile(
    r"\bto\s+(?:an?\s+|its\s+|the\s+)?(?:previously[- ]awarded\s+|current\s+|existing\s+)?"
    r"(?:contract|order|basic ordering agreement)\s+\(?(?P<number>"
    + PIID.pattern.replace(r"\b", "")
    + r")",
    re.IGNORECASE,
)
_END_NUMBER = re.compile(r"\((?P<numbers>[^()]*)\)[.\s]*(?:\(awarded [^()]*\)[.\s]*)?$", re.I)


def parse_awards(body_text: str) -> tuple[ContractAward, ...]:
    """Every award in a contracts announcement's body text, in the order written."""
    awards: list[ContractAward] = []
    branch: str | None = None
    for paragraph in _paragraphs(body_text):
        if is_heading(paragraph):
            if paragraph.upper().rstrip(":") not in _NOT_BRANCHES:
                branch = branch_name(paragraph)
            continue
        awards.extend(_awards_in(paragraph, branch))
    return tuple(awards)


def _paragraphs(body_text: str) -> list[str]:
    """Blocks split at blank lines; a heading line opening a block is a block of its own."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", body_text):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        while lines and is_heading(lines[0]):
            out.append(lines.pop(0))
        if lines:
            out.append(" ".join(" ".join(lines).split()))
    return out


def _awards_in(paragraph: str, branch: str | None) -> list[ContractAward]:
    if len(paragraph) > _MAX_PARAGRAPH or _NOTE.match(paragraph):
        return []
    verb = _VERB.search(paragraph)
    if verb is None:
        return []
    subject = paragraph[: verb.start()].strip()
    if _FOLLOWING.match(subject):
        subject = _listed_after_colon(paragraph, verb.end())
    contractors = split_contractors(subject)
    if not contractors:
        return []
    parts = sentences(paragraph)
    clause = award_clause(paragraph, verb.end())
    modification = bool(re.search(r"\bmodification\b|\bmodif(?:y|ies)\b", clause, re.I))
    shared_number = _contract_number(paragraph, modification)
    numbers = _numbers_in_order(paragraph, len(contractors))
    amount = first_amount(paragraph)
    common = {
        "branch": branch,
        "is_modification": modification,
        "contract_type": contract_type(paragraph, verb.end(), parts),
        "completion_date": completion_date(paragraph),
        "contracting_activity": contracting_activity(parts),
        "paragraph": paragraph,
    }
    return [
        ContractAward(
            contractor=found.name,
            contractor_location=found.location,
            amount_usd=found.amount if found.amount is not None else amount,
            contract_number=found.number or numbers[index] or shared_number,
            small_business=found.small_business,
            work_location=work_location(parts, found.name),
            **common,  # type: ignore[arg-type]
        )
        for index, found in enumerate(contractors)
    ]


def _listed_after_colon(paragraph: str, start: int) -> str:
    """ "The following companies are awarded ...: A, City, State (N1); B ..." -> "A ...; B ..." """
    colon = paragraph.find(":", start)
    if colon < 0:
        return ""
    rest = paragraph[colon + 1 :]
    end = re.search(r"\)\s*\.\s+[A-Z]", rest)
    return rest[: end.start() + 1] if end else rest.rstrip(". ")


def _numbers_in_order(paragraph: str, count: int) -> list[str | None]:
    """ "A, ...; B, ...; and C, ... have been awarded ... (N1, N2, N3)." gives N1, N2, N3 to
    A, B and C: DoD lists the numbers at the end in the contractors' order."""
    end = _END_NUMBER.search(paragraph)
    numbers = PIID.findall(end.group("numbers")) if end else []
    if count > 1 and len(numbers) == count:
        return list(numbers)
    return [None] * count


def _contract_number(paragraph: str, modification: bool) -> str | None:
    """The award's own number, or for a modification the contract it modifies."""
    if modification:
        modified = _MODIFIED.search(paragraph)
        if modified:
            return str(modified.group("number"))
    end = _END_NUMBER.search(paragraph)
    if end and not modification:
        number = PIID.search(end.group("numbers"))
        if number:
            return number.group(0)
    first = PIID.search(paragraph)
    return first.group(0) if first else None
