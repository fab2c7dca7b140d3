"""The general GovDelivery profile: standard and Advanced templates, text fallback, and
what is no bulletin at all."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from govfeed.errors import ExtractError
from govfeed.extract import extract_release
from govfeed.models import Address, Ignored, ParsedMessage, Release

# The real samples, copied from the project's shared folder (tests/data/samples/README.md).
SAMPLES = Path(__file__).parent / "data" / "samples"


def read_sample(path: Path) -> str:
    return path.read_text(encoding="utf-8")


HEALTHCARE_HTML = SAMPLES / "govdelivery-uscmshim-bulletin-2023-01-09.html"
OXFORD_TEXT = SAMPLES / "govdelivery-oxford-bulletin-2024-04-18.forwarded.txt"
TAGLINE = (
    "This email was sent to reader@example.org using GovDelivery Communications Cloud on "
    "behalf of: Example County · 100 Example Plaza · Springfield"
)


def message(**fields: Any) -> ParsedMessage:
    defaults: dict[str, Any] = {
        "message_id": "m1@example.org",
        "subject": "Subject line",
        "from_": Address("Example County", "excounty@public.govdelivery.com"),
        "to": (Address("", "reader@example.org"),),
        "reply_to": (),
        "sent_at": datetime(2024, 7, 28, 13, 0, tzinfo=UTC),
        "headers": (("Date", "Sun, 28 Jul 2024 08:00:00 -0500"),),
        "text": None,
        "html": None,
    }
    return ParsedMessage(**(defaults | fields))


def release_of(msg: ParsedMessage) -> Release:
    result = extract_release(msg)
    assert isinstance(result, Release), result
    return result


def lnks_gd(url: str, bulletin_id: str = "20240728.5551212") -> str:
    claims = {"bulletin_id": bulletin_id, "url": url}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"https://lnks.gd/l/eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln/s/1/br/2-l"


@pytest.fixture(scope="module")
def healthcare() -> Release:
    msg = message(
        subject="Find affordable coverage by Jan. 15 at HealthCare.gov",
        from_=Address("HealthCare.gov", "marketplace@subscriptions.cms.hhs.gov"),
        to=(Address("Luigi", "luigi@example.org"),),
        headers=(("Date", "Mon, 09 Jan 2023 10:02:03 -0500"), ("X-Accountcode", "USCMSHIM")),
        sent_at=datetime(2023, 1, 9, 15, 2, 3, tzinfo=UTC),
        html=read_sample(HEALTHCARE_HTML),
    )
    return release_of(msg)


def test_real_bulletin_title_is_the_main_headline(healthcare: Release) -> None:
    assert healthcare.title == "Don’t wait any longer! Find coverage by Jan. 15"
    assert healthcare.profile == "govdelivery"
    assert healthcare.release_type == "other"


def test_real_bulletin_agency_account_and_bulletin_id(healthcare: Release) -> None:
    assert healthcare.agency == "Health Insurance Marketplace"
    assert healthcare.account_code == "USCMSHIM"
    assert healthcare.bulletin_id == "20230109.69441521"  # from a cut lnks.gd token


def test_real_bulletin_date_is_the_mail_date(healthcare: Release) -> None:
    assert (healthcare.release_date, healthcare.release_date_source) == ("2023-01-09", "mail")


def test_real_bulletin_body_is_the_body_cells_only(healthcare: Release) -> None:
    body = healthcare.body_text
    # "Luigi" (the first-name merge field above the first paragraph) is the subscriber's.
    assert body.startswith("Our records show you still need to apply for 2023")
    assert "Luigi" not in body and "Luigi" not in healthcare.body_html
    assert body.endswith("Remember to enroll by January 15 for coverage starting February 1.\n\n"
                         "The HealthCare.gov Team")  # fmt: skip
    for footer in (
        "This message is paid for",
        "1-click unsubscribe",
        "View in browser",
        "This email was sent to",
        "Visit HealthCare.gov to see if",
        "7500 Security",
    ):
        assert footer not in body  # fmt: skip
        assert footer not in healthcare.body_html
    assert "\n\n\n" not in body and "\u00a0" not in body


def test_real_bulletin_html_is_sanitized(healthcare: Release) -> None:
    html = healthcare.body_html
    assert html.startswith("<p>Our records show you still need")
    for bad in ("style=", "<table", "track?", "<script", "bgcolor"):
        assert bad not in html
    # Every tracker in the sample was cut short by its publisher: undecodable, so a
    # per-subscriber link; no link survives, its words do.
    assert "<a" not in html and "lnks.gd" not in html
    assert "Return to HealthCare.gov and see" in healthcare.body_text


def test_real_bulletin_web_copy_tracker_was_cut_so_no_url(healthcare: Release) -> None:
    # The sample's "View in browser" token is truncated: no URL rather than a tracker.
    assert healthcare.url is None
    assert healthcare.sender.subscriber == "luigi@example.org"  # the tagline names nobody
    assert healthcare.sender.from_address == "marketplace@subscriptions.cms.hhs.gov"


def test_view_in_browser_link_gives_the_web_copy_url() -> None:
    web_copy = "https://content.govdelivery.com/accounts/EXCOUNTY/bulletins/3a1b2c3"
    html = (
        '<table id="yahoo"><tr><td id="preheader-right">'
        f'<a href="{lnks_gd(web_copy + "?utm_source=x")}">View in browser</a></td></tr>'
        '<tr><td id="main-headline"><h1>Road work on Main St</h1></td></tr>'
        '<tr><td id="main-body"><p>Main St closes Monday.</p>'
        f'<p>See the <a href="{lnks_gd("https://www.example.gov/roads")}">map</a>.</p></td></tr>'
        '<tr><td id="main-footer"><p>Footer words</p></td></tr></table>'
        f'<div id="tagline">{TAGLINE}</div>'
    )
    release = release_of(message(html=html, headers=()))
    assert release.url == web_copy
    assert release.bulletin_id == "20240728.5551212"
    assert release.account_code == "EXCOUNTY"  # from the From address, no header
    assert release.agency == "Example County"
    assert release.body_text == "Main St closes Monday.\n\nSee the map."
    assert [(link.url, link.text) for link in release.links] == [
        ("https://www.example.gov/roads", "map")
    ]
    assert release.release_date == "2024-07-28"


def test_advanced_template_roles_come_from_gd_ab_names() -> None:
    html = (
        '<div class="gd_ab_preheader">View this email in your browser</div>'
        '<div id="gd_ab_header"><img src="https://example.gov/logo.png" alt="Logo"></div>'
        '<div id="gd_ab_container"><h1 class="gd_ab_headline">Budget hearing set</h1>'
        '<div class="gd_ab_text_block"><p>The hearing is on Tuesday.</p><p>All welcome.</p>'
        "</div></div>"
        '<div class="gd_ab_footer"><p>Manage preferences</p></div>'
        f"<p>{TAGLINE}</p>"
    )
    release = release_of(message(html=html))
    assert release.title == "Budget hearing set"
    assert release.body_text == "The hearing is on Tuesday.\n\nAll welcome."


def test_plain_html_without_template_is_cut_at_the_footer() -> None:
    html = (
        "<p>Having trouble viewing this email? View it as a Web page.</p>"
        "<p>Leaf pickup starts <b>November 4</b>.</p>"
        "<p>You can update your subscriptions on your Subscriber Preferences Page.</p>"
        f"<p>{TAGLINE}</p>"
    )
    release = release_of(message(html=html, subject="Leaf pickup"))
    assert release.title == "Leaf pickup"
    assert release.body_text == "Leaf pickup starts November 4."


def test_text_part_fallback_drops_govdelivery_footer() -> None:
    forwarded = read_sample(OXFORD_TEXT)
    text = forwarded.split("To: <xxx>\n", 1)[1]  # the bulletin below the forward header
    msg = message(
        subject="Your bins will be picked up tomorrow, please put them out before 7am",
        from_=Address("Oxford City Council", "youroxford@public.govdelivery.com"),
        headers=(("Date", "Thu, 18 Apr 2024 16:01:00 +0100"),),
        sent_at=datetime(2024, 4, 18, 15, 1, tzinfo=UTC),
        text=text,
    )
    release = release_of(msg)
    assert release.agency == "Oxford City Council"
    assert release.account_code == "YOUROXFORD"
    assert release.sender.subscriber == "jameshannett@gmail.com"
    assert release.release_date == "2024-04-18"
    body = release.body_text
    # The preview line above "Having trouble viewing" is the preheader: not body.
    assert body.startswith("Bin collection reminder\n\nYour next collection is on FRIDAY,")
    assert body.endswith("recyclingandwaste@odsgroup.co.uk\n\n01865 249811")
    assert "RECYCLING (blue bin/clear sack) & FOOD WASTE (small green caddy)" in body
    for footer in (
        "Having trouble",
        "Subscriber Preferences",
        "subscriberhelp",
        "no charge",
        "This email was sent to",
        "<xxx>",
        "[image",
        "GovDelivery",
    ):
        assert footer not in body  # fmt: skip
    assert "\n\n\n" not in body


def test_date_stated_in_the_body_wins_over_the_mail_date() -> None:
    html = f"<p>Oct. 3, 2025</p><p>News of the day.</p><p>{TAGLINE}</p>"
    release = release_of(message(html=html))
    assert (release.release_date, release.release_date_source) == ("2025-10-03", "body")


def test_mail_date_is_the_senders_calendar_day_not_utc() -> None:
    msg = message(
        html=f"<p>Late news.</p><p>{TAGLINE}</p>",
        headers=(("Date", "Sun, 28 Jul 2024 22:30:00 -0400"),),
        sent_at=datetime(2024, 7, 29, 2, 30, tzinfo=UTC),
    )
    assert release_of(msg).release_date == "2024-07-28"


def test_press_release_prefix_gives_the_type() -> None:
    release = release_of(message(subject="News Release: Park opens", text=f"Open.\n\n{TAGLINE}"))
    assert release.release_type == "release"


def test_personal_mail_is_ignored() -> None:
    msg = message(
        from_=Address("A Friend", "friend@example.com"),
        subject="Lunch?",
        text="Are you free on Friday?",
    )
    result = extract_release(msg)
    assert isinstance(result, Ignored)
    assert "not a GovDelivery bulletin" in result.reason


def test_subscription_confirmation_is_ignored() -> None:
    msg = message(
        subject="Subscription Confirmation",
        headers=(("X-Accountcode", "EXCOUNTY"),),
        text="Thank you for subscribing to Example County updates.\n\n" + TAGLINE,
    )
    assert isinstance(extract_release(msg), Ignored)


def test_confirmation_recognised_by_its_opening_words() -> None:
    msg = message(
        subject="Example County",
        text="You have successfully subscribed to Road Closures.\n\n" + TAGLINE,
    )
    assert isinstance(extract_release(msg), Ignored)


def test_forwarded_bulletin_from_a_person_is_ignored() -> None:
    msg = message(
        from_=Address("Jim", "jim@example.com"),
        subject="Fwd: Your bins will be picked up tomorrow",
        text=read_sample(OXFORD_TEXT),
    )
    result = extract_release(msg)
    assert isinstance(result, Ignored)
    assert "forwarded" in result.reason


def test_bulletin_without_title_or_subject_fails_with_a_reason() -> None:
    msg = message(subject="", text=f"Some words.\n\n{TAGLINE}")
    with pytest.raises(ExtractError, match="title"):
        extract_release(msg)


def test_bulletin_without_body_fails_with_a_reason() -> None:
    msg = message(html=f'<table id="yahoo"><tr><td id="main-footer">{TAGLINE}</td></tr></table>')
    with pytest.raises(ExtractError, match="no body"):
        extract_release(msg)


def test_malicious_bulletin_body_is_stored_harmless() -> None:
    html = (
        '<table id="yahoo"><tr><td id="main-headline"><h1>Notice</h1></td></tr>'
        '<tr><td id="main-body"><p onclick="steal()">Read <a href="javascript:alert(1)">'
        'this</a><img src="x" onerror="alert(2)"><script>alert(3)</script></p>'
        '<p style="background:url(javascript:alert(4))">Styled <a href="data:text/html,x">'
        'data</a> <iframe src="https://evil.example/"></iframe></p>'
        '<p><img src="https://example.gov/photo.jpg" alt="Photo" onload="alert(5)"></p>'
        f"</td></tr></table><p>{TAGLINE}</p>"
    )
    release = release_of(message(html=html))
    lowered = release.body_html.lower()
    for bad in ("script", "javascript", "onerror", "onclick", "onload", "alert", "iframe",
                "data:", "style="):  # fmt: skip
        assert bad not in lowered
    assert release.body_text == "Read this\n\nStyled data"
    assert '<img src="https://example.gov/photo.jpg" alt="Photo">' in release.body_html
    assert release.links == ()
