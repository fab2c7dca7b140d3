"""The general GovDelivery bulletin profile.

The body is found by content (`body.choose_body`), wherever the template puts it: the
whole HTML body is read as blocks and ranked; template names are hints only. The title
is the headline cell a template marks (standard `#main-headline`, an Advanced `gd_ab_`
headline or title), else the h1/h2 just before the body, else the Subject. With no HTML
body text the text/plain part is read the same way. A bulletin whose body cannot be
found raises ExtractError saying what the message held instead.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

from govfeed.errors import ExtractError
from govfeed.extract.body import (
    BOILER,
    Judged,
    choose_body,
    judge_all,
    split_boilerplate_lines,
)
from govfeed.extract.boilerplate import body_links
from govfeed.extract.dates import parse_date_line
from govfeed.extract.facts import Facts
from govfeed.extract.html import Block, blocks_text, html_blocks, node_text, render_html
from govfeed.extract.plain import reflow
from govfeed.models import ParsedMessage, Release

_TYPE_PREFIXES = (
    (re.compile(r"^(?:press|news) release\b", re.IGNORECASE), "release"),
    (re.compile(r"^statement\b", re.IGNORECASE), "release"),
    (re.compile(r"^(?:media|press) advisory\b", re.IGNORECASE), "advisory"),
    (re.compile(r"^transcript\b", re.IGNORECASE), "transcript"),
    (re.compile(r"\bnewsletter\b", re.IGNORECASE), "publication"),
)
_DATE_LOOKAHEAD = 3  # a date line among the first blocks of the body is the release's
_NOT_TITLE = ("sub", "pre")  # gd_ab_subheadline, gd_ab_preheader_title are no titles


def extract_govdelivery(msg: ParsedMessage, facts: Facts) -> Release:
    """The release read from a general GovDelivery bulletin.

    Raises ExtractError, saying what was found instead, when no body can be found.
    """
    subject = msg.subject.strip()
    title, blocks, why = "", list[Block](), "the mail has neither an HTML nor a text part"
    if facts.tree is not None:
        title, blocks, why = _read_html(facts.tree, subject)
    if not any(block.text for block in blocks) and facts.text:
        blocks, why = _read_text(facts.text_blocks(), subject)
    title = title or subject
    if blocks and _same_text(blocks[0].text, title):
        blocks = blocks[1:]  # the headline repeated as the first line of the body
    if not any(block.text for block in blocks):  # images alone are no readable release
        raise ExtractError(f"GovDelivery bulletin {title!r} has no body text: {why}")
    stated = next(
        (found for block in blocks[:_DATE_LOOKAHEAD] if (found := parse_date_line(block.text))),
        None,
    )
    release_date = stated or facts.mail_date
    return Release(
        title=title,
        release_date=release_date.isoformat() if release_date else "",
        release_date_source="body" if stated else "mail",
        release_type=_release_type(title),
        agency=facts.agency or (msg.from_.name if msg.from_ and msg.from_.name else None),
        account_code=facts.account_code,
        bulletin_id=facts.bulletin_id,
        url=facts.web_copy,
        body_text=blocks_text(blocks),
        body_html=render_html(blocks),
        profile="govdelivery",
        links=body_links(blocks),
        sender=facts.sender,
    )


def _read_html(tree: LexborHTMLParser, subject: str) -> tuple[str, list[Block], str]:
    """(title, body blocks, why there are none) from the HTML part."""
    title = _template_title(tree)
    blocks = split_boilerplate_lines(html_blocks(tree.body, regions=True))
    judged = judge_all(blocks)
    body = choose_body(blocks, title or subject, judged)
    if not title:  # no template headline: a heading just before the body
        title = _heading_before(blocks, body)
        if title:
            body = choose_body(blocks, title, judged)
    why = "" if any(b.text for b in body) else _why_empty(blocks, judged, "HTML part")
    return title, body, why


def _read_text(blocks: list[Block], subject: str) -> tuple[list[Block], str]:
    split = split_boilerplate_lines(blocks)
    judged = judge_all(split)
    body = reflow(choose_body(split, subject, judged))
    return body, "" if body else _why_empty(split, judged, "text part")


def _template_title(tree: LexborHTMLParser) -> str:
    """The headline cell a template marks: `#main-headline`, a `gd_ab_` headline/title."""
    title = node_text(tree.css_first("table#yahoo #main-headline"))
    if title:
        return title
    for node in tree.css('[id^="gd_ab_"], [class*="gd_ab_"]'):
        if _is_headline(node.attributes):
            return node_text(node)
    return ""


def _is_headline(attrs: dict[str, str | None]) -> bool:
    names = [attrs.get("id") or "", *(attrs.get("class") or "").split()]
    suffixes = [name[6:].lower() for name in names if name.lower().startswith("gd_ab_")]
    return any(
        ("headline" in s or "title" in s) and not any(n in s for n in _NOT_TITLE) for s in suffixes
    )


def _heading_before(blocks: list[Block], body: list[Block]) -> str:
    """The last h1 (else h2) before the body's first block, if any."""
    first = body[0] if body else None
    headings = []
    for block in blocks:
        if block is first:
            break
        if block.kind in ("h1", "h2") and block.text:
            headings.append(block)
    for kind in ("h1", "h2"):
        found = next((b.text for b in reversed(headings) if b.kind == kind), "")
        if found:
            return " ".join(found.split("\n"))
    return ""


def _why_empty(blocks: list[Block], judged: list[Judged], part: str) -> str:
    """A reason a person can act on when a part yields no body."""
    texts = [block for block in blocks if block.text]
    if not blocks:
        return f"the {part} is empty"
    if not texts:
        return f"the {part} holds only images ({len(blocks)}), no text"
    boiler = sum(1 for item in judged if item.block.text and item.role == BOILER)
    return (
        f"the {part} has {len(texts)} paragraphs, {boiler} of them footer, subscription or "
        "navigation text and none that reads as the bulletin; it may be an image or an "
        "attachment (the raw message is kept: see `govfeed reparse`)"
    )


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _release_type(title: str) -> str:
    for pattern, release_type in _TYPE_PREFIXES:
        if pattern.search(title):
            return release_type
    return "other"
