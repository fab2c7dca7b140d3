"""HTML bodies: parse once (selectolax/Lexbor), read them as blocks, sanitize with nh3.

A *block* is one paragraph-level piece of text in reading order (a `<p>`, a table cell,
a list item, a run of text between two `<br><br>`), with the links inside it and a small
inline HTML rendering built from the same walk. The profiles pick which blocks make the
body; `render_html` turns those back into clean HTML and `sanitize_html` is the last
gate before anything HTML is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape

from selectolax.lexbor import LexborDocumentOptions, LexborHTMLParser, LexborNode

from govfeed.extract.links import is_contact_url, is_tracking_pixel, is_web_url
from govfeed.extract.sanitize import MAX_HTML_CHARS, sanitize_html
from govfeed.models import Link

_MAX_DEPTH = 150  # deeper nesting is read as flat text (no Python recursion blowup)
_NESTING_CHECK_ABOVE = 64_000  # below this, even the worst nesting parses in ~0.2 s
_MAX_NESTING = 1000
_BLOCK_START = re.compile(
    r"<(/?)(?:div|ul|ol|dl|blockquote|center|section|article|aside|nav|header|footer|main|"
    r"fieldset|figure|figcaption|form|address|details|dialog|menu|dir|h[1-6]|pre|listing|"
    r"hgroup|search|summary)\b",
    re.IGNORECASE,
)

_BLOCK_TAGS_WORDS = (
    "p div h1 h2 h3 h4 h5 h6 li ul ol dl dt dd table thead tbody tfoot tr td th "
    "caption blockquote pre section article header footer nav aside main center "
    "address figure figcaption fieldset hr form body html"
)
_BLOCK_TAGS = frozenset(_BLOCK_TAGS_WORDS.split())
_SKIP_TAGS_WORDS = (
    "script style head title noscript template iframe object embed svg math select "
    "textarea button input option meta link map area audio video canvas"
)
_SKIP_TAGS = frozenset(_SKIP_TAGS_WORDS.split())
_INLINE_MARKUP = {
    tag: (f"<{name}>", f"</{name}>")
    for tag, name in (("strong", "strong"), ("b", "strong"), ("em", "em"), ("i", "em"), ("u", "u"))
}
_FOOTER_IDS = frozenset(("main-footer", "mail_footer", "tagline", "gd_ab_footer", "footer"))
_TABLE_TAGS = frozenset(("table", "tbody", "thead", "tfoot", "tr"))
_HEADINGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))
_INVISIBLE = str.maketrans(dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), ""))
_HIDDEN_STYLE = ("display:none", "mso-hide:all", "visibility:hidden")
# Class names worth keeping as a region hint (ids always are): template roles, not styling.
_HINT_CLASSES = ("gd_", "footer", "header", "social", "tagline", "headline", "unsub")
_HINT_CLASS = re.compile("|".join(_HINT_CLASSES))

SkipFn = Callable[[str, dict[str, str | None]], bool]


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph of text; `html` is its inline markup, `kind` its element."""

    text: str  # whitespace normalised; "\n" only where the source had a line break
    links: tuple[Link, ...] = ()
    html: str = ""  # escaped text with <a>, <strong>, <em>, <u>, <br>, <img>
    kind: str = "p"  # p, h1..h6, blockquote, ul/ol (a list item of that list)
    region: str = ""  # template hints around it: ids and gd_/footer/header classes, outer first


def parse_html(html: str) -> LexborHTMLParser:
    """Parse at most MAX_HTML_CHARS characters of `html` (the parser mends a cut tag)."""
    html = html[:MAX_HTML_CHARS]
    if len(html) > _NESTING_CHECK_ABOVE:
        html = _limit_nesting(html)
    # WO_EVENTS: no DOM mutation callbacks (we never mutate); parses ~8% faster.
    return LexborHTMLParser(html, options=LexborDocumentOptions.WO_EVENTS)


def _limit_nesting(html: str) -> str:
    """`html` cut where block elements nest deeper than _MAX_NESTING.

    An HTML5 parser looks through the stack of open elements for every block start tag
    ("close a p element in button scope"), so 20,000 nested <div>s take Lexbor 0.5 s and
    200,000 take minutes. Nothing real nests that deep; what follows is dropped.
    """
    depth = 0
    for found in _BLOCK_START.finditer(html):
        if found.group(1):
            depth = max(0, depth - 1)
            continue
        depth += 1
        if depth > _MAX_NESTING:
            return html[: found.start()]
    return html


def normalize_space(text: str) -> str:
    """One line: invisible characters dropped, any run of whitespace (nbsp too) one space."""
    if text.isascii():
        return " ".join(text.split())
    return " ".join(text.translate(_INVISIBLE).split())


