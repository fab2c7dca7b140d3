"""decide.py, table by table: every trust rule is a row, every known attack is a row.

`assess` turns the authenticated facts of one message into who sent it, which agency the
release may carry and whether it is published; `decide` turns that and what the database
holds into the writer's action. Both are pure: no mail, no database here (tests/test_trust.py
mounts the same attacks as real mail through `govfeed import`).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from govfeed.config import DEFAULT_AGENCIES, AuthenticationSettings, trust_policy
from govfeed.decide import (
    Agency,
    Candidate,
    Decision,
    SenderFacts,
    StoredMessage,
    StoredRelease,
    assess,
    decide,
    find_agency,
    sender_identity,
)

DOD = "U.S. Department of Defense"
OXFORD = Agency("Oxford City Council", (), ("UKOXFORD",), ("youroxford@public.govdelivery.com",))
REGISTRY = (*trust_policy(AuthenticationSettings(), DEFAULT_AGENCIES).registry, OXFORD)

# A genuine DoD bulletin: DKIM pass for public.govdelivery.com, From USDOD@...
GENUINE = SenderFacts(
    from_address="usdod@public.govdelivery.com",
    from_name=DOD,
    auth_result="pass",
    auth_action="publish",
    auth_reason="mx.google.com: dkim=pass, aligned with From public.govdelivery.com",
    unauthenticated="quarantine",
    header_account="USDOD",
    list_account="USDOD",
    signed=frozenset({"from", "to", "subject", "list-unsubscribe"}),
)
COUNTY = replace(
    GENUINE,
    from_address="excounty@public.govdelivery.com",
    from_name="Example County",
    header_account="EXCOUNTY",
    list_account="EXCOUNTY",
)
UNAUTHENTICATED = replace(
    GENUINE,
    auth_result="none",
    auth_action="quarantine",
    auth_reason="no Authentication-Results from mx.google.com",
)


# (what, sender facts, agency as the mail writes it) -> (status, sender, agency, reason has)
ASSESS_ROWS = [
    (
        "DoD's own account, as written",
        GENUINE,
        DOD,
        ("published", "account:USDOD", DOD, None),
    ),
    (
        "renamed: 'Department of War' mail from DoD's account is DoD, as written kept",
        replace(GENUINE, from_name="U.S. Department of War"),
        "U.S. Department of War",
        ("published", "account:USDOD", DOD, None),
    ),
    (
        "the account's address in any case",
        replace(GENUINE, from_address="USDOD@Public.GovDelivery.com".lower()),
        DOD,
        ("published", "account:USDOD", DOD, None),
    ),
    (
        "DoD's own domain (defense.gov, any name under it)",
        replace(GENUINE, from_address="news@media.defense.gov", header_account=None),
        "Department of Defense",
        ("published", "domain:media.defense.gov", DOD, None),
    ),
    (
        "war.gov is DoD's too",
        replace(GENUINE, from_address="press@war.gov", header_account=None, list_account=None),
        "Department of War",
        ("published", "domain:war.gov", DOD, None),
    ),
    (
        "attack 3, impersonation: another GovDelivery account writes DoD's name",
        COUNTY,
        DOD,
        ("quarantined", "account:EXCOUNTY", DOD, f"claims {DOD}; sent by account EXCOUNTY"),
    ),
    (
        "impersonation by an alias, with punctuation and 'the'",
        COUNTY,
        "the Department of War.",
        ("quarantined", "account:EXCOUNTY", "the Department of War.", "claims " + DOD),
    ),
    (
        "impersonation in the From display name only",
        replace(COUNTY, from_name="U.S. Department of Defense"),
        "Example County",
        ("quarantined", "account:EXCOUNTY", "Example County", "claims " + DOD),
    ),
    (
        "a look-alike domain is not DoD's",
        replace(COUNTY, from_address="press@defense.gov.example.com", header_account=None),
        DOD,
        ("quarantined", "domain:defense.gov.example.com", DOD, "sent by domain"),
    ),
    (
        "a longer, different name is no claim (DoD Education Activity)",
        COUNTY,
        "Department of Defense Education Activity",
        ("published", "account:EXCOUNTY", "Department of Defense Education Activity", None),
    ),
    (
        "an unregistered account publishes under its own name",
        COUNTY,
        "Example County",
        ("published", "account:EXCOUNTY", "Example County", None),
    ),
    (
        "no name at all: the From display name",
        COUNTY,
        None,
        ("published", "account:EXCOUNTY", "Example County", None),
    ),
    (
        "an unsigned X-Accountcode that disagrees with the account",
        replace(GENUINE, header_account="EXCOUNTY"),
        DOD,
        ("quarantined", "account:USDOD", DOD, "X-Accountcode names account EXCOUNTY"),
    ),
    (
        "an unsigned X-Accountcode cannot make a county DoD",
        replace(COUNTY, header_account="USDOD"),
        DOD,
        ("quarantined", "account:EXCOUNTY", DOD, "X-Accountcode names account USDOD"),
    ),
    (
        "a signed List-Unsubscribe names the account of a custom sender name",
        replace(
            GENUINE,
            from_address="youroxford@public.govdelivery.com",
            header_account="UKOXFORD",
            list_account="UKOXFORD",
        ),
        "Oxford City Council",
        ("published", "account:UKOXFORD", "Oxford City Council", None),
    ),
    (
        "an unsigned List-Unsubscribe cannot name the account",
        replace(
            GENUINE,
            from_address="youroxford@public.govdelivery.com",
            header_account=None,
            list_account="USDOD",
            signed=frozenset({"from"}),
        ),
        DOD,
        (
            "quarantined",
            "account:YOUROXFORD",
            "Oxford City Council",
            "List-Unsubscribe names account USDOD",
        ),
    ),
    (
        "not authenticated, quarantine policy: quarantined with the verifier's reason",
        UNAUTHENTICATED,
        DOD,
        (
            "quarantined",
            "unverified:usdod@public.govdelivery.com",
            None,
            "no Authentication-Results from mx.google.com",
        ),
    ),
    (
        "not authenticated, publish policy: the From address is believed",
        replace(UNAUTHENTICATED, auth_action="publish", unauthenticated="publish"),
        DOD,
        ("published", "unverified:usdod@public.govdelivery.com", DOD, None),
    ),
    (
        "not authenticated, publish policy: a county still cannot be DoD",
        replace(COUNTY, auth_result="none", unauthenticated="publish"),
        DOD,
        ("quarantined", "unverified:excounty@public.govdelivery.com", DOD, "claims " + DOD),
    ),
    (
        "reject policy: rejected",
        replace(UNAUTHENTICATED, auth_action="reject", unauthenticated="reject"),
        DOD,
        ("rejected", "unverified:usdod@public.govdelivery.com", None, "no Authentication-Results"),
    ),
]


@pytest.mark.parametrize(
    ("facts", "written", "expected"),
    [row[1:] for row in ASSESS_ROWS],
    ids=[row[0] for row in ASSESS_ROWS],
)
def test_assess(facts: SenderFacts, written: str | None, expected: tuple[object, ...]) -> None:
    status, sender, agency, reason = expected
    got = assess(facts, REGISTRY, is_release=True, agency_as_written=written)
    assert (got.status, got.sender) == (status, sender)
    if status == "published" or agency is not None:
        assert got.agency == agency
    assert got.agency_as_written == written
    if reason is None:
        assert got.reason is None
    else:
        assert reason in str(got.reason)


def test_a_message_that_is_no_release_is_judged_for_its_sender_only() -> None:
    got = assess(COUNTY, REGISTRY, is_release=False, agency_as_written=None)
    assert (got.status, got.sender, got.agency) == ("published", "account:EXCOUNTY", None)


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("U.S. Department of Defense", DOD),
        ("US DEPARTMENT OF WAR", DOD),
        ("The Department of Defense (DoD)", DOD),
        ("Department of Defense Education Activity", None),
        ("Example County", None),
        ("", None),
        (None, None),
        ("...", None),
    ],
)
def test_find_agency_by_name_or_alias(name: str | None, found: str | None) -> None:
    agency = find_agency(REGISTRY, name)
    assert (agency.name if agency else None) == found


def test_identity_of_a_non_govdelivery_sender_is_its_domain() -> None:
    facts = replace(GENUINE, from_address="pat@example.net", header_account=None)
    assert sender_identity(facts) == ("domain:example.net", True)
    assert sender_identity(replace(facts, auth_result="fail")) == (
        "unverified:pat@example.net",
        False,
    )


# -- the writer's decision ---------------------------------------------------------------

NEW = Candidate("published", "account:USDOD", "body1")
HELD = Candidate("quarantined", "unverified:usdod@public.govdelivery.com", "body1", "no AR")
SAME_COPY = StoredMessage(7, "account:USDOD", "body1", "stored", 3)
NOTE = StoredMessage(5, "domain:example.net", "note", "ignored", None)
PUBLISHED = StoredRelease(3, "published", has_content=True)
QUARANTINED = StoredRelease(3, "quarantined", has_content=False)

DECIDE_ROWS = [
    ("a new release", NEW, (), None, Decision("new_release", "stored", "published")),
    (
        "same sender, same Message-ID, same body: a duplicate of it",
        NEW,
        (SAME_COPY,),
        PUBLISHED,
        Decision("duplicate", "duplicate", release_id=3, duplicate_of=7),
    ),
    (
        "attack 1, suppression: another sender's mail under the Message-ID, first",
        NEW,
        (NOTE,),
        None,
        Decision("new_release", "stored", "published", clash_with=5),
    ),
    (
        "same sender, other body under one Message-ID: both kept, clash recorded",
        replace(NEW, body_sha256="body2"),
        (SAME_COPY,),
        PUBLISHED,
        Decision("same_release", "stored", "published", release_id=3, clash_with=7),
    ),
    (
        "a forged copy under the real Message-ID is no duplicate of it either",
        HELD,
        (SAME_COPY,),
        None,
        Decision("new_release", "quarantined", "quarantined", clash_with=7, reason="no AR"),
    ),
    (
        "a known text of a known release: one more copy",
        NEW,
        (),
        PUBLISHED,
        Decision("same_release", "stored", "published", release_id=3),
    ),
    (
        "a changed text of a known release: a new version",
        NEW,
        (),
        replace(PUBLISHED, has_content=False),
        Decision("new_version", "stored", "published", release_id=3),
    ),
    (
        "a quarantined copy of a published release changes nothing",
        replace(HELD, sender="account:USDOD"),
        (),
        PUBLISHED,
        Decision("held", "quarantined", "published", release_id=3, reason="no AR"),
    ),
    (
        "the first published copy of a quarantined release publishes it",
        NEW,
        (),
        QUARANTINED,
        Decision("promoted", "stored", "published", release_id=3),
    ),
    (
        "failed mail is kept with its error",
        Candidate("failed", None, "x", "parse: junk"),
        (),
        None,
        Decision("failed", "failed", reason="parse: junk"),
    ),
    (
        "rejected mail is a failed message",
        Candidate("rejected", "unverified:a@b.c", "x", "forged"),
        (),
        None,
        Decision("rejected", "failed", reason="forged"),
    ),
    (
        "ignored mail that clashes with a bulletin's Message-ID",
        Candidate("ignored", "domain:example.net", "note", "a personal note"),
        (SAME_COPY,),
        None,
        Decision("ignored", "ignored", clash_with=7, reason="a personal note"),
    ),
]


@pytest.mark.parametrize(
    ("candidate", "same", "release", "expected"),
    [row[1:] for row in DECIDE_ROWS],
    ids=[row[0] for row in DECIDE_ROWS],
)
def test_decide(
    candidate: Candidate,
    same: tuple[StoredMessage, ...],
    release: StoredRelease | None,
    expected: Decision,
) -> None:
    assert decide(candidate, same, release) == expected
