"""Who sent what, and what becomes of it: every trust rule of govfeed, pure and typed.

Two steps, both pure functions of frozen data:

- `assess` (in the parsing workers): from the authenticated facts of one message (the
  sender verdict of auth.py, the From address, the headers' account claims) and what
  extraction made of it, decide who the sender is (`account:USDOD`, `domain:example.gov`,
  `unverified:someone@example.org`), which agency the release may carry (the registry's
  canonical name, only for that agency's own senders), and whether it is published,
  quarantined (with the reason) or rejected.
- `decide` (in the writer, with what the database holds): whether the message is a
  duplicate of a stored one, a new release, a new version of one, one more copy of one, or
  held back; and whether its Message-ID clashes with another sender's message.

Rules (docs/trust.md explains them for operators; tests/test_decide.py has one row each):
1. Identity comes from authenticated facts only. For GovDelivery's shared domains the
   account is what GovDelivery's own signature says: an X-Accountcode or List-Unsubscribe
   account the DKIM signature covers, else the authenticated From address's local part
   (GovDelivery lets an account send only as itself; a few accounts send under a name of
   their own, such as YourOxford for UKOXFORD, and then the signed List-Unsubscribe names
   the account); elsewhere the sender is the authenticated From domain. An unsigned
   X-Accountcode or List-Unsubscribe account that disagrees is a reason to quarantine,
   never a source of identity. Unauthenticated mail is `unverified:<From address>`; when
   the operator's policy publishes unauthenticated mail, its From address is believed.
2. A release carries a registered agency's name only when its sender is one of that
   agency's own accounts or senders; a release that claims one otherwise is quarantined
   ("claims U.S. Department of Defense; sent by account EXCOUNTY"). Unregistered senders
   publish under their own name.
3. Release keys are scoped by sender, so no sender's mail can merge into, version or
   rewrite another sender's release.
4. Same raw bytes are one message (checked before analysis). Same Message-ID is a duplicate
   only with the same sender and the same body bytes; otherwise both are kept and the
   clash is recorded.
5. A quarantined copy never changes a published release; the first published copy of a
   quarantined release (same sender) replaces what it said and publishes it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Status = Literal["published", "quarantined", "rejected", "ignored", "failed"]
Policy = Literal["publish", "quarantine", "reject"]

# From domains GovDelivery sends every customer's mail from: the local part is the account.
GOVDELIVERY_DOMAINS = ("govdelivery.com",)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_ACCOUNT = re.compile(r"[A-Z0-9_]{2,40}")
_LEADING_THE = re.compile(r"^the\s+", re.IGNORECASE)
_TRAILING_NOTE = re.compile(r"\s*\([^)]{0,40}\)\s*$")


@dataclass(frozen=True, slots=True)
class Agency:
    """One registry entry (a plain copy of config.AgencySettings, picklable for workers)."""

    name: str
    aliases: tuple[str, ...] = ()
    account_codes: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()  # lower-case addresses, or domains (with any name under them)


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """The trust configuration one message is judged by: a mailbox's [authentication]
    settings (overrides applied) and the agency registry. Plain data, so the parsing
    workers get it without pydantic; it is what auth.AuthPolicy reads too."""

    trusted_authserv_ids: tuple[str, ...] = ()
    unauthenticated: Policy = "quarantine"
    sender_domains: tuple[str, ...] = ()
    dkim_verify: bool = False
    registry: tuple[Agency, ...] = ()


@dataclass(frozen=True, slots=True)
class SenderFacts:
    """The authenticated facts about one message's sender, and the claims beside them."""

    from_address: str | None  # lower-cased
    from_name: str | None
    auth_result: Literal["pass", "fail", "none"]  # auth.Verdict.result
    auth_action: Policy  # auth.Verdict.action: the mailbox policy applied to the evidence
    auth_reason: str  # auth.Verdict.reason
    unauthenticated: Policy  # the mailbox's policy for unauthenticated mail
    header_account: str | None = None  # X-Accountcode, as the (possibly unsigned) header says
    list_account: str | None = None  # the account a List-Unsubscribe URL names
    signed: frozenset[str] = frozenset()  # headers the authenticating signature covers


