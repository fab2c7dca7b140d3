"""Sender authentication: is a message from the government sender it claims to be?

Pure: reads the parsed headers, the From address and the mailbox's `AuthenticationSettings`;
the only I/O is the DKIM key lookup when local verification is asked for (`dns`, injectable).
Never raises on hostile input. The `Verdict` is plain data (picklable for worker processes).

Vocabulary of `Verdict.result`, stored as the first word of `messages.auth`:
- `pass`: an aligned DKIM or DMARC pass vouches for the From domain (and, for mail claiming
  a government sender, that domain is a listed sender domain).
- `fail`: a trusted verifier (or local DKIM) reported a failure, only vouched for a domain not
  aligned with From, or the message claims a government sender its From domain is not.
- `none`: no evidence either way: no trusted Authentication-Results, or one whose DKIM/DMARC
  results are none/temperror. SPF alone is `none`: it authenticates the envelope sender, not
  the From address, and breaks on forwarding; GovDelivery always DKIM-signs.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal, Protocol


class AuthPolicy(Protocol):
    """What `authenticate` reads of a policy: `config.AuthenticationSettings`, or the
    plain copy the parsing workers get (pydantic stays out of them)."""

    @property
    def trusted_authserv_ids(self) -> tuple[str, ...]: ...
    @property
    def unauthenticated(self) -> Literal["publish", "quarantine", "reject"]: ...
    @property
    def sender_domains(self) -> tuple[str, ...]: ...
    @property
    def dkim_verify(self) -> bool: ...


Result = Literal["pass", "fail", "none"]
Action = Literal["publish", "quarantine", "reject"]
DnsFunc = Callable[[bytes], bytes | None]

LOCAL_VERIFIER = "dkimpy"  # the authserv_id of a verdict from local DKIM verification
_AR = "authentication-results"
# Fields only the originator writes. A receiving server prepends its trace fields above the
# message it got (RFC 8601 §2.1, RFC 5321 §4.4), so an Authentication-Results below one of
# these was written by the sender (or injected, e.g. through a web form's Subject).
_ORIGINATOR_FIELDS = frozenset(
    str.split(
        "from sender reply-to to cc bcc subject date message-id in-reply-to references "
        "mime-version content-type content-transfer-encoding dkim-signature"
    )
)
_FAILURES = frozenset({"fail", "permerror", "policy", "neutral", "softfail", "hardfail"})
_MAX_AR_CHARS = 16 * 1024  # real ones are under 2 KB; a longer one is junk
_MAX_SIGNATURES = 8  # DKIM signatures tried locally, each may cost a DNS lookup
# Possessive quantifiers: linear time on any input, no backtracking.
_COMMENT = re.compile(r"\((?:[^()\\]++|\\.)*+\)")  # an innermost comment
_PAIR = re.compile(r'([A-Za-z0-9][\w.\-/]*+)\s*+=\s*+("(?:[^"\\]++|\\.)*+"?|[^\s";]*+)')
_ASCII_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_PUNYCODE = re.compile(r"xn--[a-z0-9-]+")
_GOVERNMENT_NAME = re.compile(
    r"(?<![a-z])u\.\s?s\.|\b(?:united states|department|dept\b|ministry|government|govt\b|federal"
    r"|agency|administration|bureau|commission|council|county|city of|state of|office of"
    r"|secretary|pentagon|white house|military|army|navy|air force|marine corps|coast guard"
    r"|national guard|space force|defen[cs]e|police|sheriff|fbi|cia|irs|fema|nasa|cdc|dhs"
    r"|doj|dod|usdod|cisa|hhs|govdelivery|granicus)\b|\.(?:gov|mil)\b"
)
_BRANDS = ("govdelivery", "granicus")  # claim a government sender wherever they appear
# Latin look-alikes (Cyrillic, Greek, digits) folded before the look-alike check, after
# NFKD has removed accents and widths. A heuristic for *claims* only: exact sender-domain
# matching never accepts a non-ASCII or punycode domain.
_CONFUSABLES = str.maketrans(
    "аеһіјкморсѕухԁӏԛԝɡıαεικνορτυχ01",  # Cyrillic, Latin ɡ ı, Greek, 0 1
    "aehijkmopcsyxdlqwgiaeikvoptuxol",
)
_SILENT = logging.Logger("govfeed.auth.dkimpy", logging.CRITICAL + 1)  # dkimpy's chatter


@dataclass(frozen=True, slots=True)
class Verdict:
    """Who vouches for a message's sender, and what the mailbox's policy makes of it."""

    result: Result
    method: str  # "dkim" or "dmarc" ("" when nothing was verified)
    authserv_id: str  # who said so: "mx.google.com", "dkimpy" for local DKIM, "" for nobody
    domain: str  # the domain the method vouched for (or failed for)
    claims_government: bool  # From, display name, headers or content claim a government sender
    action: Action  # for a release made from this message
    reason: str  # one line for people

    def summary(self) -> str:
        """`messages.auth`: e.g. "pass dkim=public.govdelivery.com by mx.google.com"."""
        parts: list[str] = [self.result]
        if self.method:
            parts.append(f"{self.method}={self.domain}" if self.domain else self.method)
        if self.authserv_id:
            parts.append(f"by {self.authserv_id}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class _Evidence:
    result: Result
    method: str = ""
    authserv_id: str = ""
    domain: str = ""
    reason: str = ""


def authenticate(
    headers: Sequence[tuple[str, str]],
    from_address: str | None,
    from_name: str | None,
    policy: AuthPolicy,
    *,
    raw: bytes | None = None,
    dkim_verify: bool = False,
    dns: DnsFunc | None = None,
    claims_government: bool = False,
) -> Verdict:
    """Judge the sender of one message.

    `headers` are (name, decoded value) top to bottom (`ParsedMessage.headers`). Only the
    topmost trusted Authentication-Results is read (see `find_trusted_results`). With
    `dkim_verify` and `raw`, the DKIM signatures are also verified locally with dkimpy; its
    pass or fail then decides (a key lookup goes to `dns(name) -> TXT bytes | None`, else to
    real DNS). `claims_government=True` is the caller saying the content is a government
    bulletin (extraction made a release): a release from an unlisted sender is never
    published unchecked, whatever its headers say.

    Action: `publish` when nothing claims a government sender (personal mail: it is stored
    as ignored anyway) or when the claim passes; otherwise `policy.unauthenticated`. What the
    store makes of it: `quarantine` -> release and message `quarantined`; `reject` -> the
    message is kept raw with status `failed` and error "rejected: <reason>", no release (so
    `govfeed reparse` reconsiders it after the sender list or the policy changes).
    """
    domain = _domain_of(from_address)
    allowed = domain is not None and any(
        domain == d or domain.endswith("." + d) for d in _sender_domains(policy.sender_domains)
    )
    names = [name.strip().lower() for name, _ in headers]
    why = _claim(names, from_address, from_name, domain, policy, claims_government, allowed)
    evidence = _header_evidence(headers, names, policy.trusted_authserv_ids, domain)
    if dkim_verify and raw is not None:
        local = _verify_dkim(raw, domain, dns)
        if local.result != "none":
            said = f"; {evidence.authserv_id} said {evidence.result}" * bool(evidence.authserv_id)
            evidence = replace(local, reason=local.reason + said)
    result, reason = evidence.result, evidence.reason
    from_count = names.count("from")
    if from_count > 1:
        why = why or "it has several From headers"
        result, reason = "fail", f"{from_count} From headers: which sender a reader sees is unclear"
    elif why and not allowed:
        result = "fail"
        shown = domain or (from_address or "").rpartition("@")[2] or "missing"
        reason = f"{why}, but From domain {_show(shown)} is no listed sender domain"
    action: Action = "publish" if not why or result == "pass" else policy.unauthenticated
    return Verdict(
        result, evidence.method, evidence.authserv_id, evidence.domain, bool(why), action, reason
    )


def signed_headers(headers: Sequence[tuple[str, str]], verdict: Verdict) -> frozenset[str]:
    """The header names (lower-case) the DKIM signature that authenticated the message
    covers completely: named in its h= tag at least as often as the field occurs (DKIM signs
    the bottom-most instances, so an extra copy added above would go unsigned). Empty
    unless the verdict is a DKIM pass. A header outside this set is the sender's word only:
    nothing that identifies a release may come from it (decide.py)."""
    if verdict.result != "pass" or verdict.method != "dkim" or not verdict.domain:
        return frozenset()
    counts: dict[str, int] = {}
    for name, _ in headers:
        key = name.strip().lower()
        counts[key] = counts.get(key, 0) + 1
    for name, value in headers:
        if name.strip().lower() != "dkim-signature":
            continue
        tags = _dkim_tags(value)
        if _bare_domain(tags.get("d", "")) != verdict.domain or "l" in tags:
            continue
        named: dict[str, int] = {}
        for field in tags.get("h", "").split(":"):
            key = field.strip().lower()
            named[key] = named.get(key, 0) + 1
        return frozenset(k for k, n in counts.items() if named.get(k, 0) >= n)
    return frozenset()


def _dkim_tags(value: str) -> dict[str, str]:
    """tag=value pairs of a DKIM-Signature (RFC 6376 §3.2), whitespace removed."""
    tags = {}
    for part in value[:_MAX_AR_CHARS].split(";"):
        key, sep, val = part.partition("=")
        if sep:
            tags[key.strip().lower()] = "".join(val.split())
    return tags


def find_trusted_results(
    headers: Sequence[tuple[str, str]],
    trusted: tuple[str, ...],
    names: Sequence[str] | None = None,  # the header names stripped and lower-cased, if known
) -> tuple[str, str, int]:
    """(authserv-id, value, how many lower trusted ones were ignored) of the one
    Authentication-Results field to believe; ("", "", 0) when there is none.

    "Topmost trusted" precisely: walking the fields top (newest hop) to bottom (oldest),
    the first Authentication-Results whose authserv-id (RFC 8601 §2.5, compared without case
    and trailing dot) is in `trusted`, found before the first originator field (From, To,
    Subject, Date, Message-ID, DKIM-Signature, MIME-Version...). Every trusted-looking field
    below it is ignored: a receiving server prepends its field (RFC 8601 §2.1) and must delete
    incoming ones bearing its own id (§5), so only the topmost can be its own; one below the
    originator fields was written by the sender (§7.1, forged header fields). Fields with an
    untrusted id are skipped, not a stop: above ours they come from our own later hops (a
    local filter), below it they are the sender's and never read.
    https://www.rfc-editor.org/rfc/rfc8601#section-5 and #section-7.1

    So listing a server in `trusted_authserv_ids` asserts that it receives the mail at our
    edge and adds a field to *every* message (Gmail's `mx.google.com`, a local Postfix with
    OpenDKIM/OpenDMARC or rspamd). A forged field in the exact place of a missing real one
    cannot be told apart from the text; `dkim_verify` (local DKIM) does not rely on it.
    """
    if names is None:
        names = [name.strip().lower() for name, _ in headers]
    wanted = _sender_domains(trusted)
    found: tuple[str, str] | None = None
    ignored = 0
    for key, (_, value) in zip(names, headers, strict=True):
        if key in _ORIGINATOR_FIELDS:
            break
        if key != _AR:
            continue
        authserv = _authserv_id(value)
        if authserv is None or authserv not in wanted:
            continue
        if found is None:
            found = (authserv, value)
        else:
            ignored += 1
    return (found[0], found[1], ignored) if found else ("", "", 0)


def _header_evidence(
    headers: Sequence[tuple[str, str]],
    names: list[str],
    trusted: tuple[str, ...],
    from_domain: str | None,
) -> _Evidence:
    authserv, value, ignored = find_trusted_results(headers, trusted, names)
    if not authserv:
        if not trusted:
            return _Evidence("none", reason="no trusted_authserv_ids configured")
        shown = ", ".join(_show(t) for t in trusted[:3])
        return _Evidence("none", reason=f"no Authentication-Results from {shown}")
    evidence = _judge(authserv, _results(value), from_domain)
    if ignored:
        note = f" ({ignored} lower field(s) claiming {authserv} ignored)"
        evidence = replace(evidence, reason=evidence.reason + note)
    return evidence


def _judge(
    authserv: str, results: list[tuple[str, str, dict[str, str]]], from_domain: str | None
) -> _Evidence:
    """What the trusted server's results say about the From domain."""
    dkim_pass = dmarc_pass = dmarc_fail = unaligned = None
    failed: tuple[str, str, str] | None = None  # (method, domain, result)
    for method, result, props in results:
        if method == "dkim":
            domain = _bare_domain(props.get("header.d") or props.get("header.i", ""))
            if result == "pass" and aligned(domain, from_domain):
                dkim_pass = dkim_pass or domain
            elif result == "pass":
                unaligned = unaligned or domain
            elif result in _FAILURES:
                failed = failed or ("dkim", domain, result)
        elif method == "dmarc":
            domain = _bare_domain(props.get("header.from", ""))
            if result == "pass" and aligned(domain, from_domain):
                dmarc_pass = dmarc_pass or domain
            elif result == "fail" and (not domain or aligned(domain, from_domain)):
                dmarc_fail = domain  # the server's DMARC verdict on From outweighs a dkim pass
    who, shown = _show(authserv), _show(from_domain or "none")
    found: tuple[Result, str, str, str]  # result, method, domain, reason
    if dmarc_fail is not None:
        found = ("fail", "dmarc", dmarc_fail, f"{who}: dmarc=fail for {shown}")
    elif dkim_pass:
        found = ("pass", "dkim", dkim_pass, f"{who}: dkim=pass, aligned with From {shown}")
    elif dmarc_pass:
        found = ("pass", "dmarc", dmarc_pass, f"{who}: dmarc=pass for {shown}")
    elif failed:
        found = ("fail", failed[0], failed[1], f"{who}: {failed[0]}={failed[2]}")
    elif unaligned:
        found = ("fail", "dkim", unaligned, f"{who}: dkim=pass only for an unaligned domain")
    else:
        methods = ",".join(sorted({m for m, _, _ in results})) or "no results"
        return _Evidence(
            "none",
            "",
            authserv,
            "",
            f"{who}: no DKIM or DMARC result for the From domain ({methods})",
        )
    return _Evidence(found[0], found[1], authserv, found[2], found[3])


