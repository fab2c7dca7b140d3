"""Finding a bulletin's body by what its blocks say, wherever the template puts it.

Every block (html.py, plain.py) is judged on its own text first:
- *boilerplate*: subscriber preferences, unsubscribe, "Powered by", the sent-to tagline,
  "View in browser", navigation and social rows, a forwarded mail's header lines;
- *content*: a sentence or more of prose that is mostly not link text;
- *minor*: the rest (headings, short lines, images, greetings, sign-offs).

The body is the run of blocks with the most content (a maximum-sum span: content counts
for it, boilerplate against it), widened over the minor blocks that lead into it and
trail it, with the boilerplate inside it dropped. Template cell names (`#main-footer`,
`gd_ab_footer`, `#preheader-right`, `gd_ab_header`) are hints only: content in such a
cell counts for less and crossing into or out of one costs a little, so a footer's own
sentence stays out when the bulletin has a body elsewhere, while an account that puts its
whole bulletin in the footer cell still gets one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from govfeed.extract.boilerplate import (
    is_boilerplate_link,
    is_footer_start,
    is_nav_line,
    is_noise,
    is_social_link,
)
from govfeed.extract.html import Block
from govfeed.extract.links import unwrap_url
from govfeed.models import Link

CONTENT, MINOR, BOILER, TITLE, NOISE = "content", "minor", "boiler", "title", "noise"

_BOILER_MAX = 600  # a longer block that mentions "unsubscribe" is prose, not a footer
# GovDelivery's own footer wording: boilerplate in any block up to _BOILER_MAX.
_SERVICE_PHRASES = (
    "subscriber preferences",
    "powered by govdelivery",
    "powered by granicus",
    "this email was sent to",
    "using govdelivery",
    "using granicus",
    "govdelivery communications cloud",
    "provided to you at no charge",
    "subscriberhelp.govdelivery",
    "having trouble viewing",
    "view it as a web page",
)
# Words a bulletin may also use in prose ("to unsubscribe from paper bills, call ..."):
# boilerplate in a short block, or beside a subscription link.
_SUBSCRIPTION_PHRASES = (
    "unsubscribe",
    "manage your subscriptions",
    "manage subscriptions",
    "update your subscriptions",
    "modify your subscriptions",
    "stop subscriptions",
    "manage preferences",
    "manage your preferences",
    "update your preferences",
    "email preferences",
)
_SHORT = 200
_SERVICE_PHRASE = re.compile("|".join(map(re.escape, _SERVICE_PHRASES)))
_SUBSCRIPTION_PHRASE = re.compile("|".join(map(re.escape, _SUBSCRIPTION_PHRASES)))
_POWERED_BY = re.compile(r"powered by\b.{0,40}", re.IGNORECASE)
_FORWARD_MARK = re.compile(
    r"-{2,}\s*(?:forwarded message|original message)\s*-{2,}|begin forwarded message:?"
    r"|-{2,}\s*original message\s*-{2,}",
    re.IGNORECASE,
)
_FORWARD_HEADER = re.compile(
    r"(?:from|sent|date|to|cc|subject|reply-to)\s*:\s.{0,300}|(?:from|sent|date|to|cc|subject):",
    re.IGNORECASE,
)
# An image's file name shown as text ("2019_MediaRelease", "banner.png"), or a line of
# stray punctuation (an archive's "?" for a non-breaking space): neither is body nor a
# reason to end it.
_LEFTOVER = re.compile(
    r"[\w.-]*_[\w.-]*|[\w.-]+\.(?:png|jpe?g|gif)|[?!.,;:*•·\s-]{1,12}", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?:\s|$)")
_ASIDE = re.compile(r"footer|tagline|social|unsub|preheader|(?<![a-z])header(?![a-z])")

# Weights of the maximum-sum span (units: about 20 characters of prose = 1).
_BOILER_WEIGHT = -30.0
_MINOR_WEIGHT = -0.5  # a table's short cells between two paragraphs do not split a body
_IMAGE_WEIGHT = -1.0
_CROSSING = -25.0  # moving between a footer/header cell and a main cell
_ASIDE_FACTOR = 0.5  # content in a footer/header cell counts half
_LEAD_MAX = 6  # minor blocks taken in before the best span (date line, subheading)
_TRAIL_MAX = 8  # and after it (sign-off, contact lines)


@dataclass(frozen=True, slots=True)
class Judged:
    """A block with what it was judged to be."""

    block: Block
    role: str  # CONTENT, MINOR, BOILER or TITLE
    weight: float
    aside: bool  # in a footer/header/preheader/social cell by the template's hints


def judge(block: Block) -> Judged:
    """What `block` is, judged by its own text and links (its cell name only weighs)."""
    aside = bool(block.region) and _ASIDE.search(block.region) is not None
    text = block.text
    if is_boilerplate(block):
        return Judged(block, BOILER, _BOILER_WEIGHT, aside)
    if not text:
        return Judged(block, MINOR, _IMAGE_WEIGHT, aside)
    if _LEFTOVER.fullmatch(text):
        return Judged(block, NOISE, _MINOR_WEIGHT, aside)
    words = len(text.split())
    link_chars = sum(len(link.text) for link in block.links)
    density = min(1.0, link_chars / max(len(text), 1))
    sentences = len(_SENTENCE_END.findall(text))
    if density < 0.5 and ((sentences and words >= 2) or words >= 20):
        weight = len(text) * (1 - density) / 20 + 5 * min(sentences, 10)
        return Judged(block, CONTENT, weight * (_ASIDE_FACTOR if aside else 1.0), aside)
    return Judged(block, MINOR, _MINOR_WEIGHT, aside)


def is_boilerplate(block: Block) -> bool:
    """True for footer, subscription, tagline, web-copy, navigation and social blocks."""
    text = block.text
    if not text:  # an image: social icons, or a logo linking to the preferences page
        return bool(block.links) and all(_boilerplate_link(link) for link in block.links)
    lowered = text.lower()
    if is_noise(text) or is_nav_line(text) or is_footer_start(text):
        return True
    if len(text) <= _BOILER_MAX:
        if _SERVICE_PHRASE.search(lowered):
            return True
        if _SUBSCRIPTION_PHRASE.search(lowered) and (
            len(text) <= _SHORT or any(_boilerplate_link(link) for link in block.links)
        ):
            return True
    if _POWERED_BY.fullmatch(text.strip()) or _forward_header(text):
        return True
    if block.links and len(text) <= 200:
        return _link_row(block)
    return False


def _link_row(block: Block) -> bool:
    """A row of subscription or social links. One text link to the agency's own social
    account ("@recycle4oxford") is the bulletin's, unless the template calls it social."""
    link_chars = sum(len(link.text) for link in block.links)
    links = [Link(unwrap_url(link.url), link.text) for link in block.links]
    if link_chars < 0.6 * len(block.text) or not all(is_boilerplate_link(lk) for lk in links):
        return False
    social_hint = "social" in block.region or "share" in block.region
    return len(links) >= 2 or social_hint or not is_social_link(links[0])


