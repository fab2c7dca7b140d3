"""Hostile and broken mail: parse, extract and the storing pipeline never fall over.

Hypothesis mutates the DoD fixtures (tests/data/*.eml, whose words come from the real
release in tests/data/samples/) with byte flips, cuts and splices, and builds MIME meant
to hurt: truncated boundaries, lying or unknown charsets, header injection, nesting,
hostile HTML. What must hold for any input:

- `analyze` never raises, answers within a few seconds, and everything it returns can be
  written to SQLite (no lone surrogates);
- every message given to `save_batch` becomes a row in `messages` with a known status and
  its raw bytes stored, and the batch itself never raises;
- a stored `body_html` holds no script, event handler, javascript:/data: URL, style or
  tracking pixel, whatever the bulletin's HTML carried.

The big fixed cases (10,000 parts, 1 MB headers, deep nesting) run each in a child process
with a timeout, so a hang fails its test instead of stalling the run.
"""

from __future__ import annotations

import base64
import dataclasses
import email
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from govfeed import pipeline
from govfeed.analysis import Analysis, analyze
from govfeed.config import AuthenticationSettings
from govfeed.extract.links import is_tracker
from govfeed.models import RawMessage, Release
from govfeed.store import Store

DATA = Path(__file__).parent / "data"
# Trust the fixtures' receiving server, as the demo does, so intact mail is published.
POLICY = AuthenticationSettings(trusted_authserv_ids=("mx.google.com",))
STATUSES = {"stored", "duplicate", "failed", "quarantined", "ignored"}
# `analyze` writes "stage: Kind: text" for an exception that is no GovfeedError: a bug
# (AttributeError, UnicodeError...) that the per-message boundary caught.
UNEXPECTED_ERROR = re.compile(r"^\w+: [A-Z]\w*: ")

# Fixed seeds and no example database: CI runs the same examples every time. Deadlines
# are generous (a loaded 2-core machine); what they catch is super-linear blowups.
CI = settings(
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=5),
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SEEDS = tuple(
    (DATA / name).read_bytes()
    for name in (
        "dod-release.eml",
        "dod-html-only.eml",
        "dod-release-cp1252.eml",
        "dod-release-wrong-charset.eml",
        "dod-contract.eml",
        "govdelivery-standard.eml",
    )
)
# Places where a mutation hurts most: header/body split, boundaries, charsets, encodings.
_HOT = re.compile(
    rb"\n\n|\r\n\r\n|boundary=|\n--|charset=|Content-Type:|Content-Transfer-Encoding:|"
    rb"=\r?\n|=\?|Subject:|From:|Message-ID:|<a |<p|<table|href="
)
HOT_SPOTS = tuple(tuple(m.start() for m in _HOT.finditer(seed)) for seed in SEEDS)


# -- checks -------------------------------------------------------------------------------


