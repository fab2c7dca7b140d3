"""Body finding by content, wherever a template puts the bulletin (issue H): Advanced
templates with the body in the header, main or footer cell, the standard template, text
only, forwarded bulletins, images and tables; and a clear failure when there is none."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from govfeed.errors import ExtractError
from govfeed.extract import extract_release
from govfeed.extract.body import choose_body, is_boilerplate
from govfeed.extract.html import Block
from govfeed.models import Address, Link, ParsedMessage, RawMessage, Release
from govfeed.parse import parse_message

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import mailgen  # noqa: E402 - lives in examples/, found through the path above

AB_BODY = mailgen.body_text(mailgen.AB_PARAGRAPHS)
FOOTER_WORDS = (
    "update your subscriptions",
    "Subscriber Preferences",
    "no charge",
    "This email was sent to",
    "GovDelivery",
    "View as a webpage",
    "Facebook",
)


def release_of(raw: bytes) -> Release:
    result = extract_release(parse_message(RawMessage(raw, "test")))
    assert isinstance(result, Release), result
    return result


def assert_no_footer(release: Release) -> None:
    shown = re.sub(r"<[^>]+>", " ", release.body_html).lower()  # the words, not image URLs
    for words in FOOTER_WORDS:
        assert words.lower() not in release.body_text.lower(), words
        assert words.lower() not in shown, words


@pytest.mark.parametrize("cell", ["text", "header", "footer"])
def test_advanced_body_is_found_in_any_cell(cell: str) -> None:
    release = release_of(mailgen.advanced_bulletin(body_cell=cell, button=None))
    assert release.title == mailgen.AB_SUBJECT
    assert release.body_text == AB_BODY
    assert_no_footer(release)
    assert [link.url for link in release.links] == ["https://www.example.gov/parking/civic-center"]


def test_whole_bulletin_in_the_footer_cell_keeps_its_button_and_images() -> None:
    photo = mailgen.Image("https://www.example.gov/photos/paving.jpg", "Paving crew", 600, 300)
    raw = mailgen.advanced_bulletin(body_cell="footer", images=(photo,))
    release = release_of(raw)
    assert release.body_text == AB_BODY
    assert '<img src="https://www.example.gov/photos/paving.jpg" alt="Paving crew">' in (
        release.body_html
    )
    assert_no_footer(release)


def test_standard_template_footer_sentence_stays_out() -> None:
    # govdelivery-standard.eml: "This message is paid for by ..." sits in #mail_footer with
    # the unsubscribe links; the bulletin's own cells hold the prose.
    release = release_of((ROOT / "tests" / "data" / "govdelivery-standard.eml").read_bytes())
    assert release.body_text.endswith("The HealthCare.gov Team")
    assert "paid for by" not in release.body_text


def test_forwarded_bulletin_sent_by_govdelivery_drops_the_forward_header() -> None:
    forward = (
        "---------- Forwarded message ---------",
        "From: Oxford City Council <YourOxford@public.govdelivery.com>",
        "Date: Thu, 18 Apr 2024 at 16:01",
        "Subject: Your bins will be picked up tomorrow",
        "To: pat.example@example.net",
    )
    for build in (mailgen.text_only_bulletin, mailgen.advanced_bulletin):
        release = release_of(build(paragraphs=(*forward, *mailgen.OXFORD_PARAGRAPHS)))
        assert release.body_text.startswith("Bin collection reminder"), build
        for words in ("Forwarded message", "pat.example", "From:", "To:"):
            assert words not in release.body_text, (build, words)


def message(html: str, **fields: Any) -> ParsedMessage:
    defaults: dict[str, Any] = {
        "message_id": "m1@example.org",
        "subject": "Service changes",
        "from_": Address("Example County", "excounty@public.govdelivery.com"),
        "to": (Address("", "reader@example.org"),),
        "reply_to": (),
        "sent_at": datetime(2024, 7, 28, 13, 0, tzinfo=UTC),
        "headers": (("Date", "Sun, 28 Jul 2024 08:00:00 -0500"),),
        "text": None,
        "html": html,
    }
    return ParsedMessage(**(defaults | fields))


TAGLINE = (
    "<p>This email was sent to reader@example.org using GovDelivery Communications Cloud on "
    "behalf of: Example County · 100 Example Plaza</p>"
)


def test_a_table_of_short_cells_does_not_split_the_body() -> None:
    cells = "".join(
        f"<tr><td>Route {n}</td><td>Detour via {street} St</td></tr>"
        for n, street in ((1, "Pine"), (2, "Oak"), (3, "Elm"), (4, "Ash"), (5, "Fir"))
    )
    html = (
        "<div><h1>Service changes</h1>"
        "<p>Five routes change on Monday while the bridge is repaired by county crews.</p>"
        f"<table>{cells}</table>"
        "<p>Regular service returns when the bridge reopens, expected in two weeks.</p></div>"
        f"<div id='footer'><p>Manage preferences</p>{TAGLINE}</div>"
    )
    result = extract_release(message(html))
    assert isinstance(result, Release)
    body = result.body_text
    assert body.startswith("Five routes change on Monday")
    assert "Route 3\n\nDetour via Elm St" in body
    assert body.endswith("Regular service returns when the bridge reopens, expected in two weeks.")


def test_body_without_any_template_names() -> None:
    html = (
        "<table><tr><td><a href='https://www.facebook.com/x'>Facebook</a> "
        "<a href='https://twitter.com/x'>Twitter</a></td></tr>"
        "<tr><td><p>The library opens late on Tuesday for staff training. Book returns stay "
        "open all day.</p><p>Thank you for your patience.</p></td></tr>"
        "<tr><td><p>Powered by GovDelivery</p><p><a href='https://public.govdelivery.com/"
        "accounts/X/subscriber/edit'>Unsubscribe</a></p></td></tr></table>" + TAGLINE
    )
    result = extract_release(message(html))
    assert isinstance(result, Release)
    assert result.body_text == (
        "The library opens late on Tuesday for staff training. Book returns stay open all "
        "day.\n\nThank you for your patience."
    )


def test_only_template_text_fails_with_a_reason_a_person_can_act_on() -> None:
    raw = mailgen.advanced_bulletin(paragraphs=(), button=None)
    with pytest.raises(ExtractError) as failure:
        release_of(raw)
    reason = str(failure.value)
    assert "no body text" in reason
    assert "footer, subscription or navigation" in reason
    assert "image or an attachment" in reason


def test_images_only_fails_saying_so() -> None:
    html = "<p><img src='https://www.example.gov/flyer.png' alt='' width='600' height='800'></p>"
    with pytest.raises(ExtractError, match=r"no body text: the HTML part holds only images"):
        extract_release(message(html, text=None))


def test_boilerplate_is_judged_by_its_words_not_its_cell() -> None:
    unsubscribe = Link("https://public.govdelivery.com/accounts/X/subscriber/edit", "Unsubscribe")
    assert is_boilerplate(Block("Unsubscribe", (unsubscribe,)))
    assert is_boilerplate(Block("Powered by GovDelivery"))
    assert is_boilerplate(Block("This email was sent to a@example.org using GovDelivery"))
    prose = "The county footer program repairs sidewalks each summer in every district."
    paper = (
        "Paper bills end in June. To unsubscribe from paper bills and get them by email "
        "instead, call the utility office or visit the counter at City Hall on weekdays "
        "between 8 a.m. and 5 p.m.; bring your account number and a photo ID with you."
    )
    assert not is_boilerplate(Block(paper))  # prose that says "unsubscribe"
    assert not is_boilerplate(Block(prose, region="gd_ab_footer"))
    # A body in a footer-named cell is still found when it is all the bulletin has.
    blocks = [Block("View in browser"), Block(prose, region="gd_ab_footer")]
    assert [b.text for b in choose_body(blocks)] == [prose]