def _authserv_id(value: str) -> str | None:
    """The authserv-id of an Authentication-Results value, lower-cased; None if malformed."""
    head = value[:_MAX_AR_CHARS].split(";", 1)[0]
    if "(" in head or '"' in head:
        head = _segments(value)[0]
    words = head.split()
    if not words or len(words) > 2 or (len(words) == 2 and not words[1].isdecimal()):
        return None
    ident = words[0].strip('"').lower().rstrip(".")
    return ident if ident.isascii() and ident.isprintable() and ident else None


def _results(value: str) -> list[tuple[str, str, dict[str, str]]]:
    """(method, result, {ptype.property: value}) per resinfo (RFC 8601 §2.2)."""
    found: list[tuple[str, str, dict[str, str]]] = []
    for segment in _segments(value)[1:]:
        method = segment.split("=", 1)[0].split("/", 1)[0].strip().lower()
        if method not in ("dkim", "dmarc"):  # only these are read: skip the long spf ones
            if method.isalnum():
                found.append((method, "", {}))
            continue
        pairs = _PAIR.findall(segment)
        if not pairs:
            continue
        props = {key.lower(): _unquote(val) for key, val in pairs[1:]}
        found.append((method, _unquote(pairs[0][1]).lower(), props))
    return found


def _segments(value: str) -> list[str]:
    """The value split at top-level ';', comments dropped, quoted strings kept."""
    text = value[:_MAX_AR_CHARS]
    if '"' not in text:
        for _ in range(4):  # nested comments, innermost first
            if "(" not in text:
                break
            text = _COMMENT.sub(" ", text)
        if "(" not in text and ")" not in text:
            return text.split(";")
    segments, current, depth, quoted, escaped = [], [], 0, False, False
    for char in text:  # the general case: quotes, deep or unbalanced comments; O(n)
        if escaped:
            escaped = False
            if depth == 0:
                current.append(char)
        elif char == "\\":
            escaped = True
            if depth == 0:
                current.append(char)
        elif quoted:
            quoted = char != '"'
            current.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if not depth:
                current.append(" ")
        elif depth:
            continue
        elif char == ";":
            segments.append("".join(current))
            current = []
        else:
            quoted = char == '"'
            current.append(char)
    segments.append("".join(current))
    return segments