def assert_storable(value: Any) -> None:
    """Text SQLite can store: a lone surrogate would make the INSERT (and the batch) fail."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for item in value.values():
            assert_storable(item)
    elif isinstance(value, list | tuple):
        for item in value:
            assert_storable(item)


def check_analysis(analysis: Analysis) -> None:
    assert isinstance(analysis, Analysis)
    assert analysis.compressed is not None
    if analysis.error is not None:
        assert analysis.result is None
        assert isinstance(analysis.error, str) and len(analysis.error) <= 1000
        assert not UNEXPECTED_ERROR.match(analysis.error), analysis.error
    else:
        assert analysis.result is not None
    assert_storable(dataclasses.astuple(analysis.facts))
    if isinstance(analysis.result, Release):
        release = analysis.result
        assert_storable([getattr(release, name) for name in release.__slots__])
        assert_storable([(link.url, link.text) for link in release.links])


def save_and_check(raws: list[bytes]) -> list[tuple[str, str | None]]:
    """Store `raws` in one batch in a fresh database; check every message has its row."""
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "x.db")
        try:
            summary = pipeline.Summary()
            messages = [RawMessage(data=raw, source=f"test#{i}") for i, raw in enumerate(raws)]
            pipeline.save_batch(store, messages, summary, policy=POLICY)
            assert summary.read == len(raws)
            bodies = []
            for raw in raws:
                row = store.conn.execute(
                    "select id, status, size from messages where sha256 = ?",
                    (pipeline.dedupe.sha256_hex(raw),),
                ).fetchone()
                assert row is not None, "a message left no row"
                pk, status, size = row
                assert status in STATUSES
                assert size == len(raw)
                assert store.read_raw(pk) == raw
            distinct = len(set(raws))
            assert store.conn.execute("select count(*) from messages").fetchone()[0] == distinct
            for table in ("releases", "release_versions"):
                bodies += store.conn.execute(
                    f"select title, body_html from {table}"  # noqa: S608 - fixed names
                ).fetchall()
        finally:
            store.close()
    return bodies


_DANGEROUS_TAGS = {
    "script",
    "style",
    "iframe",
    "frame",
    "object",
    "embed",
    "svg",
    "math",
    "form",
    "meta",
    "link",
    "base",
    "noscript",
    "template",
    "input",
    "button",
    "textarea",
}
_SAFE_SCHEMES = ("http://", "https://", "mailto:")


def assert_safe_html(html: str | None) -> None:
    """No active content or tracking left, read as a browser would read it (Lexbor)."""
    if not html:
        return
    assert "<script" not in html.lower()
    tree = LexborHTMLParser(html)
    root = tree.body
    assert root is not None
    for node in root.traverse():
        tag = node.tag
        assert tag not in _DANGEROUS_TAGS, html
        for name, value in node.attributes.items():
            lowered = name.lower()
            assert not lowered.startswith("on"), (name, html)
            assert lowered not in {"style", "srcdoc", "formaction", "action", "background"}
            assert "expression(" not in (value or "").lower(), (name, value)
            if lowered in {"href", "src"}:
                assert (value or "").lower().startswith(_SAFE_SCHEMES), (name, value)
        if tag == "img":
            src = (node.attributes.get("src") or "").lower()
            assert not is_tracker(src), src
            assert "pixel" not in src and "govdelivery.com/track" not in src, src
            assert "width" not in node.attributes and "height" not in node.attributes


# -- strategies: MIME built to hurt --------------------------------------------------------

CHARSETS = (
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "windows-1252",
    "x-unknown",
    "unknown-8bit",
    "utf-16",
    "utf-16-le",
    "utf-32",
    "utf-7",
    "unicode_escape",
    "raw_unicode_escape",
    "idna",
    "punycode",
    "undefined",
    "hex",
    "rot13",
    "base64",
    "shift_jis",
    "iso-2022-jp",
    "cp037",
    "",
    "utf-8\x00",
    "\\",
    "x" * 300,
)
TEXT_CODECS = ("utf-8", "latin-1", "cp1252", "utf-16-le", "utf-16", "utf-32", "utf-7", "cp037")
DOD_TEXT = (
    "Release\nView Online\nIMMEDIATE RELEASE\nJoint Press Release for the ROK-U.S. Defense "
    "Ministerial Meeting\nJuly 27, 2024\nThe Secretary of Defense hosted the Minister — "
    "“communiqué” café.\n+2AA- \\ud800 \x00\nThis email was sent to subscriber@example.org "
    "using GovDelivery Communications Cloud on behalf of: U.S. Department of Defense"
)
ENCODINGS = (
    "7bit",
    "8bit",
    "binary",
    "quoted-printable",
    "base64",
    "x-uuencode",
    "bogus",
    "",
)
CONTENT_TYPES = (
    "text/plain",
    "text/html",
    "text/x-unknown",
    "application/octet-stream",
    "image/gif",
    "message/rfc822",
    "message/delivery-status",
    "text",
    "/",
    "",
)


# -- strategies: mutations of the real fixtures --------------------------------------------


MUTATIONS = ("flip", "cut", "delete", "insert", "splice", "repeat", "relabel")
_LABEL = re.compile(rb"(?i)(charset=|boundary=|content-transfer-encoding:)\s*(\"?[^\";\s]*\"?)")
LABELS: dict[bytes, tuple[bytes, ...]] = {
    b"charset=": tuple(f'"{c}"'.encode("utf-8", "replace") for c in CHARSETS),
    b"boundary=": (b'""', b'"x"', b"", b'"--"', b'"' + b"b" * 80 + b'"', b'"unterminated'),
    b"content-transfer-encoding:": tuple(e.encode() for e in ENCODINGS),
}
INJECTIONS = (
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\n\n",
    b"\n ",
    b"\n\t",
    b"--",
    b"\n--\n",
    b"=\n",
    b"=?",
    b"?=",
    b"=?x-unknown?q?caf=E9?=",
    b"=?utf-7?q?+2AA-?=",
    b"=?utf-8?b?!!!?=",
    b"\nSubject: injected",
    b"\nFrom: Attacker <a@evil.example>",
    b"\nMessage-ID: <dup@x>",
    b'\nContent-Type: multipart/mixed; boundary=""',
    b"\nContent-Transfer-Encoding: base64",
    b"\xc3",
    b"\xff\xfe",
    b"<script>alert(1)</script>",
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A fixture with 1-4 byte flips, cuts, deletions, insertions or splices."""
    index = draw(st.integers(0, len(SEEDS) - 1))
    data = bytearray(SEEDS[index])
    hot = HOT_SPOTS[index]
    for _ in range(draw(st.integers(1, 4))):
        if hot and draw(st.booleans()):
            at = min(len(data), draw(st.sampled_from(hot)) + draw(st.integers(0, 12)))
        else:
            at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(MUTATIONS))
        if op == "relabel":  # a lying or unknown charset, transfer encoding or boundary
            labels = list(_LABEL.finditer(data))
            if labels:
                found = draw(st.sampled_from(labels))
                value = draw(st.sampled_from(LABELS[found.group(1).lower()]))
                data[found.start(2) : found.end(2)] = value
        elif op == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[at:]
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 400))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=40) | st.sampled_from(INJECTIONS))
        elif op == "splice":
            other = draw(st.sampled_from(SEEDS))
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start : start + draw(st.integers(1, 3000))]
        elif op == "repeat":
            chunk = bytes(data[at : at + draw(st.integers(1, 200))])
            data[at:at] = chunk * draw(st.integers(1, 50))
    return bytes(data)