@dataclass(frozen=True, slots=True)
class Assessment:
    """What `assess` made of one message: who sent it and what becomes of it."""

    status: Status
    sender: str  # "account:USDOD", "domain:example.gov" or "unverified:<address>"
    agency: str | None = None  # the registry's canonical name, else the name as written
    agency_as_written: str | None = None
    reason: str | None = None  # why quarantined, rejected, ignored or failed


def assess(
    facts: SenderFacts,
    registry: Sequence[Agency],
    *,
    is_release: bool,
    agency_as_written: str | None = None,
) -> Assessment:
    """Judge one analysed message: `is_release` when extraction made a release of it."""
    sender, believed = sender_identity(facts)
    if not is_release:
        return Assessment("published", sender)
    own = _own_agency(registry, sender, facts.from_address) if believed else None
    claimed = find_agency(registry, agency_as_written) or find_agency(registry, facts.from_name)
    agency = own.name if own else agency_as_written or facts.from_name or None
    base = Assessment("published", sender, agency, agency_as_written)
    if facts.auth_action == "reject":
        return _held(base, "rejected", facts.auth_reason)
    if facts.auth_action == "quarantine":
        return _held(base, "quarantined", facts.auth_reason)
    mismatch = _account_mismatch(sender, facts)
    if mismatch:
        return _held(base, "quarantined", mismatch)
    if claimed is not None and claimed != own:
        return _held(base, "quarantined", f"claims {claimed.name}; sent by {describe(sender)}")
    return base


def _held(base: Assessment, status: Status, reason: str) -> Assessment:
    return Assessment(status, base.sender, base.agency, base.agency_as_written, reason)


def sender_identity(facts: SenderFacts) -> tuple[str, bool]:
    """(the sender identity, whether its From address is believed).

    Believed: authenticated (an aligned DKIM or DMARC pass for the From domain), or the
    operator's policy publishes unauthenticated mail (then the From address is taken at its
    word, and the identity still says `unverified:`).
    """
    address = facts.from_address or ""
    local, _, domain = address.rpartition("@")
    if facts.auth_result != "pass":
        return f"unverified:{address}", facts.unauthenticated == "publish"
    if _under(domain, GOVDELIVERY_DOMAINS):
        account = _signed_account(facts) or local.upper()
        if _ACCOUNT.fullmatch(account):
            return f"account:{account}", True
    return f"domain:{domain}", True


def _signed_account(facts: SenderFacts) -> str | None:
    """The account a header the authenticating signature covers names, if any."""
    for header, claim in (
        ("x-accountcode", facts.header_account),
        ("list-unsubscribe", facts.list_account),
    ):
        if claim and header in facts.signed:
            return claim.strip().upper()
    return None


def describe(sender: str) -> str:
    """`account:EXCOUNTY` -> "account EXCOUNTY", for reasons people read."""
    kind, _, who = sender.partition(":")
    if kind == "unverified":
        return f"unverified sender {who or '(no From address)'}"
    return f"{kind} {who}"


def find_agency(registry: Sequence[Agency], name: str | None) -> Agency | None:
    """The registered agency `name` names (its name or an alias), compared without case,
    punctuation, a leading "the" or a short trailing note in parentheses."""
    if not name:
        return None
    wanted = _name_key(name)
    if not wanted:
        return None
    for agency in registry:
        if any(_name_key(known) == wanted for known in (agency.name, *agency.aliases)):
            return agency
    return None


@lru_cache(maxsize=1024)  # the registry's names come up for every message
def _name_key(name: str) -> str:
    text = _TRAILING_NOTE.sub("", _LEADING_THE.sub("", name.strip()[:300]))
    text = unicodedata.normalize("NFKD", text.casefold())
    return _NOT_ALNUM.sub("", text)


