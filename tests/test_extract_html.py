"""HTML read as blocks, and the sanitizer every stored body goes through."""

from __future__ import annotations

import base64
import json

import pytest

from govfeed.extract.html import (
    Block,
    blocks_text,
    html_blocks,
    normalize_space,
    parse_html,
    render_html,
)
from govfeed.extract.sanitize import sanitize_html

ARTICLE = "https://www.defense.gov/News/Releases/Release/Article/1/x/"


def lnks_gd(url: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"url": url}).encode()).rstrip(b"=").decode()
    return f"https://lnks.gd/l/eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln/s/1/br/2-l"


def blocks_of(html: str) -> list[Block]:
    return html_blocks(parse_html(html).body)


# -- sanitize_html ------------------------------------------------------------------------


def test_script_and_style_go_with_their_content() -> None:
    out = sanitize_html("<p>a<script>alert(1)</script><style>p{color:red}</style>b</p>")
    assert out == "<p>ab</p>"


def test_event_handlers_and_style_attributes_go() -> None:
    out = sanitize_html(
        '<p onclick="x()" style="color:red" class="c">t</p><img src="x" onerror="y">'
    )
    assert "onclick" not in out and "onerror" not in out and "style" not in out
    assert "class" not in out


def test_css_expressions_in_style_go() -> None:
    out = sanitize_html(
        '<p style="width: expression(alert(1)); background:url(javascript:x)">t</p>'
    )
    assert out == "<p>t</p>"


@pytest.mark.parametrize(
    "href",
    ["javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:x", "data:text/html,<b>x</b>",
     "vbscript:x", "/relative/path", "file:///etc/passwd"],
)  # fmt: skip
def test_only_http_https_and_mailto_links_keep_their_href(href: str) -> None:
    out = sanitize_html(f'<a href="{href}">x</a>')
    assert "href" not in out
    assert "javascript" not in out.lower()


def test_links_are_unwrapped_and_get_rel() -> None:
    out = sanitize_html(f'<a href="{lnks_gd(ARTICLE + "?utm_source=gd")}">x</a>')
    assert out == f'<a href="{ARTICLE}" rel="noopener noreferrer nofollow">x</a>'
    mail = sanitize_html('<a href="mailto:press@example.gov">m</a>')
    assert 'href="mailto:press@example.gov"' in mail


def test_data_uri_images_and_tracking_pixels_go() -> None:
    html = (
        '<img src="data:image/png;base64,AAAA">'
        '<IMG SRC="https://links.govdelivery.com/track?type=open&enid=eA==" WIDTH="1" HEIGHT="1">'
        '<img src="https://example.gov/p.gif" width="1" height="1">'
        '<img src="https://example.gov/photo.jpg" alt="Photo" width="600">'
    )
    out = sanitize_html(html)
    assert "data:" not in out
    assert "track" not in out and "p.gif" not in out
    assert '<img src="https://example.gov/photo.jpg" alt="Photo">' in out


def test_pixels_sized_by_css_or_behind_an_upper_case_host_never_reach_body_html() -> None:
    pixels = (
        '<img src="https://example.gov/p.gif" style="width: 1px; height:1px">',
        '<img src="HTTPS://LINKS.GOVDELIVERY.COM/track?type=open&enid=eA==">',
    )
    for pixel in pixels:
        html = f'<p>Text {pixel}<img src="https://example.gov/photo.jpg" alt="Photo"></p>'
        rendered = render_html(blocks_of(html))
        assert rendered == '<p>Text <img src="https://example.gov/photo.jpg" alt="Photo"></p>'
        assert "p.gif" not in sanitize_html(html) and "track" not in sanitize_html(html)


def test_iframes_objects_and_forms_go_with_their_content() -> None:
    html = '<iframe src="https://x">f</iframe><object data="x">o</object><form><input></form>ok'
    assert sanitize_html(html) == "ok"


def test_structural_tags_stay() -> None:
    html = (
        "<h2>H</h2><p><strong>s</strong><em>e</em><b>b</b><i>i</i><u>u</u><br></p>"
        "<ul><li>1</li></ul><ol><li>2</li></ol><blockquote>q</blockquote><hr>"
        '<table><thead><tr><th colspan="2">h</th></tr></thead><tbody><tr><td>d</td></tr>'
        "</tbody></table>"
    )
    assert sanitize_html(html) == html