@dataclass(frozen=True)
class Leaf:
    content_type: str
    charset: str | None
    encoding: str | None
    body: bytes
    filename: str | None


@dataclass(frozen=True)
class Multi:
    subtype: str
    boundary: str
    children: tuple[Leaf | Multi, ...]
    closed: bool  # write the closing delimiter
    preamble: bytes


@st.composite
def leaf_body(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["text", "lying", "bytes", "fixture", "b64", "qp"]))
    text = DOD_TEXT[: draw(st.integers(0, len(DOD_TEXT)))]
    if kind == "text":
        return text.encode(draw(st.sampled_from(TEXT_CODECS)), errors="replace")
    if kind == "lying":  # latin-1 bytes wherever utf-8 is declared, and so on
        return text.encode("latin-1", errors="replace") + draw(st.binary(max_size=20))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "fixture":
        seed = draw(st.sampled_from(SEEDS))
        return seed[: draw(st.integers(0, len(seed)))]
    if kind == "b64":
        encoded = base64.encodebytes(text.encode())
        return encoded[: draw(st.integers(0, len(encoded)))] + draw(st.sampled_from([b"", b"!"]))
    return text.encode("utf-8").replace(b"e", b"=E9").replace(b" ", b"=\n") + b"=Z"


leaves = st.builds(
    Leaf,
    content_type=st.sampled_from(CONTENT_TYPES),
    charset=st.none() | st.sampled_from(CHARSETS),
    encoding=st.none() | st.sampled_from(ENCODINGS),
    body=leaf_body(),
    filename=st.none() | st.sampled_from(["a.pdf", "=?utf-8?q?caf=E9?=.txt", "x" * 500, ""]),
)


def multis(children: st.SearchStrategy[Leaf | Multi]) -> st.SearchStrategy[Multi]:
    return st.builds(
        Multi,
        subtype=st.sampled_from(["mixed", "alternative", "related", "digest", "x-unknown"]),
        boundary=st.sampled_from(["b1", "b2", "b1", "", " ", "a b", "=_x", "--", "b" * 100]),
        children=st.lists(children, max_size=4).map(tuple),
        closed=st.booleans(),
        preamble=st.sampled_from([b"", b"This is a multi-part message.\n", b"--b1\n"]),
    )


