"""Sender authentication: which Authentication-Results is believed, and what it proves."""

from __future__ import annotations

import base64
import json
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govfeed.auth import (
    LOCAL_VERIFIER,
    Verdict,
    aligned,
    authenticate,
    find_trusted_results,
    organizational_domain,
)
from govfeed.config import AuthenticationSettings
from govfeed.models import ParsedMessage, RawMessage
from govfeed.parse import parse_message

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT / "examples"))

import mailgen  # noqa: E402 - lives in examples/, found through the path above

EXPECTED: dict[str, dict[str, Any]] = json.loads((DATA / "expected.json").read_text("utf-8"))
POLICY = AuthenticationSettings(trusted_authserv_ids=("mx.google.com",))
DOD = ("U.S. Department of Defense", "usdod@public.govdelivery.com")
GD = "public.govdelivery.com"
GMAIL_PASS = f"mx.google.com; dkim=pass header.i=@{GD} header.s=gd2023; spf=pass (google.com: domain of bounce@{GD} designates 54.240.1.1 as permitted sender) smtp.mailfrom=bounce@{GD}; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from={GD}"  # noqa: E501
FORGED_PASS = f"mx.google.com; dkim=pass header.i=@{GD}; dmarc=pass header.from={GD}"
RESULTS = {"pass", "fail", "none"}


def parsed(name: str) -> ParsedMessage:
    return parse_message(RawMessage((DATA / name).read_bytes(), name))


def judge_parsed(message: ParsedMessage, **kwargs: Any) -> Verdict:
    policy = kwargs.pop("policy", POLICY)
    sender = message.from_
    return authenticate(
        message.headers,
        sender.address if sender else None,
        sender.name if sender else None,
        policy,
        **kwargs,
    )


def gmail(ar: str | None, *, from_: str = f'"{DOD[0]}" <{DOD[1]}>') -> list[tuple[str, str]]:
    """A header block as Gmail delivers it: its trace fields, then the sender's fields."""
    top = [
        ("Delivered-To", "subscriber@example.org"),
        ("Received", "by 2002:a05:7300:1:b0:1a2:0:0 with SMTP id x1; Sun, 28 Jul 2024"),
        ("Return-Path", f"<bounce@{GD}>"),
        ("Received", f"from mailer1.govd3.service.govdelivery.com by mx.google.com id y2; {GD}"),
        ("Received-SPF", "pass (google.com: domain of bounce designates 54.240.1.1) client-ip=x;"),
    ]
    if ar is not None:
        top.append(("Authentication-Results", ar))
    return [
        *top,
        ("DKIM-Signature", f"v=1; a=rsa-sha256; d={GD}; s=gd2023; b=AAAA"),
        ("From", from_),
        ("To", "subscriber@example.org"),
        ("Subject", "Joint Press Release"),
    ]


def judge(headers: list[tuple[str, str]], sender: tuple[str, str] = DOD, **kwargs: Any) -> Verdict:
    policy = kwargs.pop("policy", POLICY)
    return authenticate(headers, sender[1], sender[0], policy, **kwargs)


# --------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_gets_its_expected_verdict(name: str) -> None:
    """expected.json's `auth` is the verdict when only mx.google.com is trusted."""
    assert judge_parsed(parsed(name)).result == EXPECTED[name]["auth"]


def test_a_real_looking_bulletin_passes_and_is_published() -> None:
    verdict = judge_parsed(parsed("dod-release.eml"))
    assert (verdict.result, verdict.method, verdict.authserv_id, verdict.domain) == (
        "pass",
        "dkim",
        "mx.google.com",
        GD,
    )
    assert verdict.claims_government
    assert verdict.action == "publish"
    assert verdict.summary() == f"pass dkim={GD} by mx.google.com"


def test_an_agency_domain_passes_through_its_parent_listed_domain() -> None:
    """subscriptions.cms.hhs.gov is under the listed hhs.gov, and signs for itself."""
    verdict = judge_parsed(parsed("govdelivery-standard.eml"))
    assert verdict.summary() == "pass dkim=subscriptions.cms.hhs.gov by mx.google.com"