def test_malicious_body_is_harmless_after_rendering_blocks() -> None:
    html = (
        '<p onmouseover="steal()">Hello <a href="javascript:alert(1)">click</a>'
        '<img src="x" onerror="alert(1)"><script>document.cookie</script></p>'
        '<p><a href="https://ok.example.gov/" onclick="x">fine</a></p>'
        '<svg onload="alert(1)"><text>svg</text></svg>'
    )
    out = render_html(blocks_of(html))
    for bad in ("javascript", "onerror", "onclick", "onmouseover", "script", "alert", "svg"):
        assert bad not in out.lower()
    assert '<a href="https://ok.example.gov/" rel="noopener noreferrer nofollow">fine</a>' in out


# -- blocks --------------------------------------------------------------------------------


def test_paragraphs_cells_and_double_br_make_blocks() -> None:
    html = (
        "<table><tr><td>Cell one</td><td><p>Para  two</p>\n<p>&nbsp;</p></td></tr></table>"
        "<div>Line a<br>line b<br><br>Next para</div>"
    )
    assert [b.text for b in blocks_of(html)] == [
        "Cell one",
        "Para two",
        "Line a\nline b",
        "Next para",
    ]


def test_inline_markup_does_not_split_words() -> None:
    blocks = blocks_of("<p><strong>J</strong>ohn and <span>Doe</span>&#8203;</p>")
    assert [b.text for b in blocks] == ["John and Doe"]


def test_block_links_keep_their_text_and_are_unwrapped_when_rendered() -> None:
    tracker = lnks_gd(ARTICLE)
    blocks = blocks_of(f'<p>Read <a href="{tracker}">the <b>release</b></a>.</p>')
    assert blocks[0].links[0].url == tracker  # unwrapped lazily: most links are never used
    assert blocks[0].links[0].text == "the release"
    assert render_html(blocks) == (
        f'<p>Read <a href="{ARTICLE}" rel="noopener noreferrer nofollow">the '
        "<strong>release</strong></a>.</p>"
    )


def test_hidden_preheaders_scripts_and_pixels_leave_no_block() -> None:
    html = (
        '<div style="display: none !important">Preheader</div><script>x()</script>'
        '<img src="https://links.govdelivery.com/track?type=open&enid=eA==" width="1">'
        "<p>Seen</p>"
    )
    assert [b.text for b in blocks_of(html)] == ["Seen"]


def test_lists_render_as_lists_and_as_dashed_text() -> None:
    blocks = blocks_of("<ul><li>One</li><li>Two</li></ul><ol><li>Three</li></ol>")
    assert blocks_text(blocks) == "- One\n\n- Two\n\n- Three"
    assert render_html(blocks) == "<ul><li>One</li><li>Two</li></ul><ol><li>Three</li></ol>"


def test_body_text_has_one_blank_line_between_paragraphs_and_no_empty_ones() -> None:
    blocks = blocks_of("<p> A \u00a0 b </p><p> </p><p>&nbsp;</p><h2>C</h2>")
    assert blocks_text(blocks) == "A b\n\nC"
    assert render_html(blocks) == "<p>A b</p><h2>C</h2>"


def test_deep_nesting_does_not_blow_the_stack() -> None:
    html = "<div>" * 5000 + "deep" + "</div>" * 5000
    assert "deep" in blocks_text(blocks_of(html))


def test_huge_html_is_cut_not_choked_on() -> None:
    html = "<p>" + "word " * 1_000_000 + "</p>"  # 5 MB
    blocks = blocks_of(html)
    assert sum(len(b.text) for b in blocks) < 2_100_000


def test_pathological_nesting_is_cut_before_parsing() -> None:
    # 200,000 nested <div>s would keep the HTML5 parser busy for minutes (quadratic).
    html = "<p>Kept</p>" + "<div>" * 200_000 + "lost" + "</div>" * 200_000
    assert blocks_text(blocks_of(html)) == "Kept"


def test_normalize_space() -> None:
    assert normalize_space(" a\u00a0\u00a0b\t\nc\u200b ") == "a b c"