def html_blocks(
    node: LexborNode | None,
    skip: SkipFn | None = None,
    *,
    stop_at_footer: bool = False,
    regions: bool = False,
) -> list[Block]:
    """The blocks under `node` in reading order; `skip(tag, attrs)` prunes elements.

    `stop_at_footer` ends the walk at GovDelivery's footer (`#main-footer`, `#mail_footer`,
    `#tagline`...): nothing after it is ever body, and walking it costs time. `regions`
    fills each block's `region` with the template hints around it (ids, role classes).
    """
    if node is None:
        return []
    walker = _Walker(skip, stop_at_footer, regions)
    walker.walk(node, 0)
    walker.flush()
    return walker.blocks


def node_text(node: LexborNode | None) -> str:
    """The visible text of `node` on one line (block boundaries become spaces)."""
    return " ".join(" ".join(block.text.split("\n")) for block in html_blocks(node))


def blocks_text(blocks: Iterable[Block]) -> str:
    """Paragraphs separated by one blank line; list items marked with "- "."""
    parts = []
    for block in blocks:
        if block.text:
            parts.append(f"- {block.text}" if block.kind in ("ul", "ol") else block.text)
    return "\n\n".join(parts)


def render_html(blocks: Iterable[Block]) -> str:
    """Clean, sanitized HTML for `blocks`: <p>, <h1>-<h6>, <ul>/<ol>, <blockquote>."""
    out: list[str] = []
    open_list = ""
    for block in blocks:
        if block.kind in ("ul", "ol"):
            if open_list != block.kind:
                out.append(f"</{open_list}>" if open_list else "")
                out.append(f"<{block.kind}>")
                open_list = block.kind
            out.append(f"<li>{block.html}</li>")
            continue
        if open_list:
            out.append(f"</{open_list}>")
            open_list = ""
        out.append(f"<{block.kind}>{block.html}</{block.kind}>")
    if open_list:
        out.append(f"</{open_list}>")
    return sanitize_html("".join(out))