@pytest.mark.parametrize(
    ("policy", "action"),
    [("quarantine", "quarantine"), ("reject", "reject"), ("publish", "publish")],
)
def test_a_failing_government_claim_gets_the_mailbox_policy(policy: str, action: str) -> None:
    settings_ = AuthenticationSettings(
        trusted_authserv_ids=("mx.google.com",), unauthenticated=policy
    )
    verdict = judge_parsed(parsed("auth/dod-release-forged.eml"), policy=settings_)
    assert (verdict.result, verdict.action) == ("fail", action)
    assert verdict.summary() == f"fail dmarc={GD} by mx.google.com"


@pytest.mark.parametrize(
    "name", ["auth/dod-release-no-auth.eml", "auth/dod-release-untrusted-authserv.eml"]
)
def test_no_trusted_results_is_none_and_quarantined(name: str) -> None:
    verdict = judge_parsed(parsed(name))
    assert (verdict.result, verdict.action, verdict.summary()) == ("none", "quarantine", "none")
    assert verdict.reason == "no Authentication-Results from mx.google.com"


def test_nothing_is_trusted_until_configured() -> None:
    verdict = judge_parsed(parsed("dod-release.eml"), policy=AuthenticationSettings())
    assert (verdict.result, verdict.action) == ("none", "quarantine")
    assert verdict.reason == "no trusted_authserv_ids configured"


def test_a_personal_message_claims_nothing_and_is_published() -> None:
    verdict = judge_parsed(parsed("personal-message.eml"))
    assert (verdict.result, verdict.claims_government, verdict.action) == ("pass", False, "publish")
    unsigned = judge(gmail(None, from_="Pat <pat@example.net>"), ("Pat", "pat@example.net"))
    assert (unsigned.result, unsigned.claims_government, unsigned.action) == (
        "none",
        False,
        "publish",
    )


def test_content_that_is_a_bulletin_claims_government_whatever_the_headers() -> None:
    """A DoD bulletin forwarded by a person is no DoD mail: the caller says it is a release."""
    verdict = judge_parsed(parsed("personal-message.eml"), claims_government=True)
    assert (verdict.result, verdict.claims_government, verdict.action) == (
        "fail",
        True,
        "quarantine",
    )


def test_a_verdict_pickles_for_the_worker_processes() -> None:
    verdict = judge_parsed(parsed("dod-release.eml"))
    assert pickle.loads(pickle.dumps(verdict)) == verdict  # noqa: S301 - bytes made here


# --------------------------------------------------------------------------- which header


def test_a_forged_pass_below_the_real_failing_header_is_ignored() -> None:
    message = parsed("auth/dod-release-forged.eml")
    headers = list(message.headers)
    real = next(i for i, (k, _) in enumerate(headers) if k == "Authentication-Results")
    headers.insert(real + 1, ("Authentication-Results", FORGED_PASS))
    verdict = judge(headers)
    assert (verdict.result, verdict.action) == ("fail", "quarantine")
    assert "(1 lower field(s) claiming mx.google.com ignored)" in verdict.reason


def test_a_forged_pass_among_the_senders_fields_is_never_read() -> None:
    """The real server added none; the sender's own pass sits below its DKIM-Signature."""
    headers = gmail(None)
    headers.append(("Authentication-Results", FORGED_PASS))
    assert judge(headers).result == "none"
    assert find_trusted_results(headers, ("mx.google.com",)) == ("", "", 0)


def test_a_pass_injected_through_the_subject_is_never_read() -> None:
    raw = (DATA / "auth/dod-release-no-auth.eml").read_bytes()
    injected = raw.replace(
        b"\r\nSubject: ",
        f"\r\nSubject: hi\r\nAuthentication-Results: {FORGED_PASS}\r\nX-: ".encode(),
    )
    assert injected != raw
    verdict = judge_parsed(parse_message(RawMessage(injected, "injected")))
    assert (verdict.result, verdict.action) == ("none", "quarantine")


def test_a_forged_pass_in_the_place_of_a_missing_real_one_needs_local_dkim() -> None:
    """The documented limit: text alone cannot unmask it (the trusted server must add a field
    to every message); local DKIM verification can, as the forger has no signing key."""
    message = parsed("auth/dod-release-no-auth.eml")
    headers = list(message.headers)
    spf = next(i for i, (k, _) in enumerate(headers) if k == "Received-SPF")
    headers.insert(spf + 1, ("Authentication-Results", FORGED_PASS))
    assert judge(headers).result == "pass"
    raw = (DATA / "auth/dod-release-no-auth.eml").read_bytes()
    verdict = judge(headers, raw=raw, dkim_verify=True, dns=lambda name: None)
    assert (verdict.result, verdict.authserv_id, verdict.action) == (
        "fail",
        LOCAL_VERIFIER,
        "quarantine",
    )
    assert verdict.reason.endswith("; mx.google.com said pass")