trees = st.recursive(leaves, multis, max_leaves=10)


def render(node: Leaf | Multi) -> bytes:
    """The part's headers and body; boundaries and headers written as given, flaws kept."""
    if isinstance(node, Leaf):
        content_type = node.content_type.encode()
        if node.charset is not None:
            content_type += b'; charset="' + node.charset.encode("utf-8", "replace") + b'"'
        head = b"Content-Type: " + content_type + b"\n"
        if node.encoding is not None:
            head += b"Content-Transfer-Encoding: " + node.encoding.encode() + b"\n"
        if node.filename is not None:
            head += b'Content-Disposition: attachment; filename="' + node.filename.encode() + b'"\n'
        return head + b"\n" + node.body
    boundary = node.boundary.encode()
    out = b'Content-Type: multipart/%s; boundary="%s"\n\n' % (node.subtype.encode(), boundary)
    out += node.preamble
    for child in node.children:
        out += b"--" + boundary + b"\n" + render(child) + b"\n"
    if node.closed:
        out += b"--" + boundary + b"--\n"
    return out


DOD_HEADERS = (
    b"From: U.S. Department of Defense <USDOD@public.govdelivery.com>",
    b"X-Accountcode: USDOD",
    b"Subject: Joint Press Release for the ROK-U.S. Defense Ministerial Meeting",
    b"Date: Sun, 28 Jul 2024 08:12:37 -0500",
    b"Message-ID: <20240728.123456781@public.govdelivery.com>",
    b"MIME-Version: 1.0",
)
HOSTILE_HEADERS = (
    b"Subject: second subject",
    b"From: Attacker <attacker@evil.example>",
    b"From: <<<@>>>",
    b"Message-ID: <second@x>",
    b"Message-ID: <a\x00b@x>",
    b"Message-ID:",
    b"Date: not a date",
    b"Date: Sun, 99 Jul 99999 99:99:99 +9999",
    b"Subject: a\rInjected: yes",
    b"Subject: line one\n\tline two\n  line three",
    b"Subject: =?utf-8?q?caf=C3=A9?= =?x-unknown?b?AAAA?= =?unicode_escape?q?\\ud800?=",
    b"Subject: =?utf-7?q?+2AA-?=",
    b"Subject: =?utf-16?b?2AA=?=",
    b"Subject: caf\xe9 \xff\xfe",
    b"Subject: \x00\x00",
    b'To: =?undefined?q?x?= <x@y>, ,,, <>, @, "unterminated',
    b"Reply-To: =?punycode?q?a..b?= <r@x>",
    b" continuation without a header",
    b"No colon at all",
    b": empty name",
    b"Bad Name With Spaces: x",
    b"X-Bulletin-Id: \xff",
    b'Content-Type: text/plain; charset="undefined"',
    b"Content-Type: multipart/mixed",
    b"Content-Transfer-Encoding: base64",
    b"Authentication-Results: mx.google.com; dkim=pass header.i=@public.govdelivery.com",
    b"List-Unsubscribe: <javascript:alert(1)>",
)


@st.composite
def built(draw: st.DrawFn) -> bytes:
    """DoD-like headers, some missing, repeated or poisoned, over a built MIME tree."""
    headers = [h for h in DOD_HEADERS if draw(st.integers(0, 9)) > 0]
    headers += draw(st.lists(st.sampled_from(HOSTILE_HEADERS), max_size=5))
    headers = draw(st.permutations(headers))
    newline = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    tree = render(draw(trees))
    message = b"\n".join(headers) + b"\n" + tree
    if newline != b"\n":
        message = message.replace(b"\n", newline)
    cut = draw(st.none() | st.integers(0, len(message)))
    return message if cut is None else message[:cut]


any_mail = st.one_of(mutated(), built(), st.binary(max_size=2000))


# -- properties ---------------------------------------------------------------------------


@CI
@given(data=mutated())
def test_mutated_fixtures_never_raise(data: bytes) -> None:
    check_analysis(analyze(data, POLICY))


