"""The general GovDelivery bulletin profile.

Three readings, first that yields a body wins: the standard template (`table#yahoo`:
`#main-headline` is the title, the other id'd cells inside it the body, never the
preheader, header, footer, `#mail_footer` or `#tagline`), the "Advanced" template (any
element whose id or class starts with `gd_ab_`, its role read from the rest of the name),
then any HTML body, then the text/plain part; the last two are cut at the footer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from selectolax.lexbor import LexborHTMLParser, LexborNode

from govfeed.extract.boilerplate import body_links, is_noise, trim_boilerplate
from govfeed.extract.dates import parse_date_line
from govfeed.extract.facts import Facts
from govfeed.extract.html import Block, blocks_text, html_blocks, node_text, render_html
from govfeed.extract.plain import reflow
from govfeed.models import ParsedMessage, Release

# Standard-template cells that are never body: the rest of table#yahoo's id'd cells are.
_NOT_BODY = re.compile(
    r"^(?:preheader|header|main-header|main-headline|main-footer|footer|mail_footer|tagline"
    r"|gd_top|social|share)",
    re.IGNORECASE,
)
_ADVANCED_SKIP = (
    "preheader",
    "header",
    "footer",
    "tagline",
    "social",
    "unsub",
    "logo",
    "banner",
    "nav",
    "menu",
    "share",
    "view",
    "browser",
    "masthead",
    "hide",
)
_TYPE_PREFIXES = (
    (re.compile(r"^(?:press|news) release\b", re.IGNORECASE), "release"),
    (re.compile(r"^statement\b", re.IGNORECASE), "release"),
    (re.compile(r"^(?:media|press) advisory\b", re.IGNORECASE), "advisory"),
    (re.compile(r"^transcript\b", re.IGNORECASE), "transcript"),
    (re.compile(r"\bnewsletter\b", re.IGNORECASE), "publication"),
)
_DATE_LOOKAHEAD = 3  # a date line among the first blocks of the body is the release's


def extract_govdelivery(msg: ParsedMessage, facts: Facts) -> Release:
    """The release read from a general GovDelivery bulletin (title may be empty)."""
    title, blocks = "", list[Block]()
    if facts.tree is not None:
        title, blocks = _read_html(facts.tree)
    if not any(block.text for block in blocks) and facts.text:
        blocks = reflow(trim_boilerplate(facts.text_blocks()))
    title = title or msg.subject.strip()
    if blocks and _same_text(blocks[0].text, title):
        blocks = blocks[1:]  # the headline repeated as the first line of the body
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


def _read_html(tree: LexborHTMLParser) -> tuple[str, list[Block]]:
    for reader in (_standard, _advanced):
        found = reader(tree)
        if found is not None and any(block.text for block in found[1]):
            return found
    title = node_text(tree.css_first("h1"))
    return title, trim_boilerplate(html_blocks(tree.body))


def _standard(tree: LexborHTMLParser) -> tuple[str, list[Block]] | None:
    main = tree.css_first("table#yahoo")
    if main is None:
        return None
    title = node_text(main.css_first("#main-headline"))
    cells = _outermost(main.css("[id]")[1:], _standard_body)  # [0] is table#yahoo itself
    blocks = [block for cell in cells for block in html_blocks(cell)]
    return title, _drop_noise(blocks)


def _advanced(tree: LexborHTMLParser) -> tuple[str, list[Block]] | None:
    nodes = tree.css('[id^="gd_ab_"], [class*="gd_ab_"]')
    if not nodes:
        return None
    title_node = next((n for n in nodes if _advanced_role(n.attributes) == "title"), None)
    title = node_text(title_node)
    body = _outermost(nodes, lambda node: _advanced_role(node.attributes) == "body")
    skip = _advanced_skip()
    blocks = [block for node in body for block in html_blocks(node, skip)]
    return title, _drop_noise(trim_boilerplate(blocks))


def _standard_body(node: LexborNode) -> bool:
    return not _NOT_BODY.match(node.attributes.get("id") or "")


def _advanced_role(attrs: dict[str, str | None]) -> str | None:
    """ "title", "body", "skip", or None when the element has no gd_ab_ name."""
    names = [attrs.get("id") or "", *(attrs.get("class") or "").split()]
    suffixes = [name[6:].lower() for name in names if name.lower().startswith("gd_ab_")]
    if not suffixes:
        return None
    if any(marker in suffix for suffix in suffixes for marker in _ADVANCED_SKIP):
        return "skip"
    if any(("headline" in s or "title" in s) and "sub" not in s for s in suffixes):
        return "title"
    return "body"


def _advanced_skip() -> Callable[[str, dict[str, str | None]], bool]:
    def skip(tag: str, attrs: dict[str, str | None]) -> bool:
        return _advanced_role(attrs) in ("title", "skip")

    return skip


def _outermost(nodes: Iterable[LexborNode], keep: Callable[[LexborNode], bool]) -> list[LexborNode]:
    """The `nodes` (document order) that `keep` accepts and that are not inside another
    of `nodes`, kept or not: a footer's inner cells stay footer."""
    chosen: list[LexborNode] = []
    seen: set[int] = set()
    for node in nodes:
        if node.mem_id in seen:  # a selector list can yield one element twice
            continue
        parent = node.parent
        while parent is not None and parent.mem_id not in seen:
            parent = parent.parent
        seen.add(node.mem_id)
        if parent is None and keep(node):
            chosen.append(node)
    return chosen


def _drop_noise(blocks: list[Block]) -> list[Block]:
    return [block for block in blocks if not (block.text and is_noise(block.text))]


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _release_type(title: str) -> str:
    for pattern, release_type in _TYPE_PREFIXES:
        if pattern.search(title):
            return release_type
    return "other"