def _boilerplate_link(link: Link) -> bool:
    return is_boilerplate_link(Link(unwrap_url(link.url), link.text))


def split_boilerplate_lines(blocks: Sequence[Block]) -> list[Block]:
    """`blocks` with any multi-line block cut where its lines turn boilerplate, so a
    text/plain paragraph that ends in "Unsubscribe" keeps its first lines."""
    out: list[Block] = []
    for block in blocks:
        lines = block.text.split("\n")
        if len(lines) == 1 or not any(_line_is_boilerplate(line) for line in lines):
            out.append(block)
            continue
        runs: list[tuple[bool, list[str]]] = []
        for line in lines:
            boiler = _line_is_boilerplate(line)
            if runs and runs[-1][0] == boiler:
                runs[-1][1].append(line)
            else:
                runs.append((boiler, [line]))
        out.extend(_runs_to_blocks(block, runs))
    return out


def judge_all(blocks: Sequence[Block]) -> list[Judged]:
    """Every block judged, a forwarded mail's header lines marked as boilerplate."""
    return _mark_forward_headers([judge(block) for block in blocks])


def choose_body(
    blocks: Sequence[Block], title: str = "", judged: Sequence[Judged] | None = None
) -> list[Block]:
    """The body's blocks in reading order (empty when there is none); `judged` is
    `judge_all(blocks)` when the caller has it already."""
    judged = _mark_title(list(judged if judged is not None else judge_all(blocks)), title)
    span = _best_span(judged)
    if span is None:  # no prose anywhere: keep whatever is not boilerplate or title
        main = [j for j in judged if j.role == MINOR and not j.aside]
        return [j.block for j in (main or [j for j in judged if j.role == MINOR])]
    start, end = _widen(judged, *span)
    return [j.block for j in judged[start : end + 1] if j.role in (CONTENT, MINOR)]