@CI
@given(data=built())
def test_built_mime_never_raises(data: bytes) -> None:
    check_analysis(analyze(data, POLICY))


@settings(CI, max_examples=200)
@given(data=st.binary(max_size=4000) | st.binary(max_size=200).map(lambda b: b"From: a\n" + b))
def test_random_bytes_never_raise(data: bytes) -> None:
    check_analysis(analyze(data, POLICY))


@settings(CI, max_examples=150)
@given(raws=st.lists(any_mail, min_size=1, max_size=4))
def test_every_message_of_a_batch_is_stored_with_a_status(raws: list[bytes]) -> None:
    for _, body_html in save_and_check(raws):
        assert_safe_html(body_html)


def test_a_batch_of_repeated_and_conflicting_copies_is_stored() -> None:
    """The same bytes twice, and the same Message-ID over different bytes."""
    release = SEEDS[0]
    other = release.replace(b"Joint Press Release", b"Joint Press Release (corrected)")
    save_and_check([release, release, other, b"", b"\x00" * 10])


# -- hostile HTML in a DoD bulletin --------------------------------------------------------


def _html_part(raw: bytes) -> tuple[Message, Message, str]:
    """The message, its first text/html part and that part's decoded HTML."""
    message = email.message_from_bytes(raw)
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return message, part, payload.decode(part.get_content_charset() or "utf-8")


def _with_html(raw: bytes, edit: Callable[[str], str]) -> bytes:
    """`raw` with its first text/html part replaced by `edit(html)`, base64-encoded."""
    message, part, html = _html_part(raw)
    del part["Content-Transfer-Encoding"]
    part["Content-Transfer-Encoding"] = "base64"
    part.set_param("charset", "utf-8")
    part.set_payload(base64.encodebytes(edit(html).encode("utf-8")).decode("ascii"))
    return message.as_bytes()


def _spots(html: str) -> tuple[int, ...]:
    """Where markup can go: before a tag, or between two words of text."""
    tags = [m.start() for m in re.finditer(r"<[a-zA-Z/]", html)]
    words = [
        m.start(1) + w.start()
        for m in re.finditer(r">([^<]+)<", html)
        for w in re.finditer(" ", m.group(1))
    ]
    return tuple(sorted(tags + words))


HTML_SEEDS = tuple(
    (DATA / name).read_bytes()
    for name in (
        "dod-html-only.eml",
        "dod-release.eml",
        "govdelivery-standard.eml",
        "govdelivery-advanced.eml",
    )
)
HTML_SPOTS = tuple(_spots(_html_part(raw)[2]) for raw in HTML_SEEDS)

PIXEL_TRACKER = (
    "https://links.govdelivery.com/track?type=open&enid=ZWFzPTEmbWFpbGluZ2lkPTIwMjQwODA3"
)
UPPER_CASE_TRACKER = PIXEL_TRACKER.replace(
    "https://links.govdelivery.com", "HTTPS://LINKS.GOVDELIVERY.COM"
)
HOSTILE_SNIPPETS = (
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<img src="https://evil.example/a.png" onload="alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href=" javascript:alert(1)">click</a>',
    '<a href="java\tscript:alert(1)">click</a>',
    '<a href="&#106;avascript:alert(1)">click</a>',
    '<a href="vbscript:msgbox(1)">click</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">click</a>',
    '<a href="https://www.defense.gov/" onclick="alert(1)">ok</a>',
    '<p onmouseover="alert(1)">hover</p>',
    '<div style="width: expression(alert(1))">css</div>',
    '<p style="background:url(javascript:alert(1))">css</p>',
    "<style>p { behavior: url(x.htc); -moz-binding: url(x.xml#x) }</style>",
    '<span style="x:expression(alert(1))">ie</span>',
    f'<img src="{PIXEL_TRACKER}" width="1" height="1" alt="">',
    '<img src="https://evil.example/pixel.gif" width="1" height="1">',
    '<img src="https://evil.example/pixel.gif" width="0" height="0" style="display:none">',
    '<img src="https://lnks.gd/l/eyJhbGciOiJIUzI1NiJ9.e30.c2ln/pixel">',
    '<img src="https://evil.example/pixel.gif" style="width: 1px; height:1px">',
    '<img src="https://evil.example/pixel.gif" style="WIDTH:0">',
    f'<img src="{UPPER_CASE_TRACKER}">',
    '<iframe src="https://evil.example/"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<svg onload="alert(1)"><script>alert(1)</script></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    '<form action="javascript:alert(1)"><button formaction="javascript:alert(1)">x</button>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<body onload="alert(1)">',
    "<!--<script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<a href="https://www.defense.gov/"><img src="x" onerror="alert(1)"></a>',
    '<table background="javascript:alert(1)"><tr><td>cell</td></tr></table>',
    "<strong onclick=alert(1)>bold</strong>",
)