def test_a_local_filters_header_above_the_trusted_one_does_not_hide_it() -> None:
    headers = gmail(GMAIL_PASS)
    headers.insert(0, ("Authentication-Results", "mail.example.org; dkim=fail"))
    assert judge(headers).summary() == f"pass dkim={GD} by mx.google.com"


def test_the_topmost_of_two_trusted_servers_decides() -> None:
    headers = gmail(GMAIL_PASS)
    headers.insert(0, ("Authentication-Results", f"mail.example.org; dkim=fail header.d={GD}"))
    policy = AuthenticationSettings(trusted_authserv_ids=("mx.google.com", "mail.example.org"))
    assert judge(headers, policy=policy).summary() == f"fail dkim={GD} by mail.example.org"


def test_a_per_mailbox_override_is_what_counts() -> None:
    policy = AuthenticationSettings(trusted_authserv_ids=("mail.example.org",))
    assert judge(gmail(GMAIL_PASS), policy=policy).result == "none"


# --------------------------------------------------------------------------- what it proves


@pytest.mark.parametrize(
    "domain",
    [
        "defense.gov.evil.com",
        "defense-gov.com",
        "govdelivery.com.attacker.net",
        "public-govdelivery.com",
        "publicgovdelivery.com",
        "public.g0vdelivery.com",
        "dеfense.gov",  # Cyrillic е
        "xn--dfense-3of.gov.example.com",  # dеfense (Cyrillic е) as punycode
        "ｄｅｆｅｎｓｅ.gov",  # fullwidth
    ],
)
def test_a_look_alike_domain_fails_even_when_its_own_dkim_passes(domain: str) -> None:
    """The forger signs for its own domain perfectly; the domain is just not a listed one."""
    ar = f"mx.google.com; dkim=pass header.i=@{domain}; dmarc=pass header.from={domain}"
    verdict = judge(gmail(ar, from_=f"News <usdod@{domain}>"), ("News", f"usdod@{domain}"))
    assert (verdict.result, verdict.claims_government, verdict.action) == (
        "fail",
        True,
        "quarantine",
    )


@pytest.mark.parametrize(
    "name",
    [
        "U.S. Department of Defense",
        "Dеpartment of Dеfеnsе",  # Cyrillic е
        "USDOD@public.govdelivery.com",
        "defense.gov",
        "Pentagon Press Office",
    ],
)
def test_a_display_name_spoof_fails(name: str) -> None:
    ar = "mx.google.com; dkim=pass header.i=@gmail.com; dmarc=pass header.from=gmail.com"
    verdict = judge(gmail(ar, from_=f'"{name}" <attacker@gmail.com>'), (name, "attacker@gmail.com"))
    assert (verdict.result, verdict.claims_government, verdict.action) == (
        "fail",
        True,
        "quarantine",
    )
    assert verdict.summary() == "fail dkim=gmail.com by mx.google.com"
    assert "no listed sender domain" in verdict.reason


def test_a_govdelivery_header_claims_government_for_any_sender() -> None:
    headers = [*gmail(None, from_="Pat <pat@example.net>"), ("X-Accountcode", "USDOD")]
    verdict = judge(headers, ("Pat", "pat@example.net"))
    assert (verdict.claims_government, verdict.action) == (True, "quarantine")


def test_dkim_passing_only_for_an_unaligned_domain_fails() -> None:
    ar = "mx.google.com; dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=x@evil.example"
    verdict = judge(gmail(ar))
    assert (verdict.result, verdict.summary()) == (
        "fail",
        "fail dkim=evil.example by mx.google.com",
    )


def test_spf_alone_authenticates_nothing() -> None:
    verdict = judge(gmail(f"mx.google.com; spf=pass smtp.mailfrom=bounce@{GD}"))
    assert (verdict.result, verdict.action) == ("none", "quarantine")
    assert verdict.reason == "mx.google.com: no DKIM or DMARC result for the From domain (spf)"


