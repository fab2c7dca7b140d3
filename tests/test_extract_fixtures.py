"""Every fixture in tests/data/ through parse and extract, field by field.

The expectations are tests/data/expected.json (written by the corpus from the inputs of
each mail, not by parsing it), with the few places where extract decides otherwise
stated in EXTRACT_DECIDES below.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from govfeed.errors import ExtractError, ParseError
from govfeed.extract import extract_release
from govfeed.extract.links import is_tracker
from govfeed.models import Ignored, RawMessage, Release
from govfeed.parse import parse_message

DATA = Path(__file__).parent / "data"
EXPECTED: dict[str, dict[str, Any]] = json.loads((DATA / "expected.json").read_text("utf-8"))
RELEASE_FIELDS = (
    "title",
    "release_date",
    "release_date_source",
    "release_type",
    "agency",
    "account_code",
    "bulletin_id",
    "url",
    "body_text",
    "profile",
)
# Where extract deliberately differs from expected.json (see the extract README notes):
EXTRACT_DECIDES: dict[str, dict[str, str]] = {
    # The headline (#main-headline) is the title; the Subject only when there is none.
    "govdelivery-standard.eml": {"title": "Don’t wait any longer! Find coverage by Jan. 15"},
    # A gd_ab_ button is a call to action, body like the standard template's
    # #call-to-action, so its words stay in the body.
    "govdelivery-advanced.eml": {
        "body_text": EXPECTED["govdelivery-advanced.eml"]["body_text"] + "\n\nSee the detour map"
    },
}


def extract_fixture(name: str) -> Release | Ignored:
    raw = RawMessage((DATA / name).read_bytes(), str(DATA / name))
    return extract_release(parse_message(raw))


def expected(name: str) -> dict[str, Any]:
    return EXPECTED[name] | EXTRACT_DECIDES.get(name, {})


def test_every_fixture_has_expectations() -> None:
    on_disk = {str(p.relative_to(DATA)) for p in DATA.rglob("*.eml")}
    malformed = {name for name in on_disk if name.startswith("malformed/")}
    corpus = {name for name in on_disk if name.startswith("corpus/")}  # corpus/corpus.json
    assert on_disk - malformed - corpus == set(EXPECTED)


RELEASES = sorted(name for name, want in EXPECTED.items() if want["kind"] == "release")
IGNORED = sorted(name for name, want in EXPECTED.items() if want["kind"] == "ignored")


@pytest.mark.parametrize("name", RELEASES)
def test_release_fields(name: str) -> None:
    release = extract_fixture(name)
    assert isinstance(release, Release)
    want = expected(name)
    got = {field: getattr(release, field) for field in RELEASE_FIELDS if field in want}
    assert got == {field: want[field] for field in RELEASE_FIELDS if field in want}
    assert release.body_text.split("\n\n")[0] == want["first_paragraph"]


@pytest.mark.parametrize("name", RELEASES)
def test_release_sender(name: str) -> None:
    release = extract_fixture(name)
    assert isinstance(release, Release)
    want = expected(name)
    assert release.sender.subscriber == want["subscriber"]
    assert release.sender.from_name == want["from_name"]
    assert release.sender.from_address == want["from_address"]
    assert release.sender.list_unsubscribe  # every fixture bulletin has the header


@pytest.mark.parametrize("name", RELEASES)
def test_release_html_and_links_are_clean(name: str) -> None:
    release = extract_fixture(name)
    assert isinstance(release, Release)
    for bad in ("style=", "<script", "<table", "lnks.gd", "govdelivery.com/track", "/CL0/"):
        assert bad not in release.body_html
    for junk in ("Unsubscribe", "This email was sent to", "Subscriber Preferences"):
        assert junk not in release.body_text
        assert junk not in release.body_html
    assert all(not is_tracker(link.url) for link in release.links)
    assert "\n\n\n" not in release.body_text


@pytest.mark.parametrize("name", IGNORED)
def test_non_bulletins_are_ignored(name: str) -> None:
    assert isinstance(extract_fixture(name), Ignored)


def test_the_second_topic_copy_is_the_same_release() -> None:
    first, second = extract_fixture("dod-release.eml"), extract_fixture("dod-release-topic2.eml")
    assert isinstance(first, Release)
    assert isinstance(second, Release)
    assert (first.bulletin_id, first.body_text, first.url) == (
        second.bulletin_id,
        second.body_text,
        second.url,
    )
    assert second.sender.subscriber == "subscriber+usdod2@example.org"


def test_advisory_double_wrapped_link_is_unwrapped() -> None:
    release = extract_fixture("dod-advisory.eml")
    assert isinstance(release, Release)
    assert [link.url for link in release.links] == [
        "https://www.defense.gov/News/Advisories/",
        "https://www.defense.gov/",
    ]


MALFORMED = sorted(str(p.relative_to(DATA)) for p in (DATA / "malformed").glob("*.eml"))


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_mail_gives_a_result_or_a_clear_error(name: str) -> None:
    try:
        parsed = parse_message(RawMessage((DATA / name).read_bytes(), name))
    except ParseError:
        return  # parse's business; extract never sees it
    try:
        result = extract_release(parsed)
    except ExtractError:
        return  # stored as failed, with the message; the batch goes on
    if isinstance(result, Release):
        assert result.title
        assert len(result.release_date) == 10
        assert result.release_type in ("release", "advisory", "transcript", "speech",
                                       "contract", "publication", "story", "other")  # fmt: skip


@pytest.mark.slow
def test_twenty_megabyte_message_is_extracted() -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
    import mailgen  # examples/ is not a package

    parsed = parse_message(RawMessage(mailgen.big_message(20_000_000), "big"))
    result = extract_release(parsed)
    assert isinstance(result, Release)
    assert result.release_type == "publication"