class _Walker:
    """Depth-first walk that cuts text into blocks at block-level elements.

    Hot code (every node of every message): few calls, lists cleared in place.
    """

    def __init__(
        self, skip: SkipFn | None, stop_at_footer: bool = False, regions: bool = False
    ) -> None:
        self.blocks: list[Block] = []
        self._track_regions = regions
        self._skip = skip
        self._stop_at_footer = stop_at_footer
        self._stopped = False
        self._kinds = ["p"]
        self._lists: list[str] = []
        self._text: list[str] = []
        self._html: list[str] = []
        self._links: list[Link] = []
        self._image = False
        self._content = False  # any visible text or image in the current run
        self._after_br = False
        self._alt = ""
        self._regions: list[str] = []
        self._region = ""

    def walk(self, node: LexborNode, depth: int, skip_empty: bool = False) -> None:
        text, html, skip = self._text, self._html, self._skip
        for child in node.iter(include_text=True, skip_empty=skip_empty):
            tag = child.tag or "-"
            if tag == "-text":
                value = child.text_content
                if not value:
                    continue
                if value.isspace():  # the indentation between tags, mostly
                    text.append(" ")
                    html.append(" ")
                    continue
                text.append(value)
                html.append(escape(_collapse(value), quote=False))
                self._after_br = False
                self._content = True
                continue
            if tag in _SKIP_TAGS or tag[0] == "-":  # "-comment", "-doctype"
                continue
            attrs = child.attributes
            style = attrs.get("style")
            if style and ("none" in style or "hid" in style) and _hidden(style):
                continue
            if skip is not None and skip(tag, attrs):
                continue
            element_id = attrs.get("id")
            if self._stop_at_footer and element_id in _FOOTER_IDS:
                self._stopped = True
                return
            hint = _hint(element_id, attrs.get("class")) if self._track_regions else ""
            if hint:
                self._enter_region(hint, tag)
            self._dispatch(child, tag, attrs, depth)
            if hint:
                self._leave_region(tag)
            if self._stopped:
                return

    def _dispatch(
        self, child: LexborNode, tag: str, attrs: dict[str, str | None], depth: int
    ) -> None:
        text, html = self._text, self._html
        if depth > _MAX_DEPTH:
            text.append(" " + child.text(separator=" ") + " ")
            html.append(escape(text[-1], quote=False))
            self._content = True
        elif tag in _TABLE_TAGS:  # whitespace between rows and cells means nothing
            if html:
                self.flush()
            self.walk(child, depth + 1, skip_empty=True)
            if html:
                self.flush()
        elif tag in _BLOCK_TAGS:
            self._block(child, tag, depth + 1)
        elif tag in _INLINE_MARKUP:
            html.append(_INLINE_MARKUP[tag][0])
            self.walk(child, depth + 1)
            html.append(_INLINE_MARKUP[tag][1])
        elif tag == "br":
            self._line_break()
        elif tag == "a":
            self._anchor(child, attrs, depth + 1)
        elif tag == "img":
            self._image_tag(attrs)
        else:
            self.walk(child, depth + 1)

    def _enter_region(self, hint: str, tag: str) -> None:
        # A block-level region starts a new block: text before and inside it told apart.
        if self._html and (tag in _BLOCK_TAGS or tag in _TABLE_TAGS):
            self.flush()
        self._regions.append(hint)
        self._region = " ".join(self._regions)

    def _leave_region(self, tag: str) -> None:
        if self._html and (tag in _BLOCK_TAGS or tag in _TABLE_TAGS):
            self.flush()
        self._regions.pop()
        self._region = " ".join(self._regions)

    def _block(self, node: LexborNode, tag: str, depth: int) -> None:
        if self._html:
            self.flush()
        if tag == "ul" or tag == "ol":
            self._lists.append(tag)
        kind = self._kinds[-1]
        if tag in _HEADINGS or tag == "blockquote":
            kind = tag
        elif tag == "li":
            kind = self._lists[-1] if self._lists else "ul"
        self._kinds.append(kind)
        self.walk(node, depth)
        if self._html:
            self.flush()
        self._kinds.pop()
        if tag == "ul" or tag == "ol":
            self._lists.pop()

    def _anchor(self, node: LexborNode, attrs: dict[str, str | None], depth: int) -> None:
        """Links keep their raw href here; `body_links` and the sanitizer unwrap them."""
        href = (attrs.get("href") or "").strip()
        if not (is_web_url(href) or is_contact_url(href)):
            self.walk(node, depth)
            return
        start = len(self._text)
        self._alt = ""
        self._html.append(f'<a href="{escape(href)}">')
        self.walk(node, depth)
        self._html.append("</a>")
        text = normalize_space("".join(self._text[start:])) or self._alt
        self._links.append(Link(url=href, text=text))

    def _image_tag(self, attrs: dict[str, str | None]) -> None:
        src = (attrs.get("src") or "").strip()
        width, height, style = attrs.get("width"), attrs.get("height"), attrs.get("style")
        if not is_web_url(src) or is_tracking_pixel(src, width, height, style):
            return
        self._alt = normalize_space(attrs.get("alt") or "")
        self._html.append(f'<img src="{escape(src)}" alt="{escape(self._alt)}">')
        self._image = self._content = True

    def _line_break(self) -> None:
        if self._after_br:  # <br><br>: a paragraph break
            self.flush()
            return
        self._text.append("\n")
        self._html.append("<br>")
        self._after_br = True

    def flush(self) -> None:
        if self._content:
            joined = "".join(self._text)
            if "\n" in joined:
                lines = (normalize_space(line) for line in joined.split("\n"))
                text = "\n".join(line for line in lines if line)
            else:
                text = normalize_space(joined)
            if text or self._image:
                html = "".join(self._html).strip()
                while html.endswith("<br>"):
                    html = html[: -len("<br>")].rstrip()
                block = Block(text, tuple(self._links), html, self._kinds[-1], self._region)
                self.blocks.append(block)
        if self._html:
            self._text.clear()
            self._html.clear()
            self._links.clear()
        self._image = self._content = self._after_br = False


def _collapse(value: str) -> str:
    """Whitespace runs (nbsp too) as one space, keeping a space at either edge."""
    if "\xa0" not in value and "  " not in value and "\n" not in value and "\t" not in value:
        return value
    inner = normalize_space(value)
    if not inner:
        return " "
    head = " " if value[:1].isspace() else ""
    tail = " " if value[-1:].isspace() else ""
    return f"{head}{inner}{tail}"


def _hint(element_id: str | None, classes: str | None) -> str:
    """The template hint an element carries: its id and role-like class names."""
    if not classes:
        return element_id.lower() if element_id else ""
    lowered = classes.lower()
    if _HINT_CLASS.search(lowered) is None:
        return element_id.lower() if element_id else ""
    names = [element_id.lower()] if element_id else []
    names += [c for c in lowered.split() if _HINT_CLASS.search(c)]
    return " ".join(names)


def _hidden(style: str) -> bool:
    compact = style.replace(" ", "").lower()
    return any(marker in compact for marker in _HIDDEN_STYLE)