def test_an_aligned_dmarc_pass_is_enough() -> None:
    verdict = judge(gmail(f"mx.google.com; dkim=none; dmarc=pass header.from={GD}"))
    assert verdict.summary() == f"pass dmarc={GD} by mx.google.com"


def test_a_dmarc_fail_on_the_from_domain_outweighs_a_dkim_pass() -> None:
    verdict = judge(gmail(f"mx.google.com; dkim=pass header.d={GD}; dmarc=fail header.from={GD}"))
    assert verdict.result == "fail"


def test_organizational_alignment() -> None:
    assert aligned("govdelivery.com", "public.govdelivery.com")
    assert aligned("service.govdelivery.com", "public.govdelivery.com")
    assert not aligned("defense.gov.evil.com", "defense.gov")
    assert not aligned("evil-defense.gov", "defense.gov")
    assert not aligned("", "defense.gov")
    assert [
        organizational_domain(d)
        for d in ("subscriptions.cms.hhs.gov", "a.b.oxford.gov.uk", "ci.boston.ma.us")
    ] == ["hhs.gov", "oxford.gov.uk", "boston.ma.us"]
    assert organizational_domain("school.k12.ma.us") == "school.k12.ma.us"


def test_two_from_headers_fail() -> None:
    headers = gmail(GMAIL_PASS)
    headers.append(("From", "attacker@evil.example"))
    verdict = judge(headers)
    assert (verdict.result, verdict.action) == ("fail", "quarantine")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f'mx.google.com (Gmail); dkim=pass (ok) header.d="{GD}" header.i=@{GD}', "pass"),
        (f"mx.google.com 1; dkim=pass header.d={GD}", "pass"),
        ("MX.Google.COM.; DKIM=PASS header.d=Public.GovDelivery.com.", "pass"),
        (f"mx.google.com; dkim=fail (sig; dkim=pass header.d={GD}) header.d={GD}", "fail"),
        (f'mx.google.com; dkim=fail reason="x; dkim=pass header.d={GD}" header.d={GD}', "fail"),
        (f"mx.google.com; dkim=pass ((nested) comment) header.d={GD}", "pass"),
        ("mx.google.com; none", "none"),
        ("mx.google.com x y; dkim=pass", "none"),  # not an authserv-id: not trusted
        ("mx.gооgle.com; dkim=pass", "none"),  # Cyrillic о
    ],
)
def test_authentication_results_syntax(value: str, expected: str) -> None:
    assert judge(gmail(value)).result == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        ";",
        "mx.google.com",
        "mx.google.com; dkim",
        "mx.google.com; dkim=",
        "mx.google.com; =pass",
        "mx.google.com; dkim=pass header.d=",
        'mx.google.com; dkim="pass',
        "mx.google.com; dkim=pass (unclosed comment header.d=x",
        "mx.google.com; dkim=pass ) header.d=public.govdelivery.com",
        "mx.google.com (((((",
        "\x00\x01\x02; dkim=pass",
        "mx.google.com;" + " dkim=pass;" * 50_000,
        "(" * 200_000,
        "mx.google.com; " + "(" * 5_000 + ")" * 5_000 + f" dkim=pass header.d={GD}",
        "mx.google.com; dkim=pass " + "\\" * 10_001,
        f"mx.google.com; dkim=pass header.d=públic.govdelivery.com; dmarc=pass header.from={GD}é",
        "mx.google.com; 🦆=🦆 header.🦆=🦆",
    ],
)
def test_malformed_authentication_results_never_raise(value: str) -> None:
    verdict = judge(gmail(value))
    assert verdict.result in RESULTS
    assert "\n" not in verdict.reason and len(verdict.summary()) < 200


@given(
    values=st.lists(st.text(max_size=300), max_size=4),
    address=st.one_of(st.none(), st.text(max_size=80)),
    name=st.one_of(st.none(), st.text(max_size=80)),
)
@settings(max_examples=300, deadline=None)
def test_any_headers_and_sender_give_a_verdict(
    values: list[str], address: str | None, name: str | None
) -> None:
    headers = [("Authentication-Results", f"mx.google.com; {v}") for v in values]
    headers += [("Authentication-Results", v) for v in values]
    verdict = authenticate(headers, address, name, POLICY)
    assert verdict.result in RESULTS
    assert verdict.action in {"publish", "quarantine"}


