"""The subscriber's privacy, shown on mail: nothing that identifies the subscribing
mailbox reaches a public column (title, body_text, body_html, links, url)."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from govfeed.extract import extract_release
from govfeed.models import RawMessage, Release
from govfeed.parse import parse_message

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import mailgen  # noqa: E402 - lives in examples/, found through the path above

SUBSCRIBER = "luigi.rossi@example.org"
CUT_TRACKER = (  # a lnks.gd token cut short: cannot be decoded, its path is the reader's ids
    "https://lnks.gd/l/eyJhbGciOiJIUzI1NiJ9.eyJidWxsZXRpbl9saW5rX2lk/s/987654321/br/123456789012-l"
)


def release_of(raw: bytes) -> Release:
    result = extract_release(parse_message(RawMessage(raw, "test")))
    assert isinstance(result, Release), result
    return result


def public_text(release: Release) -> str:
    """Every public column of a release as one string."""
    links = " ".join(f"{link.url} {link.text}" for link in release.links)
    return " ".join((release.title, release.body_text, release.body_html, links, release.url or ""))


def identifying(subscriber: str) -> tuple[str, ...]:
    """What would identify the subscriber: the address, plain, URL- and base64-encoded,
    GovDelivery's subscriber and recipient numbers for this copy, the tracker hosts."""
    linker = mailgen._linker("20250911.700112233", subscriber, "EXCOUNTY_12",
                             mailgen.advanced_bulletin.__kwdefaults__["mail_date"])  # fmt: skip
    return (
        subscriber,
        subscriber.replace("@", "%40"),
        base64.b64encode(f"emailid={subscriber}".encode()).decode()[:16],
        str(linker.subscriber_id),
        str(linker.recipient_id),
        "lnks.gd",
        "govdelivery.com/track",
        "enid=",
    )


def personalised(**kwargs: object) -> Release:
    paragraphs = (
        "Hi Luigi,",
        "Crews will resurface Main Street from Monday. Expect lane closures on weekdays.",
        f"This copy was sent to {SUBSCRIBER} because you follow Road Work.",
        "Tell us how we did in the [short survey](https://www.example.gov/survey?"
        f"email={SUBSCRIBER}&topic=roads&uid=8812).",
        "Questions? [Email Public Works](mailto:publicworks@example.gov?subject=Question%20from"
        f"%20{SUBSCRIBER.replace('@', '%40')}) or call [555-0100](tel:+1-555-555-0100).",
        f"Older notices are in the [archive]({CUT_TRACKER}).",
    )
    images = (
        mailgen.Image(f"https://www.example.gov/open.gif?uid=8812&e={SUBSCRIBER}", "", 600, 20),
        mailgen.Image("https://www.example.gov/spacer.gif", "", 1, 1),
        mailgen.Image("https://www.example.gov/photos/main-street.jpg", "Main Street", 600, 300),
    )
    raw = mailgen.advanced_bulletin(
        subscriber=SUBSCRIBER, paragraphs=paragraphs, images=images, button=None, **kwargs
    )
    return release_of(raw)


def test_nothing_identifying_reaches_a_public_column() -> None:
    release = personalised()
    text = public_text(release).lower()
    for found in identifying(SUBSCRIBER):
        assert found.lower() not in text, found


def test_greeting_is_removed_and_the_body_kept() -> None:
    release = personalised()
    assert release.body_text.startswith("Crews will resurface Main Street from Monday.")
    assert "Luigi" not in release.body_text and "Luigi" not in release.body_html
    assert release.body_html.startswith("<p>Crews will resurface Main Street")


def test_greeting_in_the_body_cell_of_the_footer_is_removed_too() -> None:
    release = personalised(body_cell="footer")
    assert release.body_text.startswith("Crews will resurface Main Street from Monday.")
    for found in identifying(SUBSCRIBER):
        assert found.lower() not in public_text(release).lower(), found


def test_subscriber_address_is_cut_from_the_text() -> None:
    assert "This copy was sent to  because you follow Road Work." in personalised().body_text


def test_links_lose_recipient_parameters_and_undecodable_trackers() -> None:
    release = personalised()
    assert [(link.url, link.text) for link in release.links] == [
        ("https://www.example.gov/survey?topic=roads", "short survey"),
        ("mailto:publicworks@example.gov", "Email Public Works"),
        ("tel:+15555550100", "555-0100"),
    ]
    assert "Older notices are in the archive." in release.body_text  # the words stay
    html = release.body_html
    assert 'href="https://www.example.gov/survey?topic=roads"' in html
    assert 'href="mailto:publicworks@example.gov"' in html
    assert 'href="tel:+15555550100"' in html
    assert "archive</a>" not in html


def test_pixels_and_recipient_keyed_images_are_dropped() -> None:
    html = personalised().body_html
    assert '<img src="https://www.example.gov/photos/main-street.jpg" alt="Main Street">' in html
    assert "open.gif" not in html and "spacer.gif" not in html


def test_dear_greeting_and_a_greeting_opening_a_paragraph() -> None:
    raw = mailgen.advanced_bulletin(
        subscriber=SUBSCRIBER,
        paragraphs=(
            "Dear Luigi Rossi:",
            "Hi Luigi, your street is next on the resurfacing list for this autumn.",
            "Crews start on Monday and expect to finish within three weeks.",
        ),
        button=None,
    )
    release = release_of(raw)
    assert release.body_text == (
        "Your street is next on the resurfacing list for this autumn.\n\n"
        "Crews start on Monday and expect to finish within three weeks."
    )
    assert release.body_html.startswith("<p>Your street is next on the resurfacing list")
    assert "Luigi" not in public_text(release)


def test_real_merge_field_greeting_is_removed() -> None:
    # The real HealthCare.gov bulletin opens with the reader's first name alone: "Luigi".
    release = release_of((ROOT / "tests" / "data" / "govdelivery-standard.eml").read_bytes())
    assert release.body_text.startswith("Our records show you still need to apply")
    assert "Luigi" not in public_text(release)


def test_web_copy_url_and_text_only_mail_carry_no_tokens() -> None:
    raw = mailgen.text_only_bulletin(
        subscriber=SUBSCRIBER,
        paragraphs=(
            "Hello Luigi,",
            *mailgen.OXFORD_PARAGRAPHS,
            f"[Update your address](https://www.oxford.gov.uk/account?email={SUBSCRIBER})",
        ),
    )
    release = release_of(raw)
    assert release.url == "https://content.govdelivery.com/accounts/UKOXFORD/bulletins/58e6449"
    assert release.body_text.startswith("Bin collection reminder")
    assert ("https://www.oxford.gov.uk/account", "Update your address") in [
        (link.url, link.text) for link in release.links
    ]
    for found in (SUBSCRIBER, "lnks.gd", "Luigi"):
        assert found not in public_text(release)


def test_a_title_that_greets_or_names_the_reader_loses_it() -> None:
    for headline in ("Luigi, your street is next for resurfacing",
                     "Hi Luigi, your street is next for resurfacing"):  # fmt: skip
        raw = mailgen.advanced_bulletin(subscriber=SUBSCRIBER, subject=headline)
        # The name is the subscriber's (luigi.rossi@...); the news stays.
        assert release_of(raw).title == "Your street is next for resurfacing", headline