def _verify_dkim(raw: bytes, from_domain: str | None, dns: DnsFunc | None) -> _Evidence:
    """Verify the DKIM signatures locally with dkimpy: `pass` when one aligned with the From
    domain verifies and covers From and the whole body, `fail` when signatures exist but none
    does (an error verifying one is a failed signature), `none` when the message is unsigned.
    """
    import dkim  # here, not at the top: dkimpy and dnspython take 0.1 s to import
    from dkim import dnsplug

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        if dns is None:
            found: bytes | None = dnsplug.get_txt(name, timeout=timeout)
            return found
        return dns(name)

    try:
        signer = dkim.DKIM(raw, logger=_SILENT)
        count = sum(1 for name, _ in signer.headers if name.lower() == b"dkim-signature")
    except Exception:  # noqa: BLE001 - dkimpy on hostile bytes may raise anything
        return _Evidence("fail", "dkim", LOCAL_VERIFIER, "", "dkimpy could not read the message")
    if not count:
        return _Evidence("none", reason="no DKIM-Signature")
    first = ""
    for index in range(min(count, _MAX_SIGNATURES)):
        signer.domain = b""
        try:
            ok = bool(signer.verify(idx=index, dnsfunc=lookup))
        except Exception:  # noqa: BLE001 - any error verifying a signature is a failure
            ok = False
        domain = _bare_domain(bytes(signer.domain or b"").decode("ascii", "replace"))
        if ok and aligned(domain, from_domain) and _covers_all(signer.signature_fields):
            return _Evidence("pass", "dkim", LOCAL_VERIFIER, domain, "dkimpy: dkim=pass, aligned")
        first = first or domain
    reason = f"dkimpy: none of {count} DKIM signature(s) verifies for the From domain"
    return _Evidence("fail", "dkim", LOCAL_VERIFIER, first, reason)