# --------------------------------------------------------------------------- local DKIM

SELECTOR = b"test"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A fresh 1024-bit RSA key pair made by openssl: {"private": PKCS#1 PEM, "txt": DNS TXT}."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    key = tmp_path_factory.mktemp("dkim") / "key.pem"
    genrsa = ["openssl", "genrsa", "-traditional", "-out", str(key), "1024"]
    subprocess.run(genrsa, check=True, capture_output=True)
    pubout = ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"]
    der = subprocess.run(pubout, check=True, capture_output=True).stdout
    txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    return {"private": key.read_bytes(), "txt": txt}


def signed(keys: dict[str, bytes], domain: str = GD, **kwargs: Any) -> bytes:
    import dkim

    message = mailgen.dod_release(authentication_results=(), **kwargs)
    signature = dkim.sign(
        message,
        SELECTOR,
        domain.encode(),
        keys["private"],
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    return bytes(signature) + message


def dns_for(keys: dict[str, bytes], domain: str = GD) -> Any:
    records = {SELECTOR + b"._domainkey." + domain.encode() + b".": keys["txt"]}
    return records.get


def local(raw: bytes, dns: Any) -> Verdict:
    return judge_parsed(
        parse_message(RawMessage(raw, "signed")), raw=raw, dkim_verify=True, dns=dns
    )


def test_local_dkim_passes_a_message_signed_with_the_served_key(keys: dict[str, bytes]) -> None:
    verdict = local(signed(keys), dns_for(keys))
    assert verdict.summary() == f"pass dkim={GD} by dkimpy"
    assert verdict.action == "publish"


def test_local_dkim_fails_a_tampered_body(keys: dict[str, bytes]) -> None:
    raw = signed(keys)
    tampered = raw.replace(b"Minister of National Defense", b"Minister of National Offense", 1)
    assert tampered != raw
    verdict = local(tampered, dns_for(keys))
    assert (verdict.result, verdict.authserv_id, verdict.action) == (
        "fail",
        LOCAL_VERIFIER,
        "quarantine",
    )


def test_local_dkim_outweighs_a_trusted_pass(keys: dict[str, bytes]) -> None:
    """The operator asked for verification: a body changed after signing fails, whatever
    the Authentication-Results says."""
    raw = signed(keys).replace(b"Minister of National Defense", b"Minister of Nothing", 1)
    raw = f"Authentication-Results: {GMAIL_PASS}\r\n".encode() + raw
    assert local(raw, dns_for(keys)).result == "fail"


def test_local_dkim_for_an_unaligned_domain_fails(keys: dict[str, bytes]) -> None:
    verdict = local(signed(keys, domain="evil.example"), dns_for(keys, "evil.example"))
    assert verdict.result == "fail"


def test_a_dns_error_during_local_dkim_is_a_fail_not_a_crash(keys: dict[str, bytes]) -> None:
    def broken(name: bytes) -> bytes | None:
        raise OSError("resolver down")

    assert local(signed(keys), broken).result == "fail"


def test_an_unsigned_message_falls_back_to_the_headers() -> None:
    raw = mailgen.dod_release()
    raw = re.sub(rb"DKIM-Signature:.*?\r\n(?=\S)", b"", raw, count=1, flags=re.S)
    assert b"DKIM-Signature" not in raw
    verdict = local(raw, lambda name: None)
    assert verdict.summary() == f"pass dkim={GD} by mx.google.com"


@pytest.mark.parametrize("raw", [b"", b"\x00" * 100, b"DKIM-Signature: v=1; d=\r\n\r\nx", b"::"])
def test_local_dkim_on_junk_never_raises(raw: bytes) -> None:
    verdict = authenticate([], *DOD[::-1], POLICY, raw=raw, dkim_verify=True, dns=lambda n: None)
    assert verdict.result in {"fail", "none"}


def test_local_dkim_refuses_a_signature_with_a_body_length_limit(keys: dict[str, bytes]) -> None:
    """l= lets anyone append text to a genuinely signed bulletin (RFC 6376 §8.2)."""
    import dkim

    message = mailgen.dod_release(authentication_results=())
    signature = dkim.sign(message, SELECTOR, GD.encode(), keys["private"], length=True)
    raw = bytes(signature) + message
    assert local(raw, dns_for(keys)).result == "fail"
