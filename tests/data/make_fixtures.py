"""Write the .eml fixtures in tests/data/ and their expected extraction (expected.json).

Run from the repository root: `.venv/bin/python tests/data/make_fixtures.py`. The output is
deterministic (fixed dates and ids, seeded randomness), so re-running it changes nothing
unless examples/mailgen.py changed. See tests/data/README.md for what each file is.
"""

from __future__ import annotations

import email
import email.utils
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples"))

import mailgen  # noqa: E402 - lives in examples/, found through the path above

STORIES = mailgen.STORIES
ROK = STORIES["rok-us"]
CORRECTED_PARAGRAPHS = tuple(
    p.replace("continue to seeking", "continue seeking") for p in ROK.the_paragraphs
)
# A forger's copy: same words, its own bulletin id so it never merges with the real one.
FORGED = replace(ROK, bulletin_id="20240728.999999991", subscriber="subscriber@example.org")
FAILED_RESULTS = (
    "mx.google.com;",
    "       dkim=fail header.i=@public.govdelivery.com header.s=gd2023 header.b=AAAAAAAA;",
    "       spf=fail (google.com: domain of bounce@public.govdelivery.com does not designate "
    "203.0.113.9 as permitted sender) smtp.mailfrom=bounce@public.govdelivery.com;",
    "       dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE) header.from=public.govdelivery.com",
)
UNTRUSTED_RESULTS = (
    "mx.attacker.example;",
    "       dkim=pass header.i=@public.govdelivery.com;",
    "       spf=pass smtp.mailfrom=bounce@public.govdelivery.com;",
    "       dmarc=pass header.from=public.govdelivery.com",
)

# What a sender check trusting only mx.google.com should conclude ("pass" for the rest).
AUTH_VERDICTS = {
    "auth/dod-release-forged.eml": "fail",
    "auth/dod-release-untrusted-authserv.eml": "none",
    "auth/dod-release-no-auth.eml": "none",
}

DOD_FIXTURES: dict[str, mailgen.DodSpec] = {
    "dod-release.eml": ROK,
    "dod-advisory.eml": STORIES["advisory"],
    "dod-transcript.eml": STORIES["transcript"],
    "dod-contract.eml": STORIES["contract"],
    "dod-speech.eml": STORIES["speech"],
    "dod-war-release.eml": STORIES["war-release"],
    "dod-release-topic2.eml": replace(
        ROK, topic_code="USDOD_2", subscriber="subscriber+usdod2@example.org"
    ),
    "dod-release-corrected.eml": replace(
        ROK,
        paragraphs=CORRECTED_PARAGRAPHS,
        mail_date=datetime(2024, 7, 28, 10, 31, 5, tzinfo=mailgen.CDT),
    ),
    "dod-release-cp1252.eml": STORIES["readout-cp1252"],
    "dod-release-wrong-charset.eml": STORIES["readout-wrong-charset"],
    "dod-html-only.eml": replace(STORIES["energy-challenge"], parts="html"),
    "auth/dod-release-forged.eml": replace(FORGED, authentication_results=FAILED_RESULTS),
    "auth/dod-release-untrusted-authserv.eml": replace(
        FORGED, bulletin_id="20240728.999999992", authentication_results=UNTRUSTED_RESULTS
    ),
    "auth/dod-release-no-auth.eml": replace(
        FORGED, bulletin_id="20240728.999999993", authentication_results=()
    ),
}

GENERAL_FIXTURES: dict[str, Callable[[], bytes]] = {
    "govdelivery-standard.eml": mailgen.govdelivery_bulletin,
    "govdelivery-advanced.eml": mailgen.advanced_bulletin,
    "govdelivery-text-only.eml": mailgen.text_only_bulletin,
    "subscription-confirmation.eml": mailgen.subscription_confirmation,
    "personal-message.eml": mailgen.personal_message,
}


def malformed_fixtures() -> dict[str, bytes]:
    """The broken mail a parser must survive (stored raw with an error, never a crash)."""
    release = mailgen.render_dod(STORIES["housing"])
    eight_bit = (
        b"Date: Tue, 06 Aug 2024 10:00:00 -0500\r\n"
        b"From: D\xe9partement de la D\xe9fense <USDOD@public.govdelivery.com>\r\n"
        b"To: subscriber@example.org\r\n"
        b"Message-ID: <eight-bit-junk@public.govdelivery.com>\r\n"
        b"Subject: Pr\xe9sentation \xff\xfe\x81 des r\xc3\xa9sultats\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain\r\n\r\n"
        b"Caf\xe9 \x80\x81\x9f junk: \xc3\x28 \xa0\xa1 \xf0\x28\x8c\x28 end\r\n"
    )
    garbage = (
        b"this is not a header\r\n"
        b":::\r\n"
        b"From: <<<@@@>>>\r\n"
        b"Subject:\x01\x02\x03\r\n"
        b"Date: yesterday-ish\r\n"
        b"X-Very-Long: " + b"a" * 5000 + b"\r\n"
        b"Content-Type: multipart/alternative\r\n"
        b" \r\n"
        b"\tcontinuation without a header\r\n"
    )
    bad_base64 = mailgen.render_dod(STORIES["housing"]).replace(
        b"Content-Transfer-Encoding: quoted-printable", b"Content-Transfer-Encoding: base64", 1
    )
    bad_headers = (
        mailgen.render_dod(replace(STORIES["housing"], bulletin_id="20240815.126544399"))
        .replace(b"Date: Thu, 15 Aug 2024 13:05:22 -0500", b"Date: Thu, 32 Aug 2024 25:61:00 +9999")
        .replace(
            b"Subject: Department of Defense Releases",
            b"Subject: =?utf-8?q?broken=ZZ?= =?x-unknown?b?!!!?= Department of Defense Releases",
        )
        .replace(b'From: "U.S. Department of Defense" <USDOD@public.govdelivery.com>',
                 b'From: "U.S. Department of Defense <USDOD@public.govdelivery.com')
    )  # fmt: skip
    return {
        "truncated-mid-part.eml": mailgen.truncated(release, 0.6),
        "missing-closing-boundary.eml": mailgen.without_closing_boundary(release),
        "unknown-charset.eml": mailgen.render_dod(
            replace(STORIES["publication"], declared_charset="x-unknown-42")
        ),
        "eight-bit-no-charset.eml": eight_bit,
        "missing-message-id.eml": mailgen.render_dod(replace(STORIES["housing"], message_id="")),
        "headers-only.eml": mailgen.headers_only(release),
        "binary-junk.eml": mailgen.binary_junk(8192, seed=1),
        "nul-bytes.eml": b"\x00" * 4096,
        "header-garbage.eml": garbage,
        "deeply-nested.eml": mailgen.deeply_nested(50),
        "empty.eml": b"",
        "bad-base64.eml": bad_base64,
        "bad-headers.eml": bad_headers,
    }