@st.composite
def hostile_html(draw: st.DrawFn) -> bytes:
    """A DoD or GovDelivery bulletin with hostile markup mixed into its HTML part."""
    index = draw(st.integers(0, len(HTML_SEEDS) - 1))
    spots = draw(st.lists(st.sampled_from(HTML_SPOTS[index]), min_size=1, max_size=8))
    snippets = [draw(st.sampled_from(HOSTILE_SNIPPETS)) for _ in spots]

    def edit(html: str) -> str:
        for at, snippet in sorted(zip(spots, snippets, strict=True), reverse=True):
            html = html[:at] + snippet + html[at:]
        return html

    return _with_html(HTML_SEEDS[index], edit)


@settings(CI, max_examples=200)
@given(data=hostile_html())
def test_hostile_html_never_reaches_body_html(data: bytes) -> None:
    analysis = analyze(data, POLICY)
    check_analysis(analysis)
    if isinstance(analysis.result, Release):
        assert_safe_html(analysis.result.body_html)
    for _, body_html in save_and_check([data]):
        assert_safe_html(body_html)


def test_every_hostile_snippet_at_once_still_gives_a_clean_release() -> None:
    """The property above is not empty: a bulletin carrying all of it is still a release."""
    hostile = "\n".join(HOSTILE_SNIPPETS)

    def edit(html: str) -> str:  # after the paragraphs: <math><style> eats what follows
        end = html.index("</div>", html.index('<div class="dod-body">'))
        return html[:end] + hostile + html[end:]

    raw = _with_html(HTML_SEEDS[0], edit)
    bodies = save_and_check([raw])
    assert bodies, "no release was stored"
    for title, body_html in bodies:
        assert title.startswith("Department of Defense Announces Winners")
        assert body_html and "Installation Energy Innovation Challenge" in body_html
        assert_safe_html(body_html)


# -- big fixed cases, each in a child process with a timeout --------------------------------


def _headers(extra: bytes = b"", subject: bytes = b"Joint Press Release") -> bytes:
    return (
        b"From: U.S. Department of Defense <USDOD@public.govdelivery.com>\n"
        b"X-Accountcode: USDOD\nSubject: " + subject + b"\n"
        b"Date: Sun, 28 Jul 2024 08:12:37 -0500\nMessage-ID: <big@x>\nMIME-Version: 1.0\n" + extra
    )


def _nested(depth: int) -> bytes:
    out = _headers(b'Content-Type: multipart/mixed; boundary="b0"\n\n')
    for i in range(depth):
        out += b'--b%d\nContent-Type: multipart/mixed; boundary="b%d"\n\n' % (i, i + 1)
    out += b"--b%d\nContent-Type: text/plain\n\n%s\n" % (depth, DOD_TEXT.encode())
    for i in range(depth, -1, -1):
        out += b"--b%d--\n" % i
    return out


def _parts(count: int, part: bytes) -> bytes:
    out = _headers(b'Content-Type: multipart/mixed; boundary="bb"\n\n')
    out += b"--bb\nContent-Type: text/plain\n\n" + DOD_TEXT.encode() + b"\n"
    out += b"".join(b"--bb\n" + part % i + b"\n" for i in range(count))
    return out + b"--bb--\n"


def _multipart(extra_params: bytes) -> bytes:
    return _headers(b"Content-Type: multipart/mixed; " + extra_params + b'boundary="bb"\n\n') + (
        b"--bb\nContent-Type: text/plain\n\n" + DOD_TEXT.encode() + b"\n--bb--\n"
    )


