"""Extract: a parsed message in, a `Release` (or `Ignored`) out; pure, no I/O.

What counts as a bulletin: mail where GovDelivery is evident, in its headers
(`X-Accountcode`, a *.govdelivery.com sender, a GovDelivery List-Unsubscribe, GovDelivery
relays in Received) or in its body (the "using GovDelivery Communications Cloud on behalf
of" tagline, lnks.gd / links.govdelivery.com trackers, the `#yahoo` / `gd_ab_`
templates). No From address is hard-coded. GovDelivery's own account mail (subscription
confirmations, preference and password changes) and forwarded copies sent by a person
are `Ignored`, as is everything else.

Profiles: DoD / War releases (agency or From name "Department of Defense/War", account
USDOD, or a "View Online" link to a defense.gov / war.gov article) go through `dod`;
DoD mail without that layout, and every other bulletin, through `govdelivery`.

Decisions the stored fields rest on:
- release_date: the date line the release states (source "body"); else the mail's Date
  header as a calendar day in the sender's own time zone (source "mail"): a bulletin
  sent 2024-07-28 22:30 -0400 is a July 28 bulletin, although it is the 29th in UTC.
- release_type: DoD from the type label (Release/Statement/Readout -> release,
  Advisory -> advisory, Transcript, Speech, Contract(s), Publication, Feature/Story ->
  story), else from the article URL's section (/News/Releases/... -> release), else
  "contract" for a "Contracts For <date>" title, else "other". General bulletins:
  "other", unless the title starts "Press/News Release", "Statement", "Media/Press
  Advisory", "Transcript" or holds "Newsletter" (publication).
- bulletin_id: the mailing id ("20230109.69441521"): an X-Bulletin-Id / X-Mailing-Id
  header if present, else the `bulletin_id` of the first lnks.gd token that has one, else
  the `mailingid` in a links.govdelivery.com tracker's `enid`. The web copy's hex
  (`bulletins/340e6fc`) is another id space and is only part of `url`.
- title: the DoD layout's title line; general bulletins: `#main-headline` (or the
  Advanced template's headline), else the Subject.
- url: the View Online / "View in browser" target unwrapped and normalised; a tracker
  that cannot be decoded gives no URL rather than a subscriber-specific tracking link.
- privacy: every release passes `privacy.scrub_release` last: no greeting, subscriber
  address or per-recipient token reaches title, body, links or url.
"""

from __future__ import annotations

import dataclasses
import re

from govfeed.errors import ExtractError
from govfeed.extract.contracts import parse_awards
from govfeed.extract.dod import extract_dod, is_dod
from govfeed.extract.facts import Facts, gather_facts
from govfeed.extract.govdelivery import extract_govdelivery
from govfeed.extract.privacy import scrub_release, subscriber_of
from govfeed.models import Ignored, ParsedMessage, Release

__all__ = ["extract_release"]

_ACCOUNT_MAIL_SUBJECT = re.compile(
    r"subscription confirmation|confirm your (?:e-?mail|subscription)|"
    r"\bsubscription (?:has been |was )?(?:confirmed|updated|changed|received|request)|"
    r"welcome to .{0,80}(?:e-?mail updates|subscription|alerts)|"
    r"you(?:'ve| have) (?:been |successfully )?(?:un)?subscribed|"
    r"thank you for subscribing|your subscriptions?\b|subscriber preferences|"
    r"preferences (?:have been |were )?(?:updated|changed|saved)|"
    r"(?:reset|change) your password|password (?:reset|change)|email address (?:has been )?changed",
    re.IGNORECASE,
)
_ACCOUNT_MAIL_BODY = (
    "thank you for subscribing",
    "you have successfully subscribed",
    "you are now subscribed",
    "your subscription has been",
    "your subscriptions have been",
    "confirm your subscription",
    "confirm your email address",
    "your preferences have been",
    "you have been unsubscribed",
    "you have successfully unsubscribed",
    "welcome to our email updates",
)
# Every subject pattern and body phrase above holds one of these (a cheap first test).
_ACCOUNT_WORDS = ("subscri", "preferences", "password", "welcome", "confirm", "email address")
_FORWARDED_SUBJECT = re.compile(r"^\s*(?:fwd?|fw|wg|tr)\s*:", re.IGNORECASE)
_FORWARDED_BODY = ("---------- forwarded message", "begin forwarded message", "-----original")


def extract_release(msg: ParsedMessage) -> Release | Ignored:
    """The release `msg` carries; `Ignored(reason)` for mail that is no bulletin.

    Raises ExtractError when a bulletin is recognised but has no title, no date or no
    body to store.
    """
    facts = gather_facts(msg)
    reason = _not_a_bulletin(msg, facts)
    if reason:
        return Ignored(reason)
    release = extract_dod(msg, facts) if is_dod(msg, facts) else None
    if release is None:  # not DoD, or DoD mail without the release layout
        release = extract_govdelivery(msg, facts)
    release = scrub_release(release, subscriber_of(msg, facts.sender.subscriber))
    _check(release)
    if release.release_type == "contract":  # one row per award (contract_awards)
        release = dataclasses.replace(release, awards=parse_awards(release.body_text))
    return release


def _not_a_bulletin(msg: ParsedMessage, facts: Facts) -> str | None:
    if not facts.is_govdelivery:
        return "not a GovDelivery bulletin (no X-Accountcode, sender, tagline or trackers)"
    if not facts.header_evidence and _forwarded(msg, facts.text):
        return "a forwarded copy of a bulletin, not mail from GovDelivery"
    subject = msg.subject[:300]
    lowered = subject.lower()
    if any(word in lowered for word in _ACCOUNT_WORDS) and _ACCOUNT_MAIL_SUBJECT.search(subject):
        return "GovDelivery subscription or preferences mail, not a bulletin"
    opening = _opening_text(msg, facts)
    if any(word in opening for word in _ACCOUNT_WORDS) and any(
        phrase in opening for phrase in _ACCOUNT_MAIL_BODY
    ):
        return "GovDelivery subscription or preferences mail, not a bulletin"
    return None


def _forwarded(msg: ParsedMessage, text: str) -> bool:
    if _FORWARDED_SUBJECT.match(msg.subject):
        return True
    head = (text or msg.html or "")[:5000].lower()
    return any(marker in head for marker in _FORWARDED_BODY)


def _opening_text(msg: ParsedMessage, facts: Facts) -> str:
    """The first few hundred characters a reader sees, lower-cased."""
    if facts.text:
        source = facts.text[:2000]
    elif facts.tree is not None and facts.tree.body is not None:
        source = facts.tree.body.text(separator=" ")[:2000]
    else:
        source = ""
    return " ".join(source.lower().split())[:600]


def _check(release: Release) -> None:
    if not release.title:
        raise ExtractError("GovDelivery bulletin without a title: no headline and no Subject")
    if not release.release_date:
        raise ExtractError("GovDelivery bulletin without a date: no date line and no Date header")
    if not release.body_text and not release.body_html:
        raise ExtractError(f"GovDelivery bulletin {release.title!r} has no body text")
