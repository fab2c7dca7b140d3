"""The DoD / Department of War profile, on the real sample's layout."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from govfeed.extract import extract_release
from govfeed.extract.dates import parse_date_line
from govfeed.extract.dod import read_layout
from govfeed.extract.plain import text_blocks
from govfeed.models import Address, ParsedMessage, Release

# The real samples, copied from the project's shared folder (tests/data/samples/README.md).
SAMPLES = Path(__file__).parent / "data" / "samples"


def read_sample(path: Path) -> str:
    return path.read_text(encoding="utf-8")


DOD_TEXT = SAMPLES / "dod-release-as-text-2024-07-28.txt"
TITLE = "Joint Press Release for the ROK-U.S. Defense Ministerial Meeting"
ARTICLE = "https://www.defense.gov/News/Releases/Release/Article/3852401/joint-press-release/"
TAGLINE = (
    "This email was sent to reader@example.org using GovDelivery Communications Cloud on "
    "behalf of: U.S. Department of Defense · 1400 Defense Pentagon · Washington, DC 20301-1400"
)


def message(**fields: Any) -> ParsedMessage:
    defaults: dict[str, Any] = {
        "message_id": "m1@example.org",
        "subject": TITLE,
        "from_": Address("U.S. Department of Defense", "usdod@public.govdelivery.com"),
        "to": (Address("", "reader@example.org"),),
        "reply_to": (),
        "sent_at": datetime(2024, 7, 28, 12, 0, tzinfo=UTC),
        "headers": (("Date", "Sun, 28 Jul 2024 08:00:00 -0400"), ("X-Accountcode", "USDOD")),
        "text": None,
        "html": None,
    }
    return ParsedMessage(**(defaults | fields))


def release_of(msg: ParsedMessage) -> Release:
    result = extract_release(msg)
    assert isinstance(result, Release), result
    return result


def lnks_gd(url: str) -> str:
    claims = {"bulletin_id": "20240728.123456781", "url": url}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"https://lnks.gd/l/eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln/s/1/br/2-l"


@pytest.fixture(scope="module")
def sample() -> Release:
    lines = read_sample(DOD_TEXT).splitlines()
    text = "\n".join(lines[:-2])  # the last two lines are the blog's, not the mail's
    return release_of(message(text=text, headers=(("Date", "Sun, 28 Jul 2024 08:00:00 -0400"),)))


def test_sample_title_date_and_type(sample: Release) -> None:
    assert sample.title == TITLE
    assert (sample.release_date, sample.release_date_source) == ("2024-07-27", "body")
    assert sample.release_type == "release"
    assert sample.profile == "dod"


def test_sample_agency_and_subscriber_from_the_tagline(sample: Release) -> None:
    assert sample.agency == "U.S. Department of Defense"
    assert sample.sender.subscriber == "sajanram1986.channel@blogger.com"
    assert sample.account_code == "USDOD"  # the From local part on *.govdelivery.com


def test_sample_body_starts_and_ends_where_the_release_does(sample: Release) -> None:
    paragraphs = sample.body_text.split("\n\n")
    assert paragraphs[0].startswith("On July 28, 2024, Minister of National Defense Shin Wonsik")
    assert paragraphs[-1].endswith("in the Korean Peninsula and the Indo-Pacific region.")
    assert len(paragraphs) == 6


@pytest.mark.parametrize(
    "junk",
    ["Press Advisories", "HELP CENTER", "Unsubscribe", "This email was sent to", "Right",
     "View Online", "IMMEDIATE RELEASE", "July 27, 2024\n", "Facebook", "1400 Defense"],
)  # fmt: skip
def test_sample_body_has_no_header_navigation_or_footer(sample: Release, junk: str) -> None:
    assert junk not in sample.body_text
    assert junk.strip() not in sample.body_html


def dod_html(label: str = "Release", date_line: str = "July 27, 2024", url: str = ARTICLE) -> str:
    return (
        '<table id="yahoo"><tr><td id="header"><a href="https://www.defense.gov/">'
        '<img src="https://content.govdelivery.com/x/banner.png" alt=""></a></td></tr>'
        '<tr><td><img src="https://content.govdelivery.com/x/l.gif" alt="Left" width="20"></td>'
        f'<td id="main-body"><table><tr><td class="dod-type"><span>{label}</span></td>'
        f'<td><a href="{lnks_gd(url)}">View Online</a></td></tr></table>'
        '<p class="dod-status">IMMEDIATE RELEASE</p>'
        f'<h1 class="dod-title">{TITLE}</h1><p class="dod-date">{date_line}</p>'
        '<div class="dod-body"><p>First <a href="https://www.state.gov/x">paragraph</a>.</p>'
        "<p>Second paragraph.</p></div></td>"
        '<td><img src="https://content.govdelivery.com/x/r.gif" alt="Right"></td></tr>'
        '<tr><td id="main-footer"><table><tr><td>Press Advisories&nbsp;&nbsp; Releases</td></tr>'
        "<tr><td>ABOUT&nbsp; NEWS&nbsp; HELP CENTER&nbsp; PRESS PRODUCTS</td></tr>"
        '<tr><td><a href="https://www.facebook.com/DeptofDefense">'
        '<img src="https://content.govdelivery.com/x/fb.png" alt="Facebook"></a></td></tr>'
        '<tr><td><a href="https://public.govdelivery.com/accounts/USDOD/subscriber/edit">'
        "Unsubscribe</a> | Contact Us</td></tr></table></td></tr></table>"
        f'<div id="tagline">{TAGLINE}</div>'
        '<img src="https://links.govdelivery.com/track?type=open&enid=eA==" width="1" height="1">'
    )


def test_html_layout_gives_fields_and_clean_body() -> None:
    release = release_of(message(html=dod_html()))
    assert release.title == TITLE
    assert release.release_date == "2024-07-27"
    assert release.url == ARTICLE
    assert release.bulletin_id == "20240728.123456781"
    assert release.body_text == "First paragraph.\n\nSecond paragraph."
    assert release.body_html == (
        '<p>First <a href="https://www.state.gov/x" rel="noopener noreferrer nofollow">'
        "paragraph</a>.</p><p>Second paragraph.</p>"
    )
    assert [link.url for link in release.links] == ["https://www.state.gov/x"]
    assert release.sender.subscriber == "reader@example.org"


@pytest.mark.parametrize(
    ("label", "expected"),
    [("Release", "release"), ("Advisory", "advisory"), ("Press Advisory", "advisory"),
     ("Transcript", "transcript"), ("Speech", "speech"), ("Contracts", "contract"),
     ("Publication", "publication"), ("Releases", "release"), ("Feature", "story")],
)  # fmt: skip
def test_type_label_maps_to_release_type(label: str, expected: str) -> None:
    assert release_of(message(html=dod_html(label=label))).release_type == expected


def test_unknown_label_falls_back_to_the_article_url_section() -> None:
    url = "https://www.war.gov/News/Transcripts/Transcript/Article/4300001/briefing/"
    release = release_of(message(html=dod_html(label="Briefing", url=url)))
    assert release.release_type == "transcript"
    assert release.url == url


def test_department_of_war_name_and_host_are_accepted() -> None:
    url = "https://www.war.gov/News/Releases/Release/Article/4300002/x/"
    html = dod_html(url=url).replace("Department of Defense", "Department of War")
    msg = message(
        html=html, from_=Address("U.S. Department of War", "usdod@public.govdelivery.com")
    )
    release = release_of(msg)
    assert release.agency == "U.S. Department of War"
    assert release.url == url


def test_contracts_title_carries_the_date() -> None:
    text = (
        "Contract\n\nView Online\n\nIMMEDIATE RELEASE\n\nContracts For July 26, 2024\n\n"
        "ARMY\n\nAcme Corp., Springfield, was awarded a $10,000,000 contract.\n\n"
        f"Unsubscribe | Contact Us\n\n{TAGLINE}"
    )
    release = release_of(message(text=text, subject="Contracts For July 26, 2024"))
    assert release.release_type == "contract"
    assert release.release_date == "2024-07-26"
    assert release.body_text.startswith("ARMY\n\nAcme Corp.")


def test_text_part_links_in_brackets_give_the_url() -> None:
    text = (
        f"Release\n\nView Online [ {lnks_gd(ARTICLE)} ]\n\nIMMEDIATE RELEASE\n\n{TITLE}\n\n"
        f"Jul. 27, 2024 | 10:00 AM\n\nBody words.\n\nPress Advisories [ https://x.gov/a ]   "
        f"Releases [ https://x.gov/b ]\n\n{TAGLINE}"
    )
    release = release_of(message(text=text))
    assert release.url == ARTICLE
    assert release.release_date == "2024-07-27"
    assert release.body_text == "Body words."


def test_dod_mail_without_the_layout_falls_back_to_the_general_profile() -> None:
    html = f"<p>Holiday schedule for the Pentagon library.</p><p>{TAGLINE}</p>"
    release = release_of(message(html=html, subject="Library hours"))
    assert release.profile == "govdelivery"
    assert release.agency == "U.S. Department of Defense"
    assert release.body_text == "Holiday schedule for the Pentagon library."


def test_layout_reader_returns_none_without_any_anchor() -> None:
    assert (
        read_layout(text_blocks("Just a letter.\n\nNothing else."), join_title_lines=False) is None
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [("July 27, 2024", date(2024, 7, 27)), ("Jul. 27, 2024", date(2024, 7, 27)),
     ("Sept. 3, 2025", date(2025, 9, 3)), ("July 27, 2024 | 10:00 AM", date(2024, 7, 27)),
     ("Saturday, July 27, 2024", date(2024, 7, 27)), ("CONTRACTS FOR July 26, 2024",
     date(2024, 7, 26)), ("7/27/2024", date(2024, 7, 27)), ("On July 27, 2024, they met", None),
     ("Julia 27, 2024", None), ("February 30, 2024", None), ("", None)],
)  # fmt: skip
def test_date_lines(line: str, expected: date | None) -> None:
    assert parse_date_line(line) == expected
