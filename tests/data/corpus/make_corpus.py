"""Write the accuracy corpus: real public GovDelivery bulletins as mail, and corpus.json.

Each entry's words come from a real public bulletin (origins: tests/data/README.md,
"corpus/"); what is synthetic is said per entry (`synthetic`). The expectations (title,
date, first and last sentence of the body, phrases that must not appear in any public
column) are written here by hand from the source, not by running the extractor.

    .venv/bin/python tests/data/corpus/make_corpus.py
"""

from __future__ import annotations

import html
import json
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent
sys.path.insert(0, str(DATA.parents[1] / "examples"))

import mailgen  # noqa: E402 - lives in examples/, found through the path above

SRC = HERE / "src"
SAMPLES = DATA / "samples"
PST = timezone(timedelta(hours=-8), "PST")
EST = timezone(timedelta(hours=-5), "EST")
SUBSCRIBER = "subscriber@example.org"
LINK_REMOVED = "https://example.invalid/link-removed"  # where the archive removed a link

KING_COUNTY_METRO = mailgen.Agency(  # account code real (its bulletin URLs); the rest assumed
    name="King County Metro Transit",
    account_code="WAKING",
    from_address="WAKING@public.govdelivery.com",
    postal_address="Seattle, WA",
    site="https://kingcounty.gov/metro",
)
WYOMING_SOS = mailgen.Agency(  # the From name is real; the address and account are unknown
    name="Wyoming Secretary of State's Office",
    account_code="",
    from_address="news@sos.example.invalid",
    postal_address="Cheyenne, WY",
    site="https://sos.wyo.gov",
)
WAKING_SUBJECT = "Hot Chocolate 15K & 5K Run reroutes Sunday, March 6"  # synthetic
WAKING_FIRST = (
    "On Sunday, March 6, from the start of service until about 11:00 AM, north downtown "
    "Seattle, west Queen Anne and Aurora Av N, transit service will be rerouted during the "
    "Hot Chocolate 15K & 5K Run."
)
WAKING_LAST = "Thank you for riding and for using Metro’s services."
FOOTER = ("update your subscriptions", "no charge", "This email was sent to", "GovDelivery")
TOKENS = (SUBSCRIBER, "lnks.gd", "enid=", "govdelivery.com/track")


def markup_paragraphs(fragment: str) -> tuple[str, ...]:
    """A real bulletin's HTML paragraphs in mailgen's markup: words and links kept."""
    paragraphs = []
    for inner in re.findall(r"<p>(.*?)</p>", fragment, re.DOTALL):
        linked = re.sub(
            r'<a href="([^"]+)"[^>]*>(.*?)</a>',
            lambda m: f"[{html.unescape(m.group(2))}]({html.unescape(m.group(1))})",
            inner,
        )
        paragraphs.append(html.unescape(re.sub(r"<[^>]+>", "", linked)).replace("\u00a0", " "))
    return tuple(paragraphs)


def dod_text() -> str:
    """The real DoD release as text, from "Left" to the tagline (the blog's lines cut),
    the blog's subscription address replaced."""
    lines = (SAMPLES / "dod-release-as-text-2024-07-28.txt").read_text("utf-8").split("\n")
    start = lines.index("Left")
    end = next(i for i, line in enumerate(lines) if line.startswith("1400 Defense Pentagon"))
    text = "\n".join(lines[start : end + 1]) + "\n"
    return re.sub(r"sent to \S+@blogger\.com", f"sent to {SUBSCRIBER}", text)


def oxford_text() -> str:
    """The real Oxford reminder below its forward header, the reader's address replaced."""
    forwarded = (SAMPLES / "govdelivery-oxford-bulletin-2024-04-18.forwarded.txt").read_text()
    text = forwarded.split("To: <xxx>\n", 1)[1]
    return text.replace("jameshannett@gmail.com", SUBSCRIBER)


