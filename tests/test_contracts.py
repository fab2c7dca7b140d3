"""DoD contract announcements as rows: `parse_awards`, field by field, on real wording.

The fixtures in tests/data/contracts/ are real DoD award paragraphs (origins in
tests/data/README.md); each .json beside a .txt lists the rows a reader should get. The
paragraphs written inline below use made-up companies to pin one wording each.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govfeed.extract import extract_release
from govfeed.extract.contract_text import branch_name, completion_date, first_amount
from govfeed.extract.contracts import parse_awards
from govfeed.models import ContractAward, RawMessage, Release
from govfeed.parse import parse_message

DATA = Path(__file__).parent / "data"
FIXTURES = sorted((DATA / "contracts").glob("*.txt"))


def rows_of(awards: tuple[ContractAward, ...]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(award).items() if k != "paragraph"} for award in awards]


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda path: path.stem)
def test_each_real_announcement_gives_its_rows_field_by_field(fixture: Path) -> None:
    expected = json.loads(fixture.with_suffix(".json").read_text(encoding="utf-8"))["awards"]
    awards = parse_awards(fixture.read_text(encoding="utf-8"))
    assert len(awards) == len(expected)
    for award, want in zip(awards, expected, strict=True):
        assert award.paragraph.startswith(want.pop("paragraph_starts"))
        assert rows_of((award,))[0] == want


def one(paragraph: str, heading: str = "NAVY") -> dict[str, Any]:
    rows = rows_of(parse_awards(f"{heading}\n\n{paragraph}"))
    assert len(rows) == 1
    return rows[0]


# (paragraph, the fields it must give) for the wording DoD uses.
WORDING = [
    (
        "Acme Shipyard Inc., Norfolk, Virginia, has been awarded a modification (P00012) to "
        "previously awarded contract N00024-21-C-4100 for extra dry-dock days. Work will be "
        "performed in Norfolk, Virginia, and is expected to be completed by Aug. 5, 2026. "
        "Naval Sea Systems Command, Washington, D.C., is the contracting activity.",
        {"amount_usd": None, "contract_number": "N00024-21-C-4100", "is_modification": True,
         "completion_date": "2026-08-05", "contracting_activity":
         "Naval Sea Systems Command, Washington, D.C."},
    ),
    (
        "Beta Systems LLC,* Dayton, Ohio, is being awarded a $1.5 million cost-plus-fixed-fee "
        "contract for studies. Air Force Research Laboratory, Wright-Patterson Air Force Base, "
        "Ohio, is the contracting activity (FA8650-25-C-1234).",
        {"contractor": "Beta Systems LLC", "amount_usd": 1_500_000, "small_business": True,
         "contract_type": "cost-plus-fixed-fee", "contract_number": "FA8650-25-C-1234"},
    ),
    (
        "Kappa LLC, Mobile, Alabama, is awarded a $7,500,000 Firm Fixed Price, indefinite delivery"
        " indefinite quantity contract for berthing. Naval Facilities Engineering Systems Command,"
        " Norfolk, Virginia, is the contracting activity (N40085-25-D-0001).",
        {"contract_type": "firm-fixed-price, indefinite-delivery/indefinite-quantity"},
    ),
    (
        "Gamma Corp., Kongsberg, Norway, was awarded a $12,000,000 time-and-materials contract "
        "for spares. This contract involves Foreign Military Sales to Norway. Army Contracting "
        "Command, Warren, Michigan, is the contracting activity (W56HZV-25-C-0100).",
        {"contractor": "Gamma Corp.", "contractor_location": "Kongsberg, Norway",
         "contract_type": "time-and-materials", "contract_number": "W56HZV-25-C-0100"},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("paragraph", "fields"), WORDING)
def test_award_wording_gives_the_fields(paragraph: str, fields: dict[str, Any]) -> None:
    row = one(paragraph)
    assert {key: row[key] for key in fields} == fields


def test_the_following_companies_give_one_row_each_with_their_own_numbers() -> None:
    text = (
        "NAVY\n\nThe following companies are each awarded a firm-fixed-price multiple award "
        "contract for ship repair: Delta Marine LLC,* Mobile, Alabama (N00024-25-D-4401); and "
        "Epsilon Yards Inc., San Diego, California (N00024-25-D-4402). Work is expected to be "
        "completed by June 2030. Naval Sea Systems Command, Washington, D.C., is the "
        "contracting activity."
    )
    rows = rows_of(parse_awards(text))
    assert [(r["contractor"], r["contractor_location"], r["contract_number"],
             r["small_business"]) for r in rows] == [
        ("Delta Marine LLC", "Mobile, Alabama", "N00024-25-D-4401", True),
        ("Epsilon Yards Inc.", "San Diego, California", "N00024-25-D-4402", False),
    ]  # fmt: skip
    assert {r["completion_date"] for r in rows} == {"2030-06"}


def test_an_amount_stated_per_contractor_is_that_contractors() -> None:
    text = (
        "DEFENSE LOGISTICS AGENCY\n\nZeta Medical Inc., Charlotte, North Carolina "
        "(SPE2DF-26-D-0020, $49,500,000); and Eta Supply LLC,* Tampa, Florida (SPE2DF-26-D-0021, "
        "$12,000,000), have each been awarded a firm-fixed-price contract for dental supplies."
    )
    rows = rows_of(parse_awards(text))
    assert [(r["contractor"], r["amount_usd"], r["contract_number"]) for r in rows] == [
        ("Zeta Medical Inc.", 49_500_000, "SPE2DF-26-D-0020"),
        ("Eta Supply LLC", 12_000_000, "SPE2DF-26-D-0021"),
    ]


NOT_AWARDS = [
    "Contracts For July 26, 2024",
    "July 26, 2024",
    "*Small business",
    "**Mandatory source",
    "CORRECTION: The contract announced on July 25, 2024, for Acme Corp., Springfield, "
    "Illinois, was awarded on July 24, 2024.",
    "UPDATE: Theta LLC, Reno, Nevada (SPE2DF-26-D-0022, $4,000,000), has been added as an "
    "awardee to the multiple award contract announced on Jan. 3, 2026.",
    "The Defense Department announced contracts today.",
]


@pytest.mark.parametrize("paragraph", NOT_AWARDS)
def test_notes_titles_and_corrections_give_no_row(paragraph: str) -> None:
    assert parse_awards(f"ARMY\n\n{paragraph}") == ()


@pytest.mark.parametrize(
    ("heading", "name"),
    [
        ("ARMY", "Army"),
        ("NAVY", "Navy"),
        ("AIR FORCE", "Air Force"),
        ("SPACE FORCE", "Space Force"),
        ("DEFENSE LOGISTICS AGENCY", "Defense Logistics Agency"),
        ("MISSILE DEFENSE AGENCY", "Missile Defense Agency"),
        ("DEFENSE HEALTH AGENCY", "Defense Health Agency"),
        ("U.S. SPECIAL OPERATIONS COMMAND", "U.S. Special Operations Command"),
        ("WASHINGTON HEADQUARTERS SERVICES", "Washington Headquarters Services"),
        ("DEFENSE COUNTER-INTELLIGENCE AND SECURITY AGENCY",
         "Defense Counter-Intelligence and Security Agency"),
    ],
)  # fmt: skip
def test_section_headings_become_names(heading: str, name: str) -> None:
    assert branch_name(heading) == name


@pytest.mark.parametrize(
    ("sentence", "iso"),
    [
        ("with an estimated completion date of Sept. 27, 2031.", "2031-09-27"),
        ("and is expected to be completed by May 2025.", "2025-05"),
        ("and is expected to be completed in December 2026.", "2026-12"),
        ("The ordering period end date is July 25, 2025.", "2025-07-25"),
        ("with an Oct. 17, 2027, performance completion date.", "2027-10-17"),
        ("Fiscal 2024 funds were obligated on June 3, 2024.", None),
        ("with an estimated completion date of Febtober 31, 2026.", None),
    ],
)
def test_completion_dates_are_iso(sentence: str, iso: str | None) -> None:
    assert completion_date(sentence) == iso


def test_a_contracts_banner_is_no_branch() -> None:
    text = "CONTRACTS\n\nIota Inc., Austin, Texas, was awarded a $9,000,000 contract."
    assert rows_of(parse_awards(text))[0]["branch"] is None


def test_awards_before_any_heading_have_no_branch() -> None:
    text = "Iota Inc., Austin, Texas, was awarded a $9,000,000 contract (W9128Z-25-C-0001)."
    assert rows_of(parse_awards(text))[0]["branch"] is None


def release_from(name: str) -> Release:
    raw = (DATA / name).read_bytes()
    release = extract_release(parse_message(RawMessage(raw, name)))
    assert isinstance(release, Release)
    return release


def test_a_contracts_mail_carries_its_awards_through_extraction() -> None:
    release = release_from("dod-contract.eml")
    assert release.release_type == "contract"
    assert [(a.branch, a.contractor, a.amount_usd, a.contract_number, a.is_modification,
             a.small_business) for a in release.awards] == [
        ("Army", "Example Aerospace Corp.", 48_215_007, "W31P4Q-23-C-0042", True, False),
        ("Army", "Sample Construction Group LLC", 14_960_250, "W912DW-24-C-0031", False, True),
        ("Navy", "Northwind Shipyard Services Inc.", 22_480_330, "N00024-24-C-4410", False,
         False),
        ("Defense Logistics Agency", "Example Textiles Co.", 9_875_000, "SPE1C1-24-D-1187",
         False, True),
    ]  # fmt: skip
    textiles = release.awards[3]
    assert textiles.contract_type == "firm-fixed-price, indefinite-delivery/indefinite-quantity"
    assert textiles.contracting_activity == (
        "Defense Logistics Agency Troop Support, Philadelphia, Pennsylvania"
    )
    assert release.awards[2].completion_date == "2025-05"
    assert release.awards[0].paragraph in release.body_text


def test_other_releases_have_no_awards() -> None:
    assert release_from("dod-release.eml").awards == ()


@pytest.mark.parametrize(
    ("text", "amount"),
    [("$9,875,000", 9_875_000), ("$1.5 million", 1_500_000), ("$2.18 billion", 2_180_000_000),
     ("$99999999999999999999", None), ("$9,999,999,999,999,999,999", None), ("no amount", None)],
)  # fmt: skip
def test_amounts_are_whole_dollars_that_fit_sqlite(text: str, amount: int | None) -> None:
    assert first_amount(text) == amount


def test_a_huge_block_is_skipped_not_parsed() -> None:
    block = "Acme Corp., Reno, Nevada, was awarded a $1 contract. " + "x" * 30_000
    assert parse_awards(f"ARMY\n\n{block}") == ()


# Pieces of award wording, shuffled and repeated: the parser meets broken announcements
# (cut paragraphs, stray headings, numbers anywhere) and must give rows or nothing.
PIECES = [
    "ARMY", "NAVY", "\n\n", "Acme Corp.,* ", "Reno, Nevada", " (W912DY-24-C-0012)", "; and ",
    ", was awarded a ", "$9,875,000 ", "$99999999999999999999 ", "firm-fixed-price, ",
    "modification (P00012) to previously awarded contract N00024-21-C-4100", " contract for ",
    ". Work will be performed in ", "with an estimated completion date of Dec. 31, 2026",
    " is the contracting activity", "(", ")", ",", "The following companies are awarded:",
    "CORRECTION: ", "*Small business", "expected to be completed by May 2025", " hybrid (",
]  # fmt: skip


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60))
def test_any_arrangement_of_award_wording_gives_rows_or_nothing(pieces: list[str]) -> None:
    for award in parse_awards("".join(pieces)):
        assert award.contractor
        assert award.amount_usd is None or 0 <= award.amount_usd <= 10**15
        assert award.completion_date is None or re.fullmatch(
            r"\d{4}-\d{2}(?:-\d{2})?", award.completion_date
        )