def _covers_all(sig: dict[bytes, bytes]) -> bool:
    """The signature covers the From header and the whole body (no l= tag, which would let
    anyone append text to a genuinely signed bulletin; RFC 6376 §8.2)."""
    signed = {name.strip().lower() for name in sig.get(b"h", b"").split(b":")}
    return b"from" in signed and b"l" not in sig


def aligned(domain: str | None, from_domain: str | None) -> bool:
    """Relaxed (organizational-domain) alignment, as DMARC's: public.govdelivery.com and
    govdelivery.com align; defense.gov and defense.gov.evil.com do not."""
    if not domain or not from_domain:
        return False
    return domain == from_domain or organizational_domain(domain) == organizational_domain(
        from_domain
    )


@lru_cache(maxsize=1024)
def organizational_domain(domain: str) -> str:
    """The registrable domain (DMARC's organizational domain, RFC 7489 §3.2) by the real
    Public Suffix List (publicsuffixlist ships it, no download); a name that is itself a
    public suffix is its own."""
    return _public_suffixes().privatesuffix(domain) or domain


@lru_cache(maxsize=1)
def _public_suffixes() -> Any:
    from publicsuffixlist import PublicSuffixList  # here: loading the list takes 0.1 s

    return PublicSuffixList()


def _claim(
    names: list[str],
    address: str | None,
    name: str | None,
    domain: str | None,
    policy: AuthPolicy,
    content: bool,
    allowed: bool,
) -> str:
    """Why the message claims a government sender, or "" when it does not."""
    if content:
        return "the content is a government bulletin"
    if allowed:
        return f"From domain {domain} is a listed sender domain"
    if "x-accountcode" in names:
        return "it has a GovDelivery X-Accountcode header"
    marks = _marks(policy.sender_domains)
    for label, text in (("From address", address), ("display name", name)):
        seen = _skeleton(text or "")
        if any(mark in seen for mark in marks):
            return f"the {label} {_show(text or '')} looks like a government sender"
    if domain and domain.rsplit(".", 1)[-1] in ("gov", "mil"):
        return f"From domain {domain} is a government domain"
    if name and _GOVERNMENT_NAME.search(_fold(name)):
        return f"the display name {_show(name)} names a government sender"
    return ""