def _own_agency(registry: Sequence[Agency], sender: str, address: str | None) -> Agency | None:
    """The agency whose own account or sender this is."""
    kind, _, who = sender.partition(":")
    address = (address or "").lower()
    domain = address.rpartition("@")[2]
    for agency in registry:
        if kind == "account" and who in agency.account_codes:
            return agency
        for entry in agency.senders:
            if "@" in entry:
                if entry == address:
                    return agency
            elif kind != "account" and domain and _under(domain, (entry,)):
                return agency
    return None


def _account_mismatch(sender: str, facts: SenderFacts) -> str | None:
    kind, _, account = sender.partition(":")
    if kind != "account":
        return None
    for label, claim in (
        ("X-Accountcode", facts.header_account),
        ("List-Unsubscribe", facts.list_account),
    ):
        if claim and claim.upper() != account:
            return f"{label} names account {claim.upper()}; sent by account {account}"
    return None


def _under(domain: str, parents: Sequence[str]) -> bool:
    return any(domain == parent or domain.endswith("." + parent) for parent in parents)


# -- the writer's decision -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message already stored under the candidate's Message-ID."""

    pk: int
    sender: str | None
    body_sha256: str | None
    status: str
    release_id: int | None


@dataclass(frozen=True, slots=True)
class StoredRelease:
    """The release the candidate's (sender-scoped) keys find, if any."""

    id: int
    status: str  # published | quarantined
    has_content: bool  # a version with the candidate's content hash exists


@dataclass(frozen=True, slots=True)
class Candidate:
    """The writer's view of one analysed message."""

    status: Status
    sender: str | None  # None when the message could not be read
    body_sha256: str | None
    reason: str | None = None


Kind = Literal[
    "duplicate",  # same sender, same Message-ID, same body: stored, adds nothing
    "failed",
    "rejected",
    "ignored",
    "new_release",
    "new_version",  # a known release with a text not seen before
    "same_release",  # one more copy of a known text
    "held",  # a quarantined copy of a published release: nothing changes
    "promoted",  # the first published copy of a quarantined release: replaces and publishes
]


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    message_status: str  # messages.status: stored|duplicate|failed|quarantined|ignored
    release_status: str | None = None  # published|quarantined for a release it makes or joins
    release_id: int | None = None  # the known release it joins (or its duplicate's)
    duplicate_of: int | None = None
    clash_with: int | None = None  # a stored message with this Message-ID, other sender/body
    reason: str | None = None


def decide(
    candidate: Candidate,
    same_message_id: Sequence[StoredMessage] = (),
    release: StoredRelease | None = None,
) -> Decision:
    """What storing `candidate` does, given the messages stored under its Message-ID (oldest
    first, duplicates excluded) and the release its keys find."""
    clash = None
    for stored in same_message_id:
        if stored.sender == candidate.sender and stored.body_sha256 == candidate.body_sha256:
            return Decision(
                "duplicate", "duplicate", release_id=stored.release_id, duplicate_of=stored.pk
            )
        clash = clash or stored.pk
    reason = candidate.reason
    if candidate.status in ("failed", "rejected", "ignored"):
        message_status = "ignored" if candidate.status == "ignored" else "failed"
        return Decision(candidate.status, message_status, clash_with=clash, reason=reason)
    quarantined = candidate.status == "quarantined"
    message_status = "quarantined" if quarantined else "stored"
    status = candidate.status
    if release is None:
        return Decision("new_release", message_status, status, None, None, clash, reason)
    if quarantined and release.status == "published":
        return Decision("held", message_status, "published", release.id, None, clash, reason)
    if not quarantined and release.status == "quarantined":
        return Decision("promoted", message_status, "published", release.id, None, clash)
    kind: Kind = "same_release" if release.has_content else "new_version"
    return Decision(kind, message_status, release.status, release.id, None, clash, reason)
