"""Release identity: bulletin id, canonical URL, fingerprint; content hash for versions."""

from __future__ import annotations

from dataclasses import replace

from govfeed import dedupe
from govfeed.models import Release

BASE = Release(
    title="Joint Press Release",
    release_date="2024-07-27",
    release_date_source="body",
    release_type="release",
    agency="U.S. Department of Defense",
    account_code="USDOD",
    bulletin_id="20240728.1",
    url="https://www.defense.gov/News/Releases/Release/Article/3852401/joint-press-release/",
    body_text="First paragraph.\n\nSecond paragraph.",
    body_html="<p>First paragraph.</p><p>Second paragraph.</p>",
    profile="dod",
)


def fingerprint(release: Release) -> str:
    return dedupe.identify(release).keys[-1]


def test_keys_strongest_first() -> None:
    keys = dedupe.identify(BASE).keys
    assert keys[0] == "bulletin:20240728.1"
    assert (
        keys[1]
        == "url:https://defense.gov/news/releases/release/article/3852401/joint-press-release"
    )
    assert keys[2].startswith("fingerprint:")


def test_war_gov_and_defense_gov_are_the_same_article() -> None:
    war = replace(
        BASE, url="https://www.war.gov/News/Releases/Release/Article/3852401/joint-press-release"
    )
    assert dedupe.canonical_url(war.url) == dedupe.canonical_url(BASE.url)


def test_generic_urls_are_no_identity() -> None:
    assert dedupe.canonical_url("https://www.defense.gov/") is None
    assert dedupe.canonical_url("mailto:x@y") is None
    assert (
        dedupe.canonical_url("https://content.govdelivery.com/accounts/USCMSHIM/bulletins/340e6fc")
        == "https://content.govdelivery.com/accounts/uscmshim/bulletins/340e6fc"
    )


def test_fingerprint_ignores_case_punctuation_and_spacing() -> None:
    noisy = replace(
        BASE,
        bulletin_id=None,
        url=None,
        title="JOINT  press release!",
        body_text="First   paragraph\n\n\nSecond paragraph",
    )
    assert fingerprint(noisy) == fingerprint(BASE)
    assert fingerprint(replace(BASE, agency="Other")) != fingerprint(BASE)


def test_lookup_never_merges_bulletins_by_fingerprint_alone() -> None:
    assert not any(k.startswith("fingerprint:") for k in dedupe.identify(BASE).lookup)
    no_id = replace(BASE, bulletin_id=None)
    assert dedupe.identify(no_id).lookup[-1].startswith("fingerprint:")


def test_content_hash_changes_with_the_body_only() -> None:
    assert (
        dedupe.identify(replace(BASE, bulletin_id="other")).content_hash
        == dedupe.identify(BASE).content_hash
    )
    changed = replace(BASE, body_text=BASE.body_text + " Corrected.")
    assert dedupe.identify(changed).content_hash != dedupe.identify(BASE).content_hash