def _sender(raw: bytes) -> dict[str, Any]:
    msg = email.message_from_bytes(raw)
    name, address = email.utils.parseaddr(str(msg["From"]))
    return {
        "message_id": str(msg["Message-ID"]).strip("<>") if msg["Message-ID"] else None,
        "from_name": name,
        "from_address": address.lower(),
        "sent_at": email.utils.parsedate_to_datetime(str(msg["Date"])).astimezone(UTC).isoformat(),
    }


def dod_expected(spec: mailgen.DodSpec, raw: bytes) -> dict[str, Any]:
    return {
        "kind": "release",
        "title": spec.the_title,
        "release_date": spec.release_date.isoformat(),
        "release_date_source": "body",
        "release_type": mailgen.KINDS[spec.kind].release_type,
        "agency": spec.agency.name,
        "account_code": spec.agency.account_code,
        "bulletin_id": spec.bulletin_id,
        "url": spec.url,
        "first_paragraph": mailgen.body_text(spec.the_paragraphs[:1]),
        "body_text": mailgen.body_text(spec.the_paragraphs),
        "subscriber": spec.subscriber,
        "topic_code": spec.topic_code,
        "profile": "dod",
        **_sender(raw),
    }


def general_expected(raw: bytes) -> dict[str, Any]:
    """What the GovDelivery profile should make of the three general bulletins."""
    m = mailgen
    table = {
        "HealthCare.gov": (m.HC_SUBJECT, m.HEALTHCARE, "20230109.69441521",
                           (*m.HC_PARAGRAPHS, *m.HC_BOTTOM_PARAGRAPHS)),
        "Example County Department of Public Works": (
            m.AB_SUBJECT, m.EXAMPLE_COUNTY, "20250911.700112233", m.AB_PARAGRAPHS),
        "Oxford City Council": (m.OXFORD_SUBJECT, m.OXFORD, "20240418.93217865",
                                m.OXFORD_PARAGRAPHS),
    }  # fmt: skip
    sender = _sender(raw)
    title, agency, bulletin_id, paragraphs = table[sender["from_name"]]
    # A greeting names the subscriber: it never reaches the stored body (issue E).
    body = mailgen.body_text([p for p in paragraphs if p != m.HC_GREETING])
    return {
        "kind": "release",
        "title": title,
        "release_date": sender["sent_at"][:10],
        "release_date_source": "mail",
        "release_type": "other",
        "agency": agency.name,
        "account_code": agency.account_code,
        "bulletin_id": bulletin_id,
        "url": mailgen.web_copy_url(agency.account_code, bulletin_id),
        "first_paragraph": body.split("\n\n")[0],
        "body_text": body,
        "subscriber": "subscriber@example.org",
        "profile": "govdelivery",
        **sender,
    }


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main() -> None:
    expected: dict[str, dict[str, Any]] = {}
    for name, spec in DOD_FIXTURES.items():
        raw = mailgen.render_dod(spec)
        write(HERE / name, raw)
        expected[name] = dod_expected(spec, raw)
    for name, build in GENERAL_FIXTURES.items():
        raw = build()
        write(HERE / name, raw)
        if name.startswith("govdelivery-"):
            expected[name] = general_expected(raw)
        else:
            expected[name] = {"kind": "ignored", **_sender(raw)}
    for name, entry in expected.items():
        entry["auth"] = AUTH_VERDICTS.get(name, "pass")
    expected["dod-release-topic2.eml"]["same_release_as"] = "dod-release.eml"
    expected["dod-release-corrected.eml"]["new_version_of"] = "dod-release.eml"
    for name, data in malformed_fixtures().items():
        write(HERE / "malformed" / name, data)
    text = json.dumps(expected, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    (HERE / "expected.json").write_text(text, encoding="utf-8")
    print(f"wrote {len(expected)} fixtures, {len(malformed_fixtures())} malformed, expected.json")


if __name__ == "__main__":
    main()