def _mark_title(judged: list[Judged], title: str) -> list[Judged]:
    """The first block that repeats the title is the title, not body."""
    if not title:
        return judged
    for i, item in enumerate(judged):
        if item.block.text and _same_text(item.block.text, title):
            judged[i] = Judged(item.block, TITLE, 0.0, item.aside)
            break
    return judged


def _mark_forward_headers(judged: list[Judged]) -> list[Judged]:
    """The "From:", "Date:", "To:" lines after a forwarded-message mark are boilerplate
    (the "To:" line names whoever forwarded it), also one line per paragraph."""
    after_mark = 0
    for i, item in enumerate(judged):
        first = item.block.text.split("\n", 1)[0].strip()
        if _FORWARD_MARK.fullmatch(first):
            after_mark = 8
        elif after_mark and _FORWARD_HEADER.fullmatch(first):
            judged[i] = Judged(item.block, BOILER, _BOILER_WEIGHT, item.aside)
            after_mark -= 1
            continue
        elif item.block.text:
            after_mark = 0
    return judged


def _best_span(judged: Sequence[Judged]) -> tuple[int, int] | None:
    """(first, last) index of the maximum-sum run that holds content, or None."""
    best: tuple[float, int, int] | None = None
    running, start = 0.0, 0
    for i, item in enumerate(judged):
        crossing = _CROSSING if i and item.aside != judged[i - 1].aside else 0.0
        if i == 0 or running + crossing <= 0:
            running, start = item.weight, i
        else:
            running += crossing + item.weight
        if item.role == CONTENT and (best is None or running > best[0]):
            best = (running, start, i)
    if best is None or best[0] <= 0:
        return None
    first = next(i for i in range(best[1], best[2] + 1) if judged[i].role == CONTENT)
    return first, best[2]


def _widen(judged: Sequence[Judged], start: int, end: int) -> tuple[int, int]:
    """Take in the minor blocks just before and after the span (same kind of cell)."""
    # Never from a main cell into a footer/header cell; the other way is fine (a body
    # written in the header cell can run on into the main cell's button).
    lead = start
    while lead > 0 and start - lead < _LEAD_MAX:
        before = judged[lead - 1]
        if before.role not in (MINOR, NOISE) or (before.aside and not judged[start].aside):
            break
        lead -= 1
    while lead < start and _stray_image(judged[lead], judged[start]):  # a logo
        lead += 1
    trail = end
    while trail + 1 < len(judged) and trail - end < _TRAIL_MAX:
        after = judged[trail + 1]
        if after.role not in (MINOR, NOISE) or (after.aside and not judged[end].aside):
            break
        trail += 1
    while trail > end and _stray_image(judged[trail], judged[end]):  # the footer's logo
        trail -= 1
    return lead, trail


def _stray_image(item: Judged, anchor: Judged) -> bool:
    """An image at the edge of the body that sits in another cell than the prose."""
    return not item.block.text and item.block.region != anchor.block.region


def _line_is_boilerplate(line: str) -> bool:
    return is_boilerplate(Block(line))


def _forward_header(text: str) -> bool:
    """A forwarded mail's separator and header lines ("From: ...", "To: ...")."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if not lines:
        return False
    if _FORWARD_MARK.fullmatch(lines[0]):
        return True
    return len(lines) >= 2 and all(_FORWARD_HEADER.fullmatch(line) for line in lines)


def _runs_to_blocks(block: Block, runs: list[tuple[bool, list[str]]]) -> list[Block]:
    """One block per run of lines; each link goes with the run that holds its label."""
    texts = ["\n".join(lines) for _, lines in runs]
    homes: list[list[int]] = [[] for _ in runs]
    for n, link in enumerate(block.links):
        home = next(
            (i for i, text in enumerate(texts) if link.text and link.text in text),
            next((i for i, (boiler, _) in enumerate(runs) if not boiler), 0),
        )
        homes[home].append(n)
    out = []
    for i, text in enumerate(texts):
        links = tuple(block.links[n] for n in homes[i])
        html = "<br>".join(escape(line, quote=False) for line in text.split("\n"))
        out.append(Block(text, links, html, block.kind, block.region))
    return out


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