def wyoming_text() -> str:
    """The archive's text of the Wyoming release; removed links as a placeholder URL, and
    a synthetic GovDelivery text footer (the archive's copy stops at "###")."""
    body = (SRC / "wysos-2023-12-28.txt").read_text("utf-8").replace("[link removed]", LINK_REMOVED)
    return body + (
        "\n________________________________________________________________________\n\n"
        "You can update your subscriptions, modify your password or email address, or stop "
        f"subscriptions at any time on your Subscriber Preferences Page [ {LINK_REMOVED} ].\n\n"
        "This service is provided to you at no charge by Wyoming Secretary of State's Office."
        "\n________________________________________________________________________\n\n"
        f"This email was sent to {SUBSCRIBER} using GovDelivery Communications Cloud on behalf "
        "of: Wyoming Secretary of State's Office · Cheyenne, WY\n"
    )


def entries() -> list[tuple[str, bytes | None, dict[str, Any]]]:
    """(file name, mail or None for an existing fixture, manifest entry)."""
    waking = markup_paragraphs((SRC / "waking-139671f.html").read_text("utf-8"))
    waking_mail = {
        "agency": KING_COUNTY_METRO,
        "subject": WAKING_SUBJECT,
        "paragraphs": waking,
        "button": None,
        "bulletin_id": "20160301.55501001",
        "mail_date": datetime(2016, 3, 1, 12, 0, 7, tzinfo=timezone(timedelta(hours=-6))),
        "topic_code": "WAKCDOT_22",
    }
    waking_expect = {
        "title": WAKING_SUBJECT,
        "release_date": "2016-03-01",
        "first_sentence": WAKING_FIRST,
        "last_sentence": WAKING_LAST,
        "absent": ["View as a webpage", "Facebook", *FOOTER, *TOKENS],
    }
    out: list[tuple[str, bytes | None, dict[str, Any]]] = [
        (
            "uscmshim-standard-real-html.eml",
            mailgen.wrap_bulletin(
                agency=mailgen.HEALTHCARE,
                subject=mailgen.HC_SUBJECT,
                mail_date=datetime(2023, 1, 9, 10, 31, 4, tzinfo=mailgen.CST),
                bulletin_id="20230109.69441521",
                html_part=(SAMPLES / "govdelivery-uscmshim-bulletin-2023-01-09.html").read_text(),
                topic_code="USCMSHIM_1",
            ),
            {
                "account": "USCMSHIM",
                "template": "standard",
                "synthetic": "headers (the HTML part is the real decoded part, verbatim)",
                "title": mailgen.HC_HEADLINE,
                "release_date": "2023-01-09",
                "first_sentence": "Our records show you still need to apply for 2023 health "
                "coverage.",
                "last_sentence": "The HealthCare.gov Team",
                "absent": [
                    "Luigi",
                    "View in browser",
                    "This message is paid for",
                    "Visit HealthCare.gov to see if you qualify",
                    "7500 Security",
                    *FOOTER,
                    *TOKENS,
                ],
            },
        ),
        (
            "usdod-release-real-text.eml",
            mailgen.wrap_bulletin(
                agency=mailgen.DEFENSE,
                subject="Joint Press Release for the ROK-U.S. Defense Ministerial Meeting",
                mail_date=datetime(2024, 7, 28, 8, 12, 37, tzinfo=mailgen.CDT),
                bulletin_id="20240728.123456781",
                text_part=dod_text(),
                topic_code="USDOD_1",
            ),
            {
                "account": "USDOD",
                "template": "dod (text part)",
                "synthetic": "headers; the subscriber address",
                "title": "Joint Press Release for the ROK-U.S. Defense Ministerial Meeting",
                "release_date": "2024-07-27",
                "first_sentence": (
                    "On July 28, 2024, Minister of National Defense Shin Wonsik and Secretary of "
                    "Defense Lloyd J. Austin III met in Tokyo to hold discussions on major issues "
                    "facing the ROK-U.S. Alliance, including the security of the Korean Peninsula "
                    "and the region, strengthening Alliance capabilities for deterrence and "
                    "defense, and opportunities to deepen the Alliance."
                ),
                "last_sentence": "Minister Shin and Secretary Austin affirmed that the ROK-U.S. "
                "Alliance is stronger than ever, and they pledged to continue efforts to enhance "
                "the Alliance's contributions to peace and stability in the Korean Peninsula and "
                "the Indo-Pacific region.",
                "absent": [
                    "View Online",
                    "IMMEDIATE RELEASE",
                    "ABOUT",
                    "Facebook",
                    "Unsubscribe",
                    "1400 Defense Pentagon",
                    *FOOTER,
                    *TOKENS,
                ],
            },
        ),
        (
            "../dod-release.eml",
            None,
            {
                "account": "USDOD",
                "template": "dod (HTML)",
                "synthetic": "markup, text part and headers (words real; see the table above)",
                "title": "Joint Press Release for the ROK-U.S. Defense Ministerial Meeting",
                "release_date": "2024-07-27",
                "first_sentence": "On July 28, 2024, Minister of National Defense Shin Wonsik",
                "last_sentence": "to peace and stability in the Korean Peninsula and the "
                "Indo-Pacific region.",
                "absent": [
                    "View Online",
                    "IMMEDIATE RELEASE",
                    "Facebook",
                    "Unsubscribe",
                    *FOOTER,
                    *TOKENS,
                ],
            },
        ),
        (
            "ukoxford-real-text.eml",
            mailgen.wrap_bulletin(
                agency=mailgen.OXFORD,
                subject=mailgen.OXFORD_SUBJECT,
                mail_date=datetime(2024, 4, 18, 16, 1, tzinfo=mailgen.BST),
                bulletin_id="20240418.93217865",
                text_part=oxford_text(),
                account_known=False,
            ),
            {
                "account": "YourOxford (code not known)",
                "template": "text only",
                "synthetic": "headers; the subscriber address (URLs were <xxx> in the source)",
                "title": mailgen.OXFORD_SUBJECT,
                "release_date": "2024-04-18",
                "first_sentence": "Bin collection reminder",
                "last_sentence": "01865 249811",
                "absent": [
                    "Having trouble viewing",
                    "Subscriber Preferences",
                    "subscriberhelp",
                    "[image",
                    "<xxx>",
                    *FOOTER,
                    *TOKENS,
                ],
            },
        ),
        *(
            (
                f"waking-advanced-{cell}-cell.eml",
                mailgen.advanced_bulletin(body_cell=cell, **waking_mail),
                {
                    "account": "WAKING",
                    "template": f"advanced, body in the {cell} cell",
                    "synthetic": "Advanced template markup, Subject, headers, ids, tagline "
                    "(words and link targets of the body real)",
                    **waking_expect,
                },
            )
            for cell in ("footer", "text", "header")
        ),
        (
            "wysos-real-text.eml",
            mailgen.wrap_bulletin(
                agency=WYOMING_SOS,
                subject="Secretary Gray Submits Public Comment Opposing U.S. Postal Service’s "
                "Proposal to Process Wyoming Mail in Colorado",
                mail_date=datetime(2023, 12, 28, 17, 11, tzinfo=EST),
                bulletin_id="20231228.77700001",
                text_part=wyoming_text(),
                account_known=False,
            ),
            {
                "account": "Wyoming Secretary of State (code not known)",
                "template": "text only",
                "synthetic": "headers, From address, footer and tagline; removed links as "
                f"{LINK_REMOVED}",
                "title": "Secretary Gray Submits Public Comment Opposing U.S. Postal Service’s "
                "Proposal to Process Wyoming Mail in Colorado",
                "release_date": "2023-12-28",
                "first_sentence": "For Immediate Release:",
                "last_sentence": "A copy of Secretary Gray?s letter can be found here.",
                "absent": [
                    "Having trouble viewing",
                    "2019_MediaRelease",
                    "###",
                    "Subscriber Preferences",
                    *FOOTER,
                    *TOKENS,
                ],
            },
        ),
        (
            "../govdelivery-advanced.eml",
            None,
            {
                "account": "EXCOUNTY (fictional)",
                "template": "advanced, body in the text cell",
                "synthetic": "all of it",
                "title": mailgen.AB_SUBJECT,
                "release_date": "2025-09-11",
                "first_sentence": "Crews from the Example County Department of Public Works will "
                "begin resurfacing Main Street",
                "last_sentence": "See the detour map",
                "absent": ["View as a webpage", "Facebook", *FOOTER, *TOKENS],
            },
        ),
    ]
    return out


def main() -> None:
    manifest = []
    for name, raw, entry in entries():
        if raw is not None:
            (HERE / name).write_bytes(raw)
        manifest.append({"file": name, **entry})
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (HERE / "corpus.json").write_text(text, encoding="utf-8")
    print(f"wrote {sum(1 for _, raw, _ in entries() if raw)} mails and corpus.json")


if __name__ == "__main__":
    main()