def _domain_of(address: str | None) -> str | None:
    """The From domain as a plain ASCII host name, else None (non-ASCII is never listed)."""
    if not address or "@" not in address:
        return None
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    return domain if domain.isascii() and _ASCII_DOMAIN.fullmatch(domain) else None


@lru_cache(maxsize=64)
def _sender_domains(domains: tuple[str, ...]) -> tuple[str, ...]:
    """Listed domains (or authserv-ids) compared as host names: lower-case, no final dot."""
    return tuple(d.strip().lower().lstrip("@.").rstrip(".") for d in domains if d.strip("@. "))


@lru_cache(maxsize=64)
def _marks(domains: tuple[str, ...]) -> tuple[str, ...]:
    """Skeletons whose presence in an address or name claims a listed sender."""
    return tuple({_skeleton(d) for d in _sender_domains(domains)} | set(_BRANDS))


def _fold(text: str) -> str:
    """Lower-case, accents and widths removed, Latin look-alikes folded, punycode decoded."""
    text = text[:256].lower()
    if "xn--" in text:
        text = _PUNYCODE.sub(lambda m: _punycode(m.group()), text)
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return text.translate(_CONFUSABLES)


def _punycode(label: str) -> str:
    try:
        return label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return label


def _skeleton(text: str) -> str:
    return _NOT_ALNUM.sub("", _fold(text))


def _bare_domain(value: str) -> str:
    return value.rpartition("@")[2].strip().strip('"').lower().rstrip(".")


def _unquote(value: str) -> str:
    if value.startswith('"'):
        value = value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
        return value.replace('\\"', '"').replace("\\\\", "\\")
    return value


def _show(text: str) -> str:
    """Hostile text made safe for a one-line reason: printable, at most 60 characters."""
    if len(text) <= 60 and text.isprintable():
        return text
    clean = "".join(c if c.isprintable() else "?" for c in text[:60])
    return repr(clean) if clean != text[:60] or len(text) > 60 else clean