def _with_body(headers: bytes) -> bytes:
    return headers + b"\n" + DOD_TEXT.encode() + b"\n"


BIG_CASES: dict[str, Callable[[], bytes]] = {
    "nested 200": lambda: _nested(200),
    "nested 5000": lambda: _nested(5000),
    "10,000 text parts": lambda: _parts(10_000, b"Content-Type: text/plain\n\npart %d"),
    "10,000 attachments": lambda: _parts(
        10_000,
        b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
        b'Content-Disposition: attachment; filename="f%d.bin"\n\nAAAA',
    ),
    "10,000 header lines": lambda: _with_body(
        _headers(b"".join(b"X-Header-%d: value\n" % i for i in range(10_000)))
    ),
    "10,000 From lines": lambda: _with_body(
        _headers(b"".join(b"From: a%d@evil.example\n" % i for i in range(10_000)))
    ),
    "1 MB Subject": lambda: _with_body(_headers(subject=b"x" * 1_000_000)),
    "1 MB folded Subject": lambda: _with_body(_headers(subject=b"word\n " * 170_000)),
    # The standard library decodes these in quadratic time: 2 MB took 30 s to minutes.
    "2 MB Subject of encoded words": lambda: _with_body(
        _headers(subject=b"=?utf-8?q?caf=C3=A9?= " * 90_000)
    ),
    "2 MB Date of encoded words": lambda: _with_body(
        _headers(b"Date: " + b"=?utf-8?q?abc?= " * 120_000 + b"\n")
    ),
    "2 MB To of encoded names": lambda: _with_body(
        _headers(b"To: " + b", ".join(b"=?utf-8?q?a%d?= <a%d@x.y>" % (i, i) for i in range(60_000)))
        + b"\n"
    ),
    "1 MB Message-ID": lambda: _with_body(_headers(b"Message-ID: <" + b"a" * 1_000_000 + b">\n")),
    "2 MB Content-Type parameters": lambda: _multipart(b"a=1; " * 400_000),
    "2 MB attachment filename": lambda: _parts(
        1,
        b'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="'
        + b"=?utf-8?q?abc?= " * 120_000
        + b'%d"\n\nAAAA',
    ),
    "1 MB header line without a colon": lambda: _with_body(_headers(b"x" * 1_000_000 + b"\n")),
}
BIG_BOUND_SECONDS = 10.0  # per message; they take well under a second each when healthy
_CHILD = """
import json, sys, time
from govfeed.analysis import analyze
from govfeed.config import AuthenticationSettings
data = sys.stdin.buffer.read()
start = time.perf_counter()
analysis = analyze(data, AuthenticationSettings(trusted_authserv_ids=("mx.google.com",)))
elapsed = time.perf_counter() - start
print(json.dumps({"elapsed": elapsed, "error": analysis.error,
                  "result": type(analysis.result).__name__}))
"""


@pytest.mark.parametrize("name", list(BIG_CASES))
def test_big_messages_are_analyzed_in_bounded_time(name: str) -> None:
    data = BIG_CASES[name]()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=data,
            capture_output=True,
            timeout=BIG_BOUND_SECONDS * 3,  # imports and a busy machine; a hang ends here
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: analyze did not finish in {BIG_BOUND_SECONDS * 3:.0f} s")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["elapsed"] < BIG_BOUND_SECONDS, report
    assert not UNEXPECTED_ERROR.match(report["error"] or ""), report


def test_big_messages_are_stored(tmp_path: Path) -> None:
    """A few of the big ones through the pipeline: a row each, raw bytes kept."""
    names = ("nested 5000", "10,000 text parts", "1 MB Subject", "10,000 header lines")
    raws = [BIG_CASES[name]() for name in names]
    raws = [raw.replace(b"<big@x>", b"<big-%d@x>" % i) for i, raw in enumerate(raws)]
    with Store(tmp_path / "x.db") as store:
        pipeline.save_batch(store, [RawMessage(raw, "big") for raw in raws], pipeline.Summary())
        got = store.conn.execute("select status from messages order by id").fetchall()
    assert len(got) == len(raws)
    assert {status for (status,) in got} <= STATUSES
