"""Realistic GovDelivery mail for govfeed's tests, benchmark and demo.

Every public builder returns one complete RFC 5322 message as `bytes`, made with the
standard library's `email` package only. Layouts follow the real samples in
`../shared/samples/`; tests/data/README.md says which fixture is real and which synthetic.
Tracker links are built the way GovDelivery builds them, so they decode offline to their
destination (`decode_tracker`). Output is deterministic: the same arguments always give the
same bytes.

    import sys; sys.path.insert(0, "examples"); import mailgen
    raw = mailgen.dod_release(title="Something Happened", pad_to=12_000)

Paragraph markup accepted by every builder (kept tiny on purpose): `[text](url)` a link
wrapped in a lnks.gd tracker; `[text](<url>)` the same, wrapped a second time by a
links-1.govdelivery.com/CL0 tracker; `**bold**`; `__italic__`. `plain()` gives the text a
correct extractor should produce for a paragraph.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import quopri
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.utils import format_datetime, formataddr
from io import BytesIO
from typing import Any
from urllib.parse import quote, unquote, urlsplit

# The 78-column default folds long headers (List-Unsubscribe) into broken encoded-words.
GENERATION_POLICY = policy.SMTP.clone(max_line_length=998)
CDT = timezone(timedelta(hours=-5), "CDT")  # GovDelivery's mailers date mail in US Central
CST = timezone(timedelta(hours=-6), "CST")
BST = timezone(timedelta(hours=1), "BST")

JWT_HEADER = "eyJhbGciOiJIUzI1NiJ9"  # {"alg":"HS256"}, as in every real lnks.gd token
_SIGNING_KEY = b"mailgen: not GovDelivery's key"
_MIME_NAMES = {"cp1252": "windows-1252", "utf8": "utf-8", "latin-1": "iso-8859-1"}
_RULE = "_" * 72
# Real bulletins whose web-copy id is known (it is not derivable from the mailing id).
_KNOWN_WEB_IDS = {"20230109.69441521": "340e6fc"}


# --------------------------------------------------------------------------- agencies


@dataclass(frozen=True, slots=True)
class Agency:
    """A GovDelivery account and how its mail is signed."""

    name: str  # as the tagline spells it ("on behalf of: NAME")
    account_code: str
    from_address: str
    postal_address: str  # may hold inline HTML (a <span>), as real taglines do
    site: str  # the agency's web site, no trailing slash
    sender_name: str | None = None  # the From display name, when it is not `name`
    behalf_of: str | None = None  # the tagline's words after "on behalf of", when unusual
    phone: str | None = None
    dkim_domain: str = "public.govdelivery.com"
    social: tuple[tuple[str, str], ...] = ()

    @property
    def from_name(self) -> str:
        return self.sender_name or self.name

    def tagline(self, subscriber: str) -> str:
        """The GovDelivery tagline as HTML (text: `_strip_tags`)."""
        owner = self.behalf_of or f": {self.name}"
        tail = f" · {self.phone}" if self.phone else ""
        return (
            f"This email was sent to {subscriber} using GovDelivery Communications Cloud "
            f"on behalf of{owner} · {self.postal_address}{tail}"
        )


def _social(handle: str, instagram: str) -> tuple[tuple[str, str], ...]:
    return (
        ("Facebook", f"https://www.facebook.com/{handle}"),
        ("Twitter", f"https://twitter.com/{handle}"),
        ("Instagram", f"https://www.instagram.com/{instagram}/"),
        ("Youtube", f"https://www.youtube.com/@{handle}"),
    )


DEFENSE = Agency(
    name="U.S. Department of Defense",
    account_code="USDOD",
    from_address="USDOD@public.govdelivery.com",
    postal_address="1400 Defense Pentagon Washington, DC 20301-1400",
    site="https://www.defense.gov",
    social=_social("DeptofDefense", "deptofdefense"),
)
# Since September 2025 the department also signs as the Department of War (war.gov).
# Assumed: the account code, sending address and postal address did not change.
WAR = Agency(
    name="U.S. Department of War",
    account_code="USDOD",
    from_address="USDOD@public.govdelivery.com",
    postal_address="1400 Defense Pentagon Washington, DC 20301-1400",
    site="https://www.war.gov",
    social=_social("DeptofWar", "deptofwar"),
)
HEALTHCARE = Agency(
    name="Health Insurance Marketplace",
    account_code="USCMSHIM",
    from_address="USCMSHIM@subscriptions.cms.hhs.gov",  # synthetic: the real From is unknown
    postal_address="<span>7500 Security Boulevard · Baltimore MD 21244</span>",
    site="https://www.healthcare.gov",
    sender_name="HealthCare.gov",
    behalf_of=" the Health Insurance Marketplace",
    phone="1-800-318-2596",
    dkim_domain="subscriptions.cms.hhs.gov",
)
OXFORD = Agency(
    name="Oxford City Council",
    account_code="UKOXFORD",  # assumed: the sample does not show the account code
    from_address="YourOxford@public.govdelivery.com",
    postal_address="Oxford City Council, Town Hall, St Aldate's, Oxford, OX1 1BX",
    site="https://www.oxford.gov.uk",
)
EXAMPLE_COUNTY = Agency(  # fictional
    name="Example County Department of Public Works",
    account_code="EXCOUNTY",
    from_address="EXCOUNTY@public.govdelivery.com",
    postal_address="100 Example Plaza · Springfield, EX 00000",
    site="https://www.example.gov",
)


# --------------------------------------------------------------------------- trackers


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _number(*parts: object, digits: int) -> int:
    """A stable pseudo-random number of exactly `digits` digits."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    low = int(10 ** (digits - 1))
    return low + int(digest, 16) % (9 * low)


def _token(*parts: object, length: int) -> str:
    """A stable run of letters and digits (no '/', so it stays one URL path segment)."""
    raw = base64.b64encode(hashlib.sha512("|".join(map(str, parts)).encode()).digest())
    return raw.decode().replace("+", "q").replace("/", "Z").rstrip("=")[:length]


def lnks_gd(
    url: str, *, bulletin_id: str, link_id: int, subscriber_id: int, recipient_id: int
) -> str:
    """A `https://lnks.gd/l/<JWT>/s/<n>/br/<n>-l` tracker whose JWT payload holds `url`."""
    claims = {"bulletin_link_id": link_id, "uri": "bp2:click", "bulletin_id": bulletin_id}
    payload = json.dumps({**claims, "url": url}, separators=(",", ":"))
    signed = f"{JWT_HEADER}.{_b64url(payload.encode())}"
    signature = _b64url(hmac.new(_SIGNING_KEY, signed.encode(), hashlib.sha256).digest())
    return f"https://lnks.gd/l/{signed}.{signature}/s/{subscriber_id}/br/{recipient_id}-l"


def links_cl0(url: str, *, seed: str = "") -> str:
    """An Amazon SES click tracker on links-1.govdelivery.com, `url` percent-encoded."""
    h = hashlib.sha256(f"ses|{seed}|{url}".encode()).hexdigest()
    ses_id = f"0100019{h[:9]}-{h[9:17]}-{h[17:21]}-{h[21:25]}-{h[25:29]}-{h[29:41]}-000000"
    return (
        f"https://links-1.govdelivery.com/CL0/{quote(url, safe=':')}/1/{ses_id}/"
        f"{_token('cl0', seed, url, length=43)}={_number(seed, url, digits=3)}"
    )


def track_click(url: str, *, enid: str, link_id: int) -> str:
    """The older `links.govdelivery.com/track?type=click` tracker (destination appended)."""
    return f"https://links.govdelivery.com/track?type=click&enid={enid}&&&{link_id}&&&{url}"


def decode_tracker(url: str) -> str:
    """The destination of a GovDelivery tracker link, unwrapped offline (recursively)."""
    parts = urlsplit(url)
    if parts.netloc == "lnks.gd" and parts.path.startswith("/l/"):
        return decode_tracker(str(jwt_payload(url)["url"]))
    if parts.netloc.startswith("links-") and parts.path.startswith("/CL0/"):
        return decode_tracker(unquote(parts.path.split("/")[2]))
    if parts.netloc == "links.govdelivery.com" and url.count("&&&") >= 2:
        return decode_tracker(url.split("&&&", 2)[2])
    return url


def jwt_payload(url: str) -> dict[str, Any]:
    """The JSON claims inside a lnks.gd tracker's JWT (its middle segment)."""
    middle = urlsplit(url).path.split("/")[2].split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4)))
    return claims


@dataclass(slots=True)
class _Linker:
    """Wraps destinations in trackers, numbering links in document order as GovDelivery does."""

    bulletin_id: str
    subscriber: str
    topic_code: str
    subscriber_id: int
    recipient_id: int
    next_id: int = 100

    def _take(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def gd(self, url: str) -> str:
        return lnks_gd(
            url,
            bulletin_id=self.bulletin_id,
            link_id=self._take(),
            subscriber_id=self.subscriber_id,
            recipient_id=self.recipient_id,
        )

    def cl0(self, url: str) -> str:
        return links_cl0(url, seed=f"{self.bulletin_id}/{self.recipient_id}/{self._take()}")

    def click(self, url: str) -> str:
        return track_click(url, enid=self.enid("click"), link_id=self._take())

    def enid(self, kind: str) -> str:
        """The base64 `enid` GovDelivery puts in its tracking URLs (see the real sample)."""
        fields = (
            f"eas=1&bulletinrecipientid={self.recipient_id}-l&subscriberid={self.subscriber_id}"
            f"&msid=&auid=&mailingid={self.bulletin_id}&messageid=MDB-PRD-BUL-{self.bulletin_id}"
            f"&databaseid=1001&type={kind}&serial={_number(self.bulletin_id, digits=8)}"
            f"&emailid={self.subscriber}&userid={self.subscriber}&targetid=&fl=&mvid=&extra=&&&"
        )
        return base64.b64encode(fields.encode()).decode("ascii")

    def pixel(self) -> str:
        return f"https://links.govdelivery.com/track?type=open&enid={self.enid('open')}"

    def preferences(self, account_code: str) -> str:
        return (
            f"https://public.govdelivery.com/accounts/{account_code}/subscriber/edit"
            f"?preferences=true&topic_id={self.topic_code}#tab1"
        )


def _linker(bulletin_id: str, subscriber: str, topic_code: str, sent: datetime) -> _Linker:
    return _Linker(
        bulletin_id=bulletin_id,
        subscriber=subscriber,
        topic_code=topic_code,
        subscriber_id=_number("subscriber", subscriber, digits=9),
        recipient_id=_number("recipient", bulletin_id, subscriber, topic_code, sent, digits=12),
    )


# --------------------------------------------------------------------------- markup


_INLINE = re.compile(
    r"\[(?P<text>[^\]]+)\]\((?P<url><[^>]+>|[^)\s]+)\)|\*\*(?P<bold>.+?)\*\*|__(?P<em>.+?)__"
)


def plain(markup: str) -> str:
    """The text of a markup paragraph as a reader sees it (links and emphasis dropped)."""
    return _INLINE.sub(lambda m: plain(m["text"] or m["bold"] or m["em"]), markup)


def body_text(paragraphs: Sequence[str]) -> str:
    """The body a correct extractor produces: non-blank paragraphs, one blank line apart."""
    texts = (" ".join(plain(p).split()) for p in paragraphs)
    return "\n\n".join(t for t in texts if t)


def _render(markup: str, wrap: Callable[[str], str], link_style: str) -> tuple[str, str]:
    """A paragraph as (HTML, text); links tracked by `wrap`, shown as `text [ url ]` in text."""
    html_out: list[str] = []
    text_out: list[str] = []
    pos = 0
    for match in _INLINE.finditer(markup):
        html_out.append(html.escape(markup[pos : match.start()], quote=False))
        text_out.append(markup[pos : match.start()])
        if match["url"]:
            url = match["url"]
            href = links_cl0(wrap(url[1:-1]), seed=url) if url.startswith("<") else wrap(url)
            inner_html, inner_text = _render(match["text"], wrap, link_style)
            html_out.append(_anchor(href, inner_html, link_style))
            text_out.append(f"{inner_text} [ {href} ]")
        else:
            tag = "strong" if match["bold"] else "em"
            inner_html, inner_text = _render(match["bold"] or match["em"], wrap, link_style)
            html_out.append(f"<{tag}>{inner_html}</{tag}>")
            text_out.append(inner_text)
        pos = match.end()
    html_out.append(html.escape(markup[pos:], quote=False))
    text_out.append(markup[pos:])
    return "".join(html_out), "".join(text_out)


def _anchor(href: str, inner_html: str, style: str) -> str:
    return f'<a href="{html.escape(href)}" style="{style}">{inner_html}</a>'


def _strip_tags(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


_AP_MONTHS: tuple[str, ...] = ("Jan.", "Feb.", "March", "April", "May", "June", "July")
_AP_MONTHS += ("Aug.", "Sept.", "Oct.", "Nov.", "Dec.")


def ap_date(day: date) -> str:
    """A date as defense.gov prints it, AP style: "July 27, 2024", "Oct. 3, 2025"."""
    return f"{_AP_MONTHS[day.month - 1]} {day.day}, {day.year}"


def slugify(title: str) -> str:
    """The URL slug defense.gov derives from a title."""
    return re.sub(r"[^a-z0-9]+", "-", re.sub(r"['’.]", "", title.lower())).strip("-")


def web_copy_url(account_code: str, bulletin_id: str, web_id: str | None = None) -> str:
    """The bulletin's web copy: content.govdelivery.com/accounts/CODE/bulletins/HEX."""
    if web_id is None:
        known = _KNOWN_WEB_IDS.get(bulletin_id)
        web_id = known or format(int(bulletin_id.rsplit(".", 1)[-1]), "x")
    return f"https://content.govdelivery.com/accounts/{account_code}/bulletins/{web_id}"


# --------------------------------------------------------------------------- MIME


def mime_name(charset: str) -> str:
    """The IANA name to declare for a Python codec name ("cp1252" -> "windows-1252")."""
    return _MIME_NAMES.get(charset.lower(), charset.lower())


def _qp_text(body: str, subtype: str, charset: str, declared: str | None = None) -> Message:
    part = Message()
    part["Content-Type"] = f"text/{subtype}; charset={declared or mime_name(charset)}"
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(quopri.encodestring(body.encode(charset)).decode("ascii"))
    return part


def _multipart(subtype: str, parts: Sequence[Message], boundary: str) -> Message:
    if len(parts) == 1 and subtype == "alternative":
        return parts[0]
    container = Message()
    container.add_header("Content-Type", f"multipart/{subtype}", boundary=boundary)
    for part in parts:
        container.attach(part)
    return container


def _boundary(seed: str, when: datetime) -> str:
    """A Ruby mail-gem style boundary, as GovDelivery's Rails mailer writes them."""
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"--==_mimepart_{int(when.timestamp()):x}{h[:5]}_{h[5:9]}{h[9:14]}"


def encode_subject(subject: str, charset: str = "utf-8") -> str:
    """`subject` as RFC 2047 Q encoded-words (at most 75 characters each) unless ASCII."""
    if subject.isascii():
        return subject
    name = mime_name(charset)
    room = 75 - len(f"=?{name}?Q??=")
    words, current = [], ""
    for char in subject:
        encoded = "".join(
            "_" if b == 0x20 else chr(b) if chr(b).isalnum() and b < 0x80 else f"={b:02X}"
            for b in char.encode(charset)
        )
        if len(current) + len(encoded) > room:
            words.append(current)
            current = ""
        current += encoded
    words.append(current)
    return "\n ".join(f"=?{name}?Q?{word}?=" for word in words)


def _flatten(headers: Sequence[tuple[str, str]], body: Message) -> bytes:
    msg = Message()
    for name, value in headers:
        msg[name] = value
    msg["MIME-Version"] = "1.0"
    for name, value in body.items():
        msg[name] = value
    msg.set_payload(body.get_payload())
    buffer = BytesIO()
    # A compat32 Message keeps header values exactly as written (folding included); the
    # SMTP policy only sets CRLF line ends and the 998-column limit.
    BytesGenerator(buffer, policy=GENERATION_POLICY).flatten(msg)  # type: ignore[arg-type]
    return buffer.getvalue()


# --------------------------------------------------------------------------- headers


@dataclass(frozen=True, slots=True)
class _Envelope:
    """What the headers of one sent copy say."""

    agency: Agency
    subject: str  # already RFC 2047 encoded where needed
    mail_date: datetime
    subscriber: str
    message_id: str | None  # without <>; None: no Message-ID header
    recipient_id: int
    reply_to: str | None = None
    auth_results: tuple[str, ...] | None = None  # None: a Gmail pass; (): no header


def _envelope(
    agency: Agency,
    subject: str,
    mail_date: datetime,
    subscriber: str,
    linker: _Linker,
    *,
    message_id: str | None,
    charset: str = "utf-8",
    reply_to: str | None = None,
    authentication_results: Sequence[str] | None = None,
) -> _Envelope:
    if mail_date.tzinfo is None:
        raise ValueError("mail_date must be timezone-aware")
    if message_id is None:
        message_id = f"{linker.bulletin_id}.{linker.recipient_id}@public.govdelivery.com"
    results = None if authentication_results is None else tuple(authentication_results)
    return _Envelope(
        agency=agency,
        subject=encode_subject(subject, charset),
        mail_date=mail_date,
        subscriber=subscriber,
        message_id=message_id.strip("<>") or None,
        recipient_id=linker.recipient_id,
        reply_to=reply_to,
        auth_results=results,
    )


def pass_results(domain: str, mailfrom: str, ip: str) -> tuple[str, ...]:
    """Gmail's Authentication-Results lines for mail that passed DKIM, SPF and DMARC."""
    b = _token("header.b", domain, length=8)
    return (
        "mx.google.com;",
        f"       dkim=pass header.i=@{domain} header.s=gd2023 header.b={b};",
        f"       spf=pass (google.com: domain of {mailfrom} designates {ip} as permitted"
        f" sender) smtp.mailfrom={mailfrom};",
        f"       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from={domain}",
    )


def _pacific(moment: datetime) -> datetime:
    """`moment` in US Pacific time, as Gmail stamps its Received header."""
    utc = moment.astimezone(UTC)
    start = _nth_sunday(utc.year, 3, 2, hour_utc=10)  # 2 a.m. PST
    end = _nth_sunday(utc.year, 11, 1, hour_utc=9)  # 2 a.m. PDT
    if start <= utc < end:
        return utc.astimezone(timezone(timedelta(hours=-7), "PDT"))
    return utc.astimezone(timezone(timedelta(hours=-8), "PST"))


def _nth_sunday(year: int, month: int, nth: int, *, hour_utc: int) -> datetime:
    first = datetime(year, month, 1, hour_utc, tzinfo=UTC)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth - 1))


def _received(env: _Envelope, mailfrom: str, ip: str) -> list[tuple[str, str]]:
    """What the receiving server (Gmail) adds on top, newest first."""
    host = f"mailer{200 + _number(env.recipient_id, digits=2) % 40}.govd3.service.govdelivery.com"
    stamp = _pacific(env.mail_date + timedelta(seconds=3))
    when = f"{format_datetime(stamp)} ({stamp.tzname()})"
    smtp_id = _token("smtp", env.recipient_id, length=14).lower()
    results = env.auth_results
    if results is None:
        results = pass_results(env.agency.dkim_domain, mailfrom, ip)
    headers = [
        ("Delivered-To", env.subscriber),
        ("Received", f"by 2002:a05:7300:{_number(env.recipient_id, digits=4)}:b0:1a2:0:0 "
                     f"with SMTP id {smtp_id[:8]}csp{smtp_id[8:]};\n        {when}"),
        ("Return-Path", f"<{mailfrom}>"),
        ("Received", f"from {host} ({host}. [{ip}])\n        by mx.google.com with ESMTPS id "
                     f"6a1803df08f44-{smtp_id}.{stamp:%Y.%m.%d.%H.%M.%S}\n        for "
                     f"<{env.subscriber}>\n        (version=TLS1_3 cipher=TLS_AES_128_GCM_SHA256"
                     f" bits=128/128);\n        {when}"),
        ("Received-SPF", f"pass (google.com: domain of {mailfrom} designates {ip} as permitted"
                         f" sender) client-ip={ip};"),
    ]  # fmt: skip
    if results:
        headers.append(("Authentication-Results", "\n".join(results)))
    return headers


def _headers(env: _Envelope) -> list[tuple[str, str]]:
    """The header block of one GovDelivery send, top (newest) to bottom."""
    agency = env.agency
    ip = f"54.240.{_number(env.recipient_id, digits=2)}.{_number(env.subscriber, digits=3) % 250}"
    mailfrom = f"bounce-{env.recipient_id}@{agency.dkim_domain}"
    signature = _token("dkim", env.message_id, env.subject, length=172)
    headers = _received(env, mailfrom, ip)
    headers += [
        ("DKIM-Signature", f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={agency.dkim_domain};\n"
                           f"\ts=gd2023; t={int(env.mail_date.timestamp())};\n"
                           "\th=From:To:Subject:Date:Message-ID:List-Unsubscribe;\n"
                           f"\tbh={_token('bh', env.subject, length=43)}=;\n"
                           f"\tb={signature[:70]}\n\t {signature[70:]}"),
        ("Feedback-ID", f"1.us-east-1.{_token('fb', agency.account_code, length=43)}=:AmazonSES"),
        ("X-SES-Outgoing", f"{env.mail_date:%Y.%m.%d}-{ip}"),
        ("Date", format_datetime(env.mail_date)),
        ("From", formataddr((agency.from_name, agency.from_address))),
    ]  # fmt: skip
    if env.reply_to:
        headers.append(("Reply-To", env.reply_to))
    headers.append(("To", env.subscriber))
    if env.message_id:
        headers.append(("Message-ID", f"<{env.message_id}>"))
    headers.append(("Subject", env.subject))
    unsubscribe = (
        f"https://public.govdelivery.com/accounts/{agency.account_code}/subscriber/"
        f"one_click_unsubscribe?verification=5.{_token('v', env.subscriber, length=32)}"
        f"&destination={quote(env.subscriber, safe='')}"
    )
    headers.append(("X-Accountcode", agency.account_code))
    headers.append(("List-Unsubscribe", f"<{unsubscribe}>"))
    headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return headers


# --------------------------------------------------------------------------- HTML pieces


def _html_page(title: str, charset: str, css: str, body: str) -> str:
    return (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
        '  "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n<head>\n'
        f"<title>{html.escape(title, quote=False)}</title>\n"
        f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">\n'
        '<meta name="viewport" content="initial-scale=1.0">\n'
        '<meta name="format-detection" content="telephone=no">\n'
        f'<style type="text/css">\n{css}</style>\n</head>\n{body}\n</html>\n'
    )


_RESET_CSS = """\
    /*start reset css*/
div { line-height: 1; }
body, table, td, p, a, li, blockquote { -webkit-text-size-adjust: 100%; }
body { -webkit-text-size-adjust: none; -ms-text-size-adjust: none; }
table { border-spacing: 0; }
table, td { mso-table-lspace: 0pt; mso-table-rspace: 0pt; }
img { -ms-interpolation-mode: bicubic; }
body { margin: 0; padding: 0; }
img { border: none !important; height: auto; line-height: 1; outline: none; }
table td { border-collapse: collapse !important; }
.preheader { display: none !important; visibility: hidden; opacity: 0; height: 0; width: 0; }
  /*end reset css*/
.gd_combo_text_cell { padding: 10px !important; }
.gd_combo_image_cell { padding: 10px !important; }
"""


def _tagline_html(tagline: str) -> str:
    return (
        '<div id="tagline">\n    <hr>\n<table style="width: 100%;" border="0" cellspacing="0" '
        'cellpadding="0">\n<tbody>\n<tr>\n<td style="color: #757575; font-size: 10px; '
        f'font-family: Arial;" width="89%">{tagline}</td>\n</tr>\n</tbody>\n</table>\n\n</div>\n'
    )


def _pixel_html(src: str) -> str:
    return (
        f'<IMG SRC="{src}" WIDTH="1" HEIGHT="1" STYLE="border-width:0; border-style:hidden;"'
        ' ALT=""/>'
    )


def _standard_footer(agency: Agency, linker: _Linker) -> tuple[str, ...]:
    """GovDelivery's default subscriber footer (as in the Oxford sample), as markup."""
    return (
        "You can update your subscriptions, modify your password or email address, or stop "
        "subscriptions at any time on your "
        f"[Subscriber Preferences Page]({linker.preferences(agency.account_code)}). You will "
        "need to use your email address to log in. If you have questions or problems with the "
        "subscription service, please visit "
        "[subscriberhelp.govdelivery.com](https://subscriberhelp.govdelivery.com/).",
        f"This service is provided to you at no charge by [{agency.name}]({agency.site}/).",
    )


def _text_blocks(*blocks: str | Sequence[str]) -> str:
    """Plain-text part: blocks one blank line apart, a rule between groups."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, str):
            out.append(block)
        else:
            out.extend(b for b in block if b.strip())
    return "\n\n".join(out) + "\n"


# --------------------------------------------------------------------------- DoD


@dataclass(frozen=True, slots=True)
class Kind:
    label: str  # the type label at the top of the mail
    section: str  # defense.gov URL parts: /News/<section>/<singular>/Article/...
    singular: str
    release_type: str  # govfeed's release_type


KINDS = {
    "release": Kind("Release", "Releases", "Release", "release"),
    "advisory": Kind("Advisory", "Advisories", "Advisory", "advisory"),
    "transcript": Kind("Transcript", "Transcripts", "Transcript", "transcript"),
    "speech": Kind("Speech", "Speeches", "Speech", "speech"),
    "contract": Kind("Contract", "Contracts", "Contract", "contract"),
    "publication": Kind("Publication", "Publications", "Publication", "publication"),
}


def article_url(agency: Agency, kind: str, article_id: int, title: str) -> str:
    """The canonical defense.gov (or war.gov) URL of an article."""
    k = KINDS[kind]
    return f"{agency.site}/News/{k.section}/{k.singular}/Article/{article_id}/{slugify(title)}/"


@dataclass(frozen=True, slots=True)
class DodSpec:
    """One DoD bulletin as sent to one subscriber; every field is a `dod_release` argument."""

    title: str = ""  # "": the real sample's title
    kind: str = "release"
    release_date: date = date(2024, 7, 27)
    mail_date: datetime = datetime(2024, 7, 28, 8, 12, 37, tzinfo=CDT)
    paragraphs: tuple[str, ...] = ()  # (): the real sample's paragraphs
    article_id: int = 3852401
    bulletin_id: str = "20240728.123456781"
    topic_code: str = "USDOD_1"
    subscriber: str = "subscriber@example.org"
    message_id: str | None = None  # None: derived; "": no Message-ID header
    agency: Agency = DEFENSE
    charset: str = "utf-8"
    declared_charset: str | None = None  # a charset to declare instead of the true one
    parts: str = "both"  # "both", "html" or "text"
    pad_to: int | None = None
    reply_to: str | None = None
    authentication_results: tuple[str, ...] | None = None  # None: pass; (): no header

    @property
    def the_title(self) -> str:
        return self.title or ROK_US_TITLE

    @property
    def the_paragraphs(self) -> tuple[str, ...]:
        return self.paragraphs or ROK_US_PARAGRAPHS

    @property
    def url(self) -> str:
        return article_url(self.agency, self.kind, self.article_id, self.the_title)


@dataclass(frozen=True, slots=True)
class _DodView:
    """Everything the DoD template shows, links already tracked, in reading order."""

    title: str
    label: str
    date_line: str
    charset: str
    home: str
    view_online: str
    paragraphs: tuple[tuple[str, str], ...]  # (html, text)
    nav: tuple[tuple[tuple[str, str], ...], ...]  # rows of (text, tracker)
    site_links: tuple[tuple[str, str], ...]
    social: tuple[tuple[str, str], ...]
    bottom: tuple[tuple[str, str], ...]  # Unsubscribe, Contact Us
    tagline: str
    pixel: str


_NAV_ROWS = (
    (("Press Advisories", "/News/Advisories/"), ("Releases", "/News/Releases/")),
    (("Transcripts", "/News/Transcripts/"),),
    (("Speeches", "/News/Speeches/"), ("Publications", "/News/Publications/")),
    (("Contracts", "/News/Contracts/"),),
)
_SITE_LINKS = (
    ("ABOUT", "/About/"),
    ("NEWS", "/News/"),
    ("HELP CENTER", "/Contact/Help-Center/"),
    ("PRESS PRODUCTS", "/News/Press-Products/"),
)
_DOD_P = (
    "mso-line-height-rule: exactly; line-height: 150%; color: #1b1b1b; font-family: "
    "Georgia, 'Times New Roman', serif; font-size: 16px; margin: 0 0 16px; padding: 0;"
)
_DOD_LINK = "color: #005ea2; text-decoration: underline;"
_DOD_FOOT_LINK = "color: #ffffff; text-decoration: none; font-family: Arial, sans-serif;"
_DOD_IMG = "https://content.govdelivery.com/attachments/fancy_images/USDOD/2021/05"
_DOD_CSS = _RESET_CSS + (
    ".dod-type span { letter-spacing: 1px; text-transform: uppercase; }\n"
    "@media only screen and (max-device-width: 480px) {\n"
    "  table#yahoo, table#yahoo table { position: relative; }\n"
    "  .main-table, .main-footer { width:100% !important; min-width:100% !important; }\n"
    "  table#yahoo .mobile-hide { display:none !important; }\n"
    "  table#yahoo h1.dod-title { font-size:20pt !important; }\n"
    "  table#yahoo p, table#yahoo .gd_p { font-size:13pt !important; }\n}\n"
)


def _dod_view(spec: DodSpec, paragraphs: Sequence[str], linker: _Linker) -> _DodView:
    agency, gd = spec.agency, linker.gd
    home, view_online = gd(agency.site + "/"), gd(spec.url)
    body = tuple(_render(p, gd, _DOD_LINK) for p in paragraphs)
    # Template links (navigation, social) carry only Amazon SES's CL0 tracker.
    cl0 = linker.cl0
    nav = [tuple((text, cl0(agency.site + path)) for text, path in row) for row in _NAV_ROWS]
    site_links = tuple((text, cl0(agency.site + path)) for text, path in _SITE_LINKS)
    social = tuple((text, cl0(link)) for text, link in agency.social)
    unsubscribe = gd(linker.preferences(agency.account_code))
    return _DodView(
        title=spec.the_title,
        label=KINDS[spec.kind].label,
        date_line=ap_date(spec.release_date),
        charset=mime_name(spec.charset),
        home=home,
        view_online=view_online,
        paragraphs=body,
        nav=(nav[0] + nav[1], nav[2] + nav[3]),
        site_links=site_links,
        social=social,
        bottom=(
            ("Unsubscribe", unsubscribe),
            ("Contact Us", linker.cl0(agency.site + "/Contact/")),
        ),
        tagline=agency.tagline(linker.subscriber),
        pixel=linker.pixel(),
    )


def _dod_main_html(v: _DodView) -> str:
    paragraphs = "\n".join(f'<p class="gd_p" style="{_DOD_P}">{h}</p>' for h, _ in v.paragraphs)
    return (
        '<td id="main-body" width="560" valign="top" data-govdstyle="all" '
        'data-govdtitle="Main Body" style="padding: 24px 0 30px;">\n'
        '<table width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="border-collapse: collapse;">\n<tr>\n'
        '<td class="dod-type" align="left" valign="middle"><span style="font-family: Arial, '
        "sans-serif; font-size: 12px; font-weight: bold; color: #ffffff; background-color: "
        f'#005ea2; padding: 3px 8px;">{v.label}</span></td>\n'
        '<td class="dod-view-online" align="right" valign="middle" style="font-family: Arial, '
        f'sans-serif; font-size: 12px;">{_anchor(v.view_online, "View Online", _DOD_LINK)}'
        "</td>\n</tr>\n</table>\n"
        '<p class="dod-status" style="font-family: Arial, sans-serif; font-size: 12px; '
        'font-weight: bold; color: #565c65; margin: 20px 0 6px;">IMMEDIATE RELEASE</p>\n'
        '<h1 class="dod-title" style="font-family: Georgia, serif; font-size: 26px; '
        'line-height: 1.2; font-weight: normal; color: #112e51; margin: 0 0 10px;">'
        f"{html.escape(v.title, quote=False)}</h1>\n"
        '<p class="dod-date" style="font-family: Arial, sans-serif; font-size: 13px; '
        f'color: #565c65; margin: 0 0 20px;">{v.date_line}</p>\n'
        f'<div class="dod-body">\n{paragraphs}\n</div>\n</td>\n'
    )


def _dod_spacer(alt: str, number: int) -> str:
    return (
        f'<td width="20" class="mobile-hide" valign="top"><img src="{_DOD_IMG}/{number}/'
        f'spacer-{alt.lower()}_original.gif" alt="{alt}" width="20" height="1" '
        'style="display: block; border: none;"></td>\n'
    )


def _dod_footer_html(v: _DodView) -> str:
    gap = "&nbsp;&nbsp;&nbsp;"

    def row(links: Sequence[tuple[str, str]], sep: str = gap) -> str:
        cells = sep.join(_anchor(href, text, _DOD_FOOT_LINK) for text, href in links)
        return (
            f'<tr><td align="center" style="padding: 4px 0; font-size: 13px;">{cells}</td></tr>\n'
        )

    social = gap.join(
        f'<a href="{html.escape(href)}"><img src="{_DOD_IMG}/{4530180 + n}/{text.lower()}'
        f'_original.png" alt="{text}" width="24" height="24" style="border: none;"></a>'
        for n, (text, href) in enumerate(v.social)
    )
    return (
        '<tr><td id="main-footer" data-govdstyle="all" data-govdtitle="Main Footer" '
        'style="background-color: #112e51; padding: 20px;" bgcolor="#112e51">\n'
        '<table class="dod-nav" width="100%" cellpadding="0" cellspacing="0" border="0">\n'
        + "".join(row(r) for r in v.nav)
        + '<tr><td style="font-size: 13px;">&nbsp;</td></tr>\n'
        + row(v.site_links)
        + f'<tr><td align="center" style="padding: 10px 0;">{social}</td></tr>\n'
        + row(v.bottom, sep=' <span style="color: #ffffff;">|</span> ')
        + "</table>\n</td></tr>\n"
    )


def _dod_html(v: _DodView) -> str:
    body = (
        '<body style="margin: 0; padding: 0; width: 100% !important; '
        'background-color: #e9ecef;">\n<a name="gd_top" id="gd_top"></a>\n'
        '<table width="100%" cellpadding="0" cellspacing="0" border="0" align="center" '
        'class="gd_tbl_wrap"><tr><td style="background-color: #e9ecef; padding: 20px 0;" '
        'bgcolor="#e9ecef">\n<table class="main-table" id="yahoo" width="600" align="center" '
        'cellpadding="0" cellspacing="0" bgcolor="#ffffff" style="border-collapse: collapse; '
        'margin: 0 auto; background-color: #ffffff;">\n'
        '<tr><td id="header" align="center" style="background-color: #0b1f33;" '
        f'bgcolor="#0b1f33"><a href="{html.escape(v.home)}"><img class="govd_template_image" '
        f'src="{_DOD_IMG}/4530163/dod-banner_original.png" alt="" width="600" height="90" '
        'style="width: 600px; height: auto !important; border: none; display: block;"></a>'
        "</td></tr>\n<tr><td>\n"
        '<table width="100%" cellpadding="0" cellspacing="0" border="0" class="gd_body_row" '
        'style="border-collapse: collapse;">\n<tr valign="top">\n'
        + _dod_spacer("Left", 4530171)
        + _dod_main_html(v)
        + _dod_spacer("Right", 4530172)
        + "</tr>\n</table>\n</td></tr>\n"
        + _dod_footer_html(v)
        + "</table>\n</td></tr></table>\n"
        + _tagline_html(v.tagline)
        + _pixel_html(v.pixel)
        + "\n</body>"
    )
    return _html_page(v.title, v.charset, _DOD_CSS, body)


def _dod_text(v: _DodView) -> str:
    def links(row: Sequence[tuple[str, str]], sep: str = "   ") -> str:
        return sep.join(f"{text} [ {href} ]" for text, href in row)

    return _text_blocks(
        v.label,
        f"View Online [ {v.view_online} ]",
        "IMMEDIATE RELEASE",
        v.title,
        v.date_line,
        [text for _, text in v.paragraphs],
        [links(row) for row in v.nav],
        links(v.site_links),
        links(v.social),
        links(v.bottom, " | "),
        f"{_RULE}\n\n{_strip_tags(v.tagline)}",
    )


def _dod_send(spec: DodSpec, paragraphs: Sequence[str]) -> tuple[list[tuple[str, str]], Message]:
    """The headers and MIME body of one DoD send."""
    linker = _linker(spec.bulletin_id, spec.subscriber, spec.topic_code, spec.mail_date)
    env = _envelope(
        spec.agency,
        spec.the_title,
        spec.mail_date,
        spec.subscriber,
        linker,
        message_id=spec.message_id,
        charset=spec.charset,
        reply_to=spec.reply_to,
        authentication_results=spec.authentication_results,
    )
    view = _dod_view(spec, paragraphs, linker)
    wanted = {"both": ("plain", "html"), "html": ("html",), "text": ("plain",)}[spec.parts]
    renderers = {"plain": _dod_text, "html": _dod_html}
    parts = [_qp_text(renderers[s](view), s, spec.charset, spec.declared_charset) for s in wanted]
    boundary = _boundary(spec.the_title + spec.subscriber, spec.mail_date)
    return _headers(env), _multipart("alternative", parts, boundary)


def render_dod(spec: DodSpec) -> bytes:
    """The message `spec` describes (see `dod_release`)."""
    return _padded(
        lambda paras: _flatten(*_dod_send(spec, paras)), spec.the_paragraphs, spec.pad_to
    )


def dod_release(
    *,
    title: str = "",
    kind: str = "release",
    release_date: date = date(2024, 7, 27),
    mail_date: datetime = datetime(2024, 7, 28, 8, 12, 37, tzinfo=CDT),
    paragraphs: Sequence[str] = (),
    article_id: int = 3852401,
    bulletin_id: str = "20240728.123456781",
    topic_code: str = "USDOD_1",
    subscriber: str = "subscriber@example.org",
    message_id: str | None = None,
    agency: Agency = DEFENSE,
    charset: str = "utf-8",
    declared_charset: str | None = None,
    parts: str = "both",
    pad_to: int | None = None,
    reply_to: str | None = None,
    authentication_results: Sequence[str] | None = None,
) -> bytes:
    """A U.S. Department of Defense (or War) GovDelivery bulletin, multipart/alternative.

    Defaults reproduce the real sample (the ROK-U.S. joint press release of July 27, 2024).
    `kind` is one of `KINDS`; `agency=WAR` gives the Department of War branding;
    `charset` is the Python codec the parts are encoded with ("utf-8", "cp1252") and
    `declared_charset` a different one to declare; `parts` is "both", "html" or "text";
    `message_id=""` leaves Message-ID out and `authentication_results=()` leaves
    Authentication-Results out; `pad_to` appends realistic paragraphs until the message
    has at least that many bytes.
    """
    spec = DodSpec(
        title=title,
        kind=kind,
        release_date=release_date,
        mail_date=mail_date,
        paragraphs=tuple(paragraphs),
        article_id=article_id,
        bulletin_id=bulletin_id,
        topic_code=topic_code,
        subscriber=subscriber,
        message_id=message_id,
        agency=agency,
        charset=charset,
        declared_charset=declared_charset,
        parts=parts,
        pad_to=pad_to,
        reply_to=reply_to,
        authentication_results=None
        if authentication_results is None
        else tuple(authentication_results),
    )
    return render_dod(spec)


def _padded(
    build: Callable[[Sequence[str]], bytes], body: Sequence[str], pad_to: int | None
) -> bytes:
    """`build(body)`, with padding paragraphs appended until it reaches `pad_to` bytes."""
    raw = build(body)
    extra: list[str] = []
    while pad_to is not None and len(raw) < pad_to:
        # A paragraph costs about 2.4 bytes a character (HTML, text, QP, tracker-free).
        for _ in range(max(1, int((pad_to - len(raw)) / 2.4 / 230))):
            extra.append(PADDING_PARAGRAPHS[len(extra) % len(PADDING_PARAGRAPHS)])
        raw = build((*body, *extra))
    return raw


# --------------------------------------------------------------------------- GovDelivery


@dataclass(frozen=True, slots=True)
class Image:
    src: str
    alt: str
    width: int
    height: int
    href: str | None = None


_HC_IMG = "https://content.govdelivery.com/attachments/fancy_images/USCMSHIM"
_HC_HOME = (
    "https://www.healthcare.gov/?utm_campaign=20230109_oe_dna&utm_content=english"
    "&utm_medium=email&utm_source=govdelivery"
)
HC_SUBJECT = "Find affordable coverage by Jan. 15 at HealthCare.gov"
HC_HEADLINE = "Don’t wait any longer! Find coverage by Jan. 15"
HC_PREHEADER = "Visit HealthCare.gov to see if you qualify for financial help."
HC_LOGO = Image(
    f"{_HC_IMG}/2015/11/663146/healthcaredotgov-b_original.jpg",
    "HealthCare.gov with White background, Blue and Black letters hcgov",
    276,
    58,
    _HC_HOME,
)
HC_SIDE = Image(
    f"{_HC_IMG}/2015/11/663147/whitespace_original.jpg",
    "HealthCare.gov with White background hcgov",
    162,
    58,
    _HC_HOME,
)
HC_GRAPHIC = Image(
    f"{_HC_IMG}/2016/01/715449/urgent-january-15-deadline_original.png",
    "Urgent January 15 Deadline",
    470,
    45,
    _HC_HOME,
)
HC_CALL_TO_ACTION = Image(
    f"{_HC_IMG}/2022/05/5855583/log-in-case_original.png",
    "log in",
    305,
    49,
    _HC_HOME.replace("/?", "/login?"),
)
NBSP = "\u00a0"  # GovDelivery's editor leaves <p>&nbsp;</p> spacers between paragraphs
HC_GREETING = "Luigi"  # the real sample's first-name merge field: the subscriber's, never stored
HC_PARAGRAPHS = (
    HC_GREETING,
    NBSP,
    "Our records show you still need to apply for 2023 health coverage. **Don’t wait any "
    "longer - January 15 is the final day to enroll for coverage starting February 1**! "
    f"Return to [HealthCare.gov]({_HC_HOME}) and see what savings you qualify for and pick "
    "the right plan for you. ",
    NBSP,
)
HC_BOTTOM_PARAGRAPHS = (
    NBSP,
    "There’s more than one way to enroll in Marketplace coverage.** If you would like "
    "assistance from an agent or broker, or want to enroll through one of our certified "
    "enrollment partners, learn more **[**here**](https://www.healthcare.gov/find-assistance/"
    "?utm_campaign=20230109_oe_dna&utm_medium=email&utm_source=govdelivery)**. **",
    NBSP,
    "**Remember to enroll by January 15 for coverage starting February 1. **",
    NBSP,
    f"__The __[__HealthCare.gov__]({_HC_HOME})__ Team__",
)
_HC_PREFS = "https://public.govdelivery.com/accounts/USCMSHIM/subscriber"
HC_FOOTER = (
    "This message is paid for by the U.S. Department of Health and Human Services. It was "
    "created and distributed by the Centers for Medicare & Medicaid Services. You're "
    "receiving this message because you signed up for email updates from the HealthCare.gov "
    f"Team. You can [update your preferences]({_HC_PREFS}/edit?preferences=true#tab1), "
    f"[receive fewer emails]({_HC_PREFS}/edit#tab2) or [pause emails]({_HC_PREFS}/edit#tab3) "
    "until the next Open Enrollment period, or use our "
    f"[1-click unsubscribe]({_HC_PREFS}/one_click_unsubscribe) to stop receiving messages "
    "from the HealthCare.gov Team. Please contact support@subscriptions.cms.hhs.gov if you "
    "have questions or problems with your subscriptions.",
)
_GD_P = (
    "mso-line-height-rule: exactly; line-height: 140%; color: #333333; font-family: arial, "
    "helvetica, sans-serif; font-size: 17px; text-align: left; margin: 0; padding: 0;"
)
_GD_LINK = (
    "color: #0000EE; text-decoration: underline; -ms-word-break: break-all; word-break: "
    "break-word; -webkit-hyphens: none; -moz-hyphens: none; hyphens: none;"
)
_STANDARD_CSS = _RESET_CSS + (
    "@media only screen and (max-device-width: 480px) {\n"
    "    table#yahoo, table#yahoo table { position: relative; }\n"
    "    table#yahoo .govd_header { max-width: 480px !important; }\n"
    "    table#yahoo .govd_template_image { height: auto !important; max-width: 480px "
    "!important; width: 100% !important; margin:0 !important; }\n"
    "  .main-table, .main-footer, .mobile-footer, .mobile-tagline { width:100% !important; "
    "min-width:100% !important; max-width:480px !important; }\n"
    "  table#yahoo .tablecell { width:100% !important; display: block !important; }\n"
    "  table#yahoo p, table#yahoo .gd_p, table#yahoo li { font-size:13pt !important; }\n"
    "  table#yahoo h1 { font-size:18pt !important; }\n"
    "  .main-footer .hide { display: none !important; }\n"
    "  .mobile-hide { display:none !important; }\n}\n"
)


@dataclass(frozen=True, slots=True)
class _StandardView:
    subject: str
    charset: str
    preheader: str
    headline: str
    view_online: str
    logo: str  # ready HTML cells
    side_left: str
    side_right: str
    graphic: str
    call_to_action: str
    body: tuple[tuple[str, str], ...]
    bottom: tuple[tuple[str, str], ...]
    footer: tuple[tuple[str, str], ...]
    tagline: str
    pixel: str


def _image_html(image: Image | None, gd: Callable[[str], str]) -> str:
    if image is None:
        return ""
    tag = (
        f'<img class="govd_template_image" src="{image.src}" style="width: {image.width}px; '
        'height: auto !important; max-height: auto !important; border: none;" '
        f'alt="{html.escape(image.alt)}" width="{image.width}" height="{image.height}">'
    )
    if image.href is None:
        return tag
    return (
        f'<a href="{html.escape(gd(image.href))}" target="_blank" rel="noopener noreferrer" '
        f'style="{_GD_LINK}">{tag}</a>'
    )


def _section(cell_id: str, title: str, style: str, inner: str) -> str:
    """One full-width row of the standard template (a td with GovDelivery's data attributes)."""
    return (
        '<tr>\n<td>\n<table class="main-table" width="600" align="center" cellpadding="0" '
        'cellspacing="0" style="width: 600px; border-collapse: collapse; margin: 0 auto;">\n'
        f'<tr>\n<td id="{cell_id}" width="100%" data-govdstyle="all" data-govdtitle="{title}" '
        f'style="{style}" bgcolor="#FFFFFF">\n{inner}\n</td>\n</tr>\n</table>\n</td>\n</tr>\n'
    )


def _centered(inner: str) -> str:
    return (
        '<table width="100%" border="0" cellspacing="0" cellpadding="0" style="border-collapse: '
        f'collapse; table-layout: auto; margin: 0 auto;"><tr><td align="center">{inner}'
        "</td></tr></table>"
    )


def _paras_html(paras: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f'<p class="gd_p" style="{_GD_P}" align="left">{h}</p>' for h, _ in paras)


def _standard_header(v: _StandardView) -> str:
    side = (
        '<td width="27%" valign="top" class="mobile-hide" align="left">\n<table width="100%" '
        'align="left" cellpadding="0" cellspacing="0" valign="top" style="border-collapse: '
        'collapse; table-layout: auto; margin: 0 auto;">\n<tr valign="top">\n'
        '<td id="header-{0}" width="100%">\n{1}\n</td>\n</tr>\n</table>\n</td>\n'
    )
    return (
        '<tr valign="top" class="mobile-hide">\n<td valign="top" style="padding: 10px 0 20px;">'
        '\n<table class="main-table" width="600" align="left" cellpadding="0" cellspacing="0" '
        'style="width: 600px; border-collapse: collapse; margin: 0 auto;">\n<tr valign="top">\n'
        '<td width="80%" valign="bottom" class="tablecell" align="left"><table width="100%">'
        '<tr><td id="preheader-left" width="100%" data-govdstyle="all" '
        'data-govdtitle="Preheader Left" valign="bottom" style="padding: 0px 5px;">\n</td>'
        '</tr></table></td>\n<td width="20%" valign="bottom" class="tablecell" align="right">'
        '<table width="100%"><tr><td id="preheader-right" width="100%" valign="bottom" '
        'align="right">\n<p class="gd_p" style="text-align: right; color: #666; font-family: '
        f'arial,helvetica,sans-serif; font-size: 11px; margin: 0; padding: 0;" align="left">'
        f'<a href="{html.escape(v.view_online)}" style="color: #1473cb; text-decoration: none;">'
        '<span style="text-decoration: underline; color: #666;">View in browser</span></a></p>'
        "\n</td></tr></table></td>\n</tr>\n</table>\n</td>\n</tr>\n\n"
        '<tr valign="top">\n<td valign="top" style="border-top-width: 5px; border-top-color: '
        '#0d76ad; border-top-style: solid;">\n<table class="main-table" width="600" '
        'align="left" cellpadding="0" cellspacing="0" bgcolor="#FFFFFF" style="background-color:'
        ' #fff; width: 600px; border-collapse: collapse; margin: 0 auto;">\n<tr valign="top">\n'
        + side.format("left", v.side_left)
        + '<td width="46%" valign="top" class="tablecell" align="left">\n<table width="100%">'
        f'<tr valign="top">\n<td id="main-header" width="100%">\n{_centered(v.logo)}\n</td>\n'
        "</tr>\n</table>\n</td>\n"
        + side.format("right", v.side_right)
        + "</tr>\n</table>\n</td>\n</tr>\n\n"
    )


def _standard_html(v: _StandardView) -> str:
    white = "background-color: #FFFFFF; padding: {};"
    footer = "\n".join(
        '<p style="font-family: Arial, Helvetica, sans-serif; font-size: 0.7em; color: #666666;'
        f' mso-line-height-rule: exactly; line-height: 120%;">{h}</p>'
        for h, _ in v.footer
    )
    body = (
        '<body style="line-height:140%;margin:0;padding:0;width:100% !important;">\n'
        "<table bgcolor='#ffffff' border='0' cellpadding='0' cellspacing='0' "
        "style='width: 100%;'>\n<tbody>\n<tr bgcolor='#ffffff'>\n<td align='center' "
        "style='background-color: #ffffff; padding: 0px; font-size:1px; color:#ffffff' "
        f"valign='top'>\n{html.escape(v.preheader, quote=False)}\n</td>\n</tr>\n</tbody>\n"
        '</table>\n\n<a name="gd_top" id="gd_top"></a>\n\n'
        '  <table width="100%" cellpadding="0" cellspacing="0" border="0" align="center" '
        'class="gd_tbl_wrap"><tr><td style="background-color: #f0f0f1; margin: 0; padding: 0; '
        'width: 100% !important" bgcolor="#f0f0f1"><table class="main-table" width="600" '
        'align="center" cellpadding="0" cellspacing="0" id="yahoo" style="border-collapse: '
        'collapse; margin: 0 auto;">\n\n'
        + _standard_header(v)
        + _section(
            "main-headline",
            "Main Headline",
            "background-color: #0d76ad; padding: 20px;",
            '<h1 style="text-align: center; line-height: 1.1; font-weight: normal; color: '
            '#ffffff; font-family: arial, helvetica, sans-serif; font-size: 35px; margin: 0; '
            f'padding: 0;" align="center">{html.escape(v.headline, quote=False)}</h1>',
        )
        + (_section("main-graphic", "Main Graphic", white.format("20px 10px 0px"),
                    _centered(v.graphic)) if v.graphic else "")
        + _section("sub-headline-body", "Sub Headline - body", white.format("20px 20px 10px"),
                   _paras_html(v.body))
        + (_section("call-to-action", "Call to Action", white.format("0px 20px 5px"),
                    _centered(v.call_to_action)) if v.call_to_action else "")
        + _section("bottom-body", "Bottom Body", white.format("0px 20px 20px"),
                   _paras_html(v.bottom))
        + _section("main-footer", "Main Footer", "background-color: #0d76ad; padding: 20px;", "")
        + "\n</table></td></tr></table>\n\n\n\n"
        '<div id="mail_footer">\n    <table class="main-footer" style="border-collapse: '
        'collapse; margin: 0 auto; width: 100%; font-size: 1em;" border="0" cellspacing="0" '
        'cellpadding="0" align="center" bgcolor="#f0f0f1">\n<tbody>\n<tr valign="top">\n'
        '<td class="main-footer-left" style="border-collapse: collapse; padding: 30px 5px; '
        f'text-align: left;" valign="top">\n{footer}\n</td>\n</tr>\n</tbody>\n</table>\n'
        "<p>\u00a0</p>\n\n</div>\n"
        + _tagline_html(v.tagline)
        + "\n"
        + _pixel_html(v.pixel)
        + "</body>"
    )  # fmt: skip
    return _html_page(v.subject, v.charset, _STANDARD_CSS, body)


def _standard_text(v: _StandardView) -> str:
    return _text_blocks(
        f"Having trouble viewing this email? View it as a Web page [ {v.view_online} ].",
        _RULE,
        v.headline,
        [t for _, t in v.body],
        [t for _, t in v.bottom],
        _RULE,
        [t for _, t in v.footer],
        f"{_RULE}\n\n{_strip_tags(v.tagline)}",
    )


def govdelivery_bulletin(
    *,
    agency: Agency = HEALTHCARE,
    subject: str = HC_SUBJECT,
    headline: str = HC_HEADLINE,
    preheader: str = HC_PREHEADER,
    paragraphs: Sequence[str] = HC_PARAGRAPHS,
    bottom_paragraphs: Sequence[str] = HC_BOTTOM_PARAGRAPHS,
    footer: Sequence[str] | None = HC_FOOTER,
    logo: Image | None = HC_LOGO,
    side_image: Image | None = HC_SIDE,
    graphic: Image | None = HC_GRAPHIC,
    call_to_action: Image | None = HC_CALL_TO_ACTION,
    bulletin_id: str = "20230109.69441521",
    web_id: str | None = None,
    mail_date: datetime = datetime(2023, 1, 9, 10, 31, 4, tzinfo=CST),
    subscriber: str = "subscriber@example.org",
    topic_code: str = "USCMSHIM_1",
    message_id: str | None = None,
    charset: str = "utf-8",
    authentication_results: Sequence[str] | None = None,
) -> bytes:
    """A GovDelivery "standard template" bulletin (table#yahoo), text/plain + text/html.

    Defaults reproduce the real HealthCare.gov bulletin of 2023-01-09 (mailing id
    20230109.69441521, web copy bulletins/340e6fc). `footer=None` gives GovDelivery's
    default subscriber footer; `web_id` is the web copy's hex id (derived when None).
    """
    linker = _linker(bulletin_id, subscriber, topic_code, mail_date)
    env = _envelope(agency, subject, mail_date, subscriber, linker, message_id=message_id,
                    charset=charset, authentication_results=authentication_results)  # fmt: skip
    gd = linker.gd
    view_online = gd(web_copy_url(agency.account_code, bulletin_id, web_id))
    # Document order, as GovDelivery numbers links: left image, logo, right image.
    side_left, logo_html, side_right = (_image_html(i, gd) for i in (side_image, logo, side_image))
    view = _StandardView(
        subject=subject,
        charset=mime_name(charset),
        preheader=preheader,
        headline=headline,
        view_online=view_online,
        logo=logo_html,
        side_left=side_left,
        side_right=side_right,
        graphic=_image_html(graphic, gd),
        body=tuple(_render(p, gd, _GD_LINK) for p in paragraphs),
        call_to_action=_image_html(call_to_action, gd),
        bottom=tuple(_render(p, gd, _GD_LINK) for p in bottom_paragraphs),
        footer=tuple(
            _render(p, gd, _GD_LINK)
            for p in (_standard_footer(agency, linker) if footer is None else footer)
        ),
        tagline=agency.tagline(subscriber),
        pixel=linker.pixel(),
    )
    parts = [
        _qp_text(_standard_text(view), "plain", charset),
        _qp_text(_standard_html(view), "html", charset),
    ]
    return _flatten(_headers(env), _multipart("alternative", parts, _boundary(subject, mail_date)))


# --------------------------------------------------------------------------- Advanced


_AB_CSS = _RESET_CSS + (
    "/* GovDelivery Advanced Bulletin template (gd_ab_*) */\n"
    ".gd_ab_container { width: 100%; background-color: #eef1f4; }\n"
    ".gd_ab_content { width: 640px; background-color: #ffffff; }\n"
    ".gd_ab_headline h1 { font-family: Verdana, sans-serif; font-size: 28px; color: #1f3b57; }\n"
    ".gd_ab_body p { font-family: Verdana, sans-serif; font-size: 15px; line-height: 150%; }\n"
    ".gd_ab_footer p { font-family: Verdana, sans-serif; font-size: 11px; color: #5b6770; }\n"
    "@media only screen and (max-width: 480px) {\n"
    "  .gd_ab_content { width: 100% !important; }\n  .gd_ab_hide { display: none !important; }\n"
    "}\n"
)


def _ab_row(cls: str, inner: str, style: str = "padding: 0 32px;") -> str:
    return f'<tr>\n<td class="{cls}" style="{style}">\n{inner}\n</td>\n</tr>\n'


def _advanced_html(
    subject: str, charset: str, headline: str, blocks: dict[str, str], tagline: str, pixel: str
) -> str:
    body = (
        '<body class="gd_ab_body_bg" style="margin: 0; padding: 0;">\n'
        '<table class="gd_ab_container" id="gd_ab_container" role="presentation" width="100%" '
        'cellpadding="0" cellspacing="0" border="0">\n<tr>\n<td align="center">\n'
        '<table class="gd_ab_content" width="640" cellpadding="0" cellspacing="0" border="0">\n'
        + _ab_row("gd_ab_preheader", blocks["preheader"], "padding: 8px 32px; text-align: right;")
        + _ab_row("gd_ab_header", blocks["logo"], "padding: 16px 32px;")
        + _ab_row("gd_ab_headline", f"<h1>{html.escape(headline, quote=False)}</h1>")
        + _ab_row("gd_ab_text", f'<div class="gd_ab_body">\n{blocks["body"]}\n</div>')
        + _ab_row("gd_ab_button", blocks["button"], "padding: 8px 32px 24px;")
        + _ab_row("gd_ab_social gd_ab_hide", blocks["social"], "padding: 8px 32px;")
        + _ab_row("gd_ab_footer_cell", f'<div class="gd_ab_footer">\n{blocks["footer"]}\n</div>',
                  "padding: 16px 32px; background-color: #f7f7f7;")
        + "</table>\n</td>\n</tr>\n</table>\n"
        + _tagline_html(tagline)
        + _pixel_html(pixel)
        + "\n</body>"
    )  # fmt: skip
    return _html_page(subject, charset, _AB_CSS, body)


AB_SUBJECT = "Main Street resurfacing begins Monday, Sept. 15"
AB_PARAGRAPHS = (
    "Crews from the Example County Department of Public Works will begin resurfacing Main "
    "Street between 1st Avenue and 9th Avenue on Monday, Sept. 15, 2025. Work is expected to "
    "last about three weeks, weather permitting.",
    "Expect lane closures between 7 a.m. and 6 p.m. on weekdays. At least one lane in each "
    "direction will remain open, and access to businesses and driveways will be maintained.",
    "On-street parking on Main Street will not be available while crews are working on your "
    "block. Temporary parking is available at the "
    "[Civic Center garage](https://www.example.gov/parking/civic-center).",
    "Questions? Call the Public Works hotline at 555-0100 or email __publicworks@example.gov__.",
)


def advanced_bulletin(
    *,
    agency: Agency = EXAMPLE_COUNTY,
    subject: str = AB_SUBJECT,
    headline: str | None = None,
    paragraphs: Sequence[str] = AB_PARAGRAPHS,
    button: tuple[str, str] | None = (
        "See the detour map",
        "https://www.example.gov/public-works/main-street",
    ),
    bulletin_id: str = "20250911.700112233",
    web_id: str | None = None,
    mail_date: datetime = datetime(2025, 9, 11, 14, 30, 12, tzinfo=CDT),
    subscriber: str = "subscriber@example.org",
    topic_code: str = "EXCOUNTY_12",
    message_id: str | None = None,
    charset: str = "utf-8",
    body_cell: str = "text",
    images: Sequence[Image] = (),
) -> bytes:
    """A bulletin in GovDelivery's "Advanced" template: classes and ids prefixed `gd_ab_`.

    The `gd_ab_` names are plausibly invented (no real Advanced bulletin was at hand). This
    template's trackers are the older links.govdelivery.com/track?type=click kind, with
    CL0 trackers in the footer; `headline` defaults to the subject. `body_cell` is the
    cell the account writes its paragraphs in: "text" (the body cell), "header" (after the
    logo) or "footer" (inside `gd_ab_footer`, before GovDelivery's footer, as some
    accounts do); `images` follow the paragraphs (src as given: a test may key them).
    """
    headline = headline or subject
    linker = _linker(bulletin_id, subscriber, topic_code, mail_date)
    env = _envelope(agency, subject, mail_date, subscriber, linker, message_id=message_id,
                    charset=charset)  # fmt: skip
    click, p_style = linker.click, "margin: 0 0 14px;"
    view_online = click(web_copy_url(agency.account_code, bulletin_id, web_id))
    body = tuple(_render(p, click, _GD_LINK) for p in paragraphs)
    button_html = button_text = ""
    if button:
        href = click(button[1])
        button_html = _anchor(
            href,
            button[0],
            "background-color: #1f3b57; color: #ffffff; "
            "padding: 10px 18px; text-decoration: none; display: inline-block;",
        )
        button_text = f"{button[0]} [ {href} ]"
    footer = tuple(_render(p, linker.cl0, _GD_LINK) for p in _standard_footer(agency, linker))
    body_html = "\n".join(f'<p style="{p_style}">{h}</p>' for h, _ in body) + "".join(
        f'\n<p><img src="{html.escape(i.src)}" alt="{html.escape(i.alt)}" width="{i.width}" '
        f'height="{i.height}"></p>'
        for i in images
    )
    blocks = {
        "preheader": _anchor(view_online, "View as a webpage", "color: #5b6770;"),
        "logo": f'<img src="https://content.govdelivery.com/attachments/fancy_images/'
                f'{agency.account_code}/2024/02/7001234/logo_original.png" alt="{agency.name}" '
                'width="240" height="60" style="border: none;">',
        "body": body_html,
        "button": button_html,
        "social": _anchor(linker.cl0("https://www.facebook.com/examplecounty"), "Facebook", ""),
        "footer": "\n".join(f"<p>{h}</p>" for h, _ in footer),
    }  # fmt: skip
    if body_cell == "header":
        blocks["logo"], blocks["body"] = blocks["logo"] + "\n" + body_html, ""
    elif body_cell == "footer":
        blocks["footer"], blocks["body"] = body_html + "\n" + blocks["footer"], ""
    tagline = agency.tagline(subscriber)
    text = _text_blocks(
        f"View as a webpage [ {view_online} ]",
        headline,
        [t for _, t in body],
        *([button_text] if button_text else []),
        _RULE,
        [t for _, t in footer],
        f"{_RULE}\n\n{_strip_tags(tagline)}",
    )
    page = _advanced_html(subject, mime_name(charset), headline, blocks, tagline, linker.pixel())
    parts = [_qp_text(text, "plain", charset), _qp_text(page, "html", charset)]
    return _flatten(_headers(env), _multipart("alternative", parts, _boundary(subject, mail_date)))


# --------------------------------------------------------------------------- text only


OXFORD_SUBJECT = "Your bins will be picked up tomorrow, please put them out before 7am"
OXFORD_PARAGRAPHS = (  # the real Oxford reminder's words, as the sample shows them
    "Bin collection reminder",
    "Your next collection is on FRIDAY,",
    "...and will be for:",
    "RECYCLING (blue bin/clear sack) & FOOD WASTE (small green caddy)",
    "- Please present your bins and sacks at the edge of your property before 7am on your "
    "collection day.",
    "- You will be notified if there are any changes due to adverse weather.",
    "- If you have a query about the e-mail reminder service or the recycling scheme please "
    "e-mail recyclingandwaste@odsgroup.co.uk",
    "[@recycle4oxford](https://twitter.com/recycle4oxford)",
    "[www.oxford.gov.uk/recycling](https://www.oxford.gov.uk/recycling)",
    "recyclingandwaste@odsgroup.co.uk",
    "01865 249811",
)


def text_only_bulletin(
    *,
    agency: Agency = OXFORD,
    subject: str = OXFORD_SUBJECT,
    headline: str | None = None,
    paragraphs: Sequence[str] = OXFORD_PARAGRAPHS,
    bulletin_id: str = "20240418.93217865",
    web_id: str | None = None,
    mail_date: datetime = datetime(2024, 4, 18, 16, 1, 7, tzinfo=BST),
    subscriber: str = "subscriber@example.org",
    topic_code: str = "UKOXFORD_31",
    message_id: str | None = None,
    charset: str = "utf-8",
) -> bytes:
    """A GovDelivery bulletin with a single text/plain part, in GovDelivery's text style.

    Defaults: the Oxford City Council bin reminder of the forwarded sample (real words,
    synthetic headers and ids). `headline`, when given, comes before the paragraphs.
    """
    linker = _linker(bulletin_id, subscriber, topic_code, mail_date)
    env = _envelope(agency, subject, mail_date, subscriber, linker, message_id=message_id,
                    charset=charset)  # fmt: skip
    view_online = linker.gd(web_copy_url(agency.account_code, bulletin_id, web_id))
    body = [_render(p, linker.gd, "")[1] for p in paragraphs]
    footer = [_render(p, linker.gd, "")[1] for p in _standard_footer(agency, linker)]
    text = _text_blocks(
        f"Having trouble viewing this email? View it as a Web page [ {view_online} ].",
        _RULE,
        [headline or ""],
        body,
        _RULE,
        footer,
        f"{_RULE}\n\n{_strip_tags(agency.tagline(subscriber))}",
    )
    return _flatten(_headers(env), _qp_text(text, "plain", charset))


def wrap_bulletin(
    *,
    agency: Agency,
    subject: str,
    mail_date: datetime,
    bulletin_id: str,
    html_part: str | None = None,
    text_part: str | None = None,
    subscriber: str = "subscriber@example.org",
    topic_code: str = "",
    account_known: bool = True,
) -> bytes:
    """A sent copy whose parts are given as they are (a real bulletin's HTML or text):
    GovDelivery's headers around them. `account_known=False` leaves out X-Accountcode and
    List-Unsubscribe (both name the account) for a sender whose account code is unknown."""
    linker = _linker(bulletin_id, subscriber, topic_code or agency.account_code, mail_date)
    env = _envelope(agency, subject, mail_date, subscriber, linker, message_id=None)
    headers = _headers(env)
    if not account_known:
        named = ("X-Accountcode", "List-Unsubscribe", "List-Unsubscribe-Post")
        headers = [(name, value) for name, value in headers if name not in named]
    given = (("plain", text_part), ("html", html_part))
    parts = [_qp_text(body, kind, "utf-8") for kind, body in given if body]
    if len(parts) == 1:
        return _flatten(headers, parts[0])
    return _flatten(headers, _multipart("alternative", parts, _boundary(subject, mail_date)))


# --------------------------------------------------------------------------- not bulletins


def subscription_confirmation(
    *,
    agency: Agency = DEFENSE,
    topics: Sequence[str] = ("Releases", "Advisories", "Transcripts"),
    subscriber: str = "subscriber@example.org",
    mail_date: datetime = datetime(2024, 7, 20, 11, 2, 51, tzinfo=CDT),
    message_id: str | None = None,
) -> bytes:
    """GovDelivery's "your subscription has been updated, please confirm" mail: no bulletin."""
    code = agency.account_code
    token = _token("confirm", subscriber, mail_date, length=40)
    confirm = f"https://public.govdelivery.com/accounts/{code}/subscriber/confirm?token={token}"
    prefs = f"https://public.govdelivery.com/accounts/{code}/subscriber/edit?preferences=true"
    lines = (
        f"Thank you for updating your subscription to {agency.name}. You are now subscribed "
        "to receive updates on the following topics:",
        "\n".join(f"  * {t}" for t in topics),
        "Please confirm your email address by following the link below. If you did not "
        "request this subscription, you can ignore this message and no further email will be "
        "sent.",
        f"[Confirm your subscription]({confirm})",
        f"You can change your topics or stop subscriptions at any time on your "
        f"[Subscriber Preferences Page]({prefs}#tab1).",
    )
    subject = f"Your subscription to {agency.name} has been updated"
    rendered = [_render(p, lambda u: u, "color: #1473cb;") for p in lines]
    tagline = agency.tagline(subscriber)
    text = _text_blocks([t for _, t in rendered], f"{_RULE}\n\n{_strip_tags(tagline)}")
    paras = "\n".join(f"<p>{h.replace(chr(10), '<br>')}</p>" for h, _ in rendered)
    page = _html_page(subject, "utf-8", _RESET_CSS,
                      f'<body>\n<div id="gd_subscription">\n{paras}\n</div>\n'
                      f"{_tagline_html(tagline)}</body>")  # fmt: skip
    env = _Envelope(
        agency=agency,
        subject=subject,
        mail_date=mail_date,
        subscriber=subscriber,
        message_id=message_id or f"confirmation.{_number(token, digits=10)}@public.govdelivery.com",
        recipient_id=_number("confirmation", subscriber, digits=12),
    )
    parts = [_qp_text(text, "plain", "utf-8"), _qp_text(page, "html", "utf-8")]
    return _flatten(_headers(env), _multipart("alternative", parts, _boundary(token, mail_date)))


PERSONAL_FROM = ("Pat Example", "pat.example@example.net")


def personal_message(
    *,
    subscriber: str = "subscriber@example.org",
    mail_date: datetime = datetime(2024, 7, 29, 9, 14, 2, tzinfo=timezone(timedelta(hours=-4))),
) -> bytes:
    """A stray personal note in the feed mailbox (mentions a release, is none)."""
    name, address = PERSONAL_FROM
    text = (
        "Hi,\n\nDid you see the DoD release about the ministerial meeting in Tokyo? The "
        "View Online link in the email goes to\n"
        "https://www.defense.gov/News/Releases/ and I couldn’t find the article itself.\n\n"
        "Could you check whether the feed picked it up?\n\nThanks,\nPat\n"
    )
    stamp = _pacific(mail_date + timedelta(seconds=2))
    when = f"{format_datetime(stamp)} ({stamp.tzname()})"
    message_id = f"CAF{_token('personal', mail_date, length=30)}@mail.gmail.com"
    headers = [
        ("Delivered-To", subscriber),
        ("Received", f"by 2002:a05:7300:4c1e:b0:1a2:0:0 with SMTP id r30csp118321dyb;\n"
                     f"        {when}"),
        ("Return-Path", f"<{address}>"),
        ("Received", "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])"
                     "\n        by mx.google.com with SMTPS id a640c23a62f3a-5a2b.81\n        "
                     f"for <{subscriber}>\n        (Google Transport Security);\n        {when}"),
        ("Authentication-Results", "mx.google.com;\n       dkim=pass header.i=@example.net "
                                   "header.s=20230601 header.b=Qx3v9LmA;\n       spf=pass "
                                   f"(google.com: domain of {address} designates 209.85.220.41 "
                                   f"as permitted sender) smtp.mailfrom={address};\n       "
                                   "dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.net"),
        ("Date", format_datetime(mail_date)),
        ("From", formataddr((name, address))),
        ("To", subscriber),
        ("Message-ID", f"<{message_id}>"),
        ("In-Reply-To", "<CAF0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6@mail.gmail.com>"),
        ("Subject", "Re: the DoD press list"),
    ]  # fmt: skip
    return _flatten(headers, _qp_text(text, "plain", "utf-8"))


# --------------------------------------------------------------------------- malformed


def truncated(raw: bytes, keep: float = 0.6) -> bytes:
    """`raw` cut after `keep` of its bytes: a multipart cut mid-part, no closing boundary."""
    return raw[: int(len(raw) * keep)]


def without_closing_boundary(raw: bytes) -> bytes:
    """`raw` with its final `--boundary--` line removed (every part otherwise complete)."""
    end = raw.rstrip().rfind(b"\r\n--")
    return raw[: end + 2]


def headers_only(raw: bytes) -> bytes:
    """Only the header block of `raw`: no blank line, no body."""
    return raw[: raw.index(b"\r\n\r\n") + 2]


def binary_junk(size: int = 8192, *, seed: int = 1) -> bytes:
    """`size` random-looking bytes (seeded, so the same every time)."""
    return random.Random(seed).randbytes(size)  # noqa: S311 - fixture data, not secrets


def deeply_nested(levels: int = 50) -> bytes:
    """multipart/mixed nested `levels` deep around one text/plain part."""
    inner: Message = _qp_text("The innermost part of a deeply nested message.\n", "plain", "utf-8")
    for level in range(levels, 0, -1):
        inner = _multipart("mixed", [inner], f"nest-{level:04d}")
    headers = [
        ("Date", "Mon, 05 Aug 2024 10:00:00 -0500"),
        ("From", '"U.S. Department of Defense" <USDOD@public.govdelivery.com>'),
        ("To", "subscriber@example.org"),
        ("Message-ID", f"<deeply-nested-{levels}@public.govdelivery.com>"),
        ("Subject", f"Nested {levels} levels deep"),
    ]
    return _flatten(headers, inner)


def big_message(size_bytes: int = 20_000_000, *, seed: int = 7) -> bytes:
    """A DoD release carrying a large (seeded, random) PDF attachment: >= `size_bytes`."""
    spec = DodSpec(
        title="Fiscal Year 2025 Budget Request Overview Book",
        kind="publication",
        release_date=date(2024, 3, 11),
        mail_date=datetime(2024, 3, 11, 15, 40, 9, tzinfo=CDT),
        paragraphs=(BIG_PARAGRAPH,),
        article_id=3700112,
        bulletin_id="20240311.117700112",
    )
    headers, alternative = _dod_send(spec, spec.paragraphs)
    need = max(0, size_bytes - 20_000) * 57 // 78 + 57  # base64 lines: 57 bytes -> 78
    attachment = Message()
    attachment.add_header("Content-Type", "application/pdf", name="FY2025_Budget_Overview.pdf")
    attachment.add_header(
        "Content-Disposition", "attachment", filename="FY2025_Budget_Overview.pdf"
    )
    attachment["Content-Transfer-Encoding"] = "base64"
    data = b"%PDF-1.7\n" + random.Random(seed).randbytes(need)  # noqa: S311 - filler bytes
    attachment.set_payload(base64.encodebytes(data).decode("ascii"))
    mixed = _multipart("mixed", [alternative, attachment], _boundary("big", spec.mail_date))
    return _flatten(headers, mixed)


# --------------------------------------------------------------------------- content


ROK_US_TITLE = "Joint Press Release for the ROK-U.S. Defense Ministerial Meeting"
ROK_US_PARAGRAPHS = (  # real: ../shared/samples/dod-release-as-text-2024-07-28.txt
    "On July 28, 2024, Minister of National Defense Shin Wonsik and Secretary of Defense "
    "Lloyd J. Austin III met in Tokyo to hold discussions on major issues facing the ROK-U.S. "
    "Alliance, including the security of the Korean Peninsula and the region, strengthening "
    "Alliance capabilities for deterrence and defense, and opportunities to deepen the "
    "Alliance.",
    "The Minister and the Secretary exchanged views on the recent Democratic People's "
    "Republic of Korea (DPRK) situation and reaffirmed their resolve to deter and respond to "
    "DPRK threats and provocations, based on the combined defense posture and capabilities "
    "of the Alliance. Minister Shin emphasized that the recent ongoing act of DPRK sending "
    "trash balloons is a clear violation of the Korean Armistice Agreement and a threat to "
    "ROK sovereignty. The two leaders strongly urged North Korea to immediately cease these "
    "provocative acts.",
    "The two leaders discussed Russian-DPRK military cooperation and made clear that illegal "
    "arms trade and transfer of high technology between Russia and the DPRK constitute a "
    "clear violation of United Nations Security Council resolutions (UNSCRs). The two "
    "officials stressed that they will continue to enforce the UNSC sanctions, in close "
    "cooperation with the international community.",
    "The Minister and the Secretary welcomed the tremendous progress in the first year of "
    "the Nuclear Consultative Group, as evidenced by the signing of the 'ROK-U.S. Guidelines "
    "for Nuclear Deterrence and Nuclear Operations on the Korean Peninsula' (hereinafter, "
    "Guidelines). Two leaders reaffirmed that as both President Biden and President Yoon "
    "stated, the Guidelines provide a solid foundation for enhancing U.S.-ROK extended "
    "deterrence cooperation in an integrated manner. Secretary Austin and Minister Shin noted "
    "that the Guidelines further strengthen the practical posture and capability of the "
    "Alliance to deter and respond to advancing DPRK's nuclear and missile threats. Based on "
    "the Guidelines, the Minister and the Secretary noted the importance of implementing the "
    "key tasks of the NCG. In addition, the Secretary reaffirmed that the U.S. commitment to "
    "extended deterrence to the ROK is backed by the full range of U.S. capabilities "
    "including nuclear, conventional, missile defense, and advanced non-nuclear capabilities.",
    "The Minister and the Secretary discussed the importance of faithfully implementing the "
    "'Defense Vision of the ROK-U.S. Alliance.' Both sides agreed to intensify efforts to "
    "modernize Alliance capabilities and evolve into a science and technology alliance. They "
    "pledged to continue to seeking cooperative measures to enhance defense industrial "
    "cooperation, including co-sustainment opportunities. In addition, the two leaders "
    "pledged to expand cooperation with the United Nations Command and UNC member states, and "
    "strengthen cooperation across the Indo-Pacific region with partnerships like the "
    "Association of South East Asian Nations and the Pacific Islands.",
    "Minister Shin and Secretary Austin affirmed that the ROK-U.S. Alliance is stronger than "
    "ever, and they pledged to continue efforts to enhance the Alliance's contributions to "
    "peace and stability in the Korean Peninsula and the Indo-Pacific region.",
)
PADDING_PARAGRAPHS = (  # synthetic, generic
    "The department continues to work closely with allies and partners to strengthen "
    "deterrence, improve interoperability and support a shared commitment to a free and "
    "open international order.",
    "Officials noted that the effort builds on several years of planning and consultation "
    "with the combatant commands, the military services and industry, and that progress "
    "will be reviewed at regular intervals.",
    "Additional information, including fact sheets and imagery, will be posted on the "
    "department's website as it becomes available.",
    "Service members and their families remain at the center of these efforts, and leaders "
    "emphasized the importance of readiness, quality of life and the health of the force.",
    "The department will continue to keep the public informed as the work moves forward, "
    "consistent with operational security requirements.",
    "Members of the news media with questions may contact the Pentagon Press Operations desk.",
)
BIG_PARAGRAPH = (
    "The department today published the overview book for its fiscal year 2025 budget "
    "request. The full document is attached to this message."
)


def _story(**fields: Any) -> DodSpec:
    fields["paragraphs"] = tuple(fields["paragraphs"])
    return DodSpec(**fields)


STORIES: dict[str, DodSpec] = {  # synthetic unless marked real; people are roles, not names
    "rok-us": DodSpec(),  # real
    "advisory": _story(
        kind="advisory",
        title="Deputy Secretary of Defense to Visit Munitions Production Facilities in Ohio "
        "and Pennsylvania",
        release_date=date(2024, 7, 29),
        mail_date=datetime(2024, 7, 29, 16, 41, 9, tzinfo=CDT),
        article_id=3853210,
        bulletin_id="20240729.123874512",
        paragraphs=(
            "The Deputy Secretary of Defense will travel to Ohio and Pennsylvania July 30-31, "
            "2024, to visit facilities that produce munitions and critical components for the "
            "Department of Defense.",
            "In Ohio, the Deputy Secretary will tour a load, assemble and pack plant and meet "
            "with employees and local officials to discuss efforts to expand production "
            "capacity. In Pennsylvania, the Deputy Secretary will visit a forging facility "
            "that supports the department's artillery production ramp-up.",
            "Media interested in covering the visits should contact the Pentagon Press "
            "Operations desk no later than 3 p.m. EDT on July 29. Travel and credential "
            "details are posted on the "
            "[Press Advisories page](<https://www.defense.gov/News/Advisories/>).",
            "For the latest updates, visit [defense.gov](https://www.defense.gov/).",
        ),
    ),
    "transcript": _story(
        kind="transcript",
        title="Pentagon Press Secretary Holds an On-Camera Press Briefing",
        release_date=date(2024, 7, 30),
        mail_date=datetime(2024, 7, 30, 18, 2, 44, tzinfo=CDT),
        article_id=3855120,
        bulletin_id="20240730.124102277",
        paragraphs=(
            "**PRESS SECRETARY:** Good afternoon, everyone. I have a few items to pass along "
            "at the top, and then I'll be happy to take your questions.",
            "This week the department will host defense officials from several Indo-Pacific "
            "partner nations for consultations on maritime security and information sharing. "
            "We'll have more details on those meetings as they are finalized.",
            "Separately, the department today released its annual report on installation "
            "resilience, which is available on "
            "[defense.gov](https://www.defense.gov/News/Publications/). And with that, I'll "
            "take your questions. Go ahead.",
            "**Q:** Thank you. Can you provide an update on the timeline for the next rotation "
            "of forces to the region?",
            "**PRESS SECRETARY:** Sure. I don't have any announcements to make today on future "
            "rotations. As you know, we continually assess our posture to make sure we have "
            "the right capabilities in place, and we'll provide updates when we're able to.",
            "**Q:** A follow-up on the consultations: will the Secretary attend in person?",
            "**PRESS SECRETARY:** The Secretary is expected to take part in at least one of "
            "the sessions. We'll get you the schedule as soon as it's available.",
            "**PRESS SECRETARY:** All right, thank you very much, everyone.",
        ),
    ),
    "speech": _story(
        kind="speech",
        title="Deputy Secretary of Defense Delivers Keynote Remarks at the Advanced "
        "Manufacturing Forum (As Delivered)",
        release_date=date(2024, 8, 1),
        mail_date=datetime(2024, 8, 1, 15, 20, 5, tzinfo=CDT),
        article_id=3857731,
        bulletin_id="20240801.124567019",
        paragraphs=(
            "Well, thank you for that kind introduction, and thank you all for being here "
            "this morning.",
            "It's a real privilege to be in a room full of people who make things — "
            "machinists, engineers, plant managers and the suppliers who keep their lines "
            "running. What you do every day is the foundation of deterrence.",
            "Over the last two years, we've learned a hard lesson: capacity we don't build in "
            "peacetime is capacity we won't have when we need it. That is why the department "
            "has signed multiyear contracts for critical munitions, and why we are investing "
            "in the workforce and the tooling behind them.",
            "First, we are giving industry clearer and earlier signals about what we will buy. "
            "Second, we are cutting the time it takes to qualify a new supplier. And third, we "
            "are working with community colleges and apprenticeship programs to grow the next "
            "generation of manufacturing talent.",
            "None of this is easy, and none of it happens without you. Thank you for your "
            "partnership, and I look forward to our conversation.",
        ),
    ),
    "contract": _story(
        kind="contract",
        title="Contracts For July 26, 2024",
        release_date=date(2024, 7, 26),
        mail_date=datetime(2024, 7, 26, 17, 47, 52, tzinfo=CDT),
        article_id=3851907,
        bulletin_id="20240726.123301954",
        paragraphs=(
            "**ARMY**",
            "Example Aerospace Corp., Huntsville, Alabama, was awarded a $48,215,007 "
            "modification (P00017) to contract W31P4Q-23-C-0042 for production of guidance "
            "section components. Work will be performed in Huntsville, Alabama, with an "
            "estimated completion date of Dec. 31, 2026. Fiscal 2024 procurement, Army funds "
            "in the amount of $48,215,007 were obligated at the time of the award. Army "
            "Contracting Command, Redstone Arsenal, Alabama, is the contracting activity.",
            "Sample Construction Group LLC,* Tacoma, Washington, was awarded a $14,960,250 "
            "firm-fixed-price contract for barracks renovation. Bids were solicited via the "
            "internet with four received. Work will be performed at Joint Base Lewis-McChord, "
            "Washington, with an estimated completion date of Aug. 30, 2026. Fiscal 2024 "
            "operation and maintenance, Army funds in the amount of $14,960,250 were "
            "obligated at the time of the award. U.S. Army Corps of Engineers, Seattle, "
            "Washington, is the contracting activity (W912DW-24-C-0031).",
            "**NAVY**",
            "Northwind Shipyard Services Inc., Norfolk, Virginia, is awarded a $22,480,330 "
            "firm-fixed-price contract for the selected restricted availability of a "
            "guided-missile destroyer. This contract includes options which, if exercised, "
            "would bring the cumulative value of this contract to $24,117,902. Work will be "
            "performed in Norfolk, Virginia, and is expected to be completed by May 2025. "
            "This contract was competitively procured via the SAM.gov website, with two "
            "offers received. Naval Sea Systems Command, Washington, D.C., is the contracting "
            "activity (N00024-24-C-4410).",
            "**DEFENSE LOGISTICS AGENCY**",
            "Example Textiles Co.,* Greenville, South Carolina, has been awarded a maximum "
            "$9,875,000 firm-fixed-price, indefinite-delivery/indefinite-quantity contract for "
            "combat uniform trousers. This was a competitive acquisition with three responses "
            "received. This is a one-year base contract with four one-year option periods. "
            "The ordering period end date is July 25, 2025. Using military services are Army "
            "and Air Force. The contracting activity is the Defense Logistics Agency Troop "
            "Support, Philadelphia, Pennsylvania (SPE1C1-24-D-1187).",
            "*Small business",
        ),
    ),
    "publication": _story(
        kind="publication",
        title="Fiscal Year 2024 Small Business Strategy Progress Report",
        release_date=date(2024, 8, 5),
        mail_date=datetime(2024, 8, 5, 10, 3, 27, tzinfo=CDT),
        article_id=3860452,
        bulletin_id="20240805.125011643",
        paragraphs=(
            "The Department of Defense today published its Fiscal Year 2024 Small Business "
            "Strategy Progress Report, which describes the department's efforts to strengthen "
            "the small business industrial base.",
            "The report summarizes steps taken to reduce barriers to entry for small "
            "businesses, improve access to capital, and expand outreach to first-time "
            "contractors through regional events and procurement technical assistance.",
            "The full report is available on "
            "[defense.gov](https://www.defense.gov/News/Publications/).",
        ),
    ),
    "energy-challenge": _story(
        title="Department of Defense Announces Winners of the 2024 Installation Energy "
        "Innovation Challenge",
        release_date=date(2024, 8, 7),
        mail_date=datetime(2024, 8, 7, 11, 15, 40, tzinfo=CDT),
        article_id=3862218,
        bulletin_id="20240807.125398820",
        paragraphs=(
            "The Department of Defense today announced the winners of the 2024 Installation "
            "Energy Innovation Challenge, a competition that invites installation teams to "
            "propose practical ways to reduce energy costs and improve resilience.",
            "This year's winning teams proposed a microgrid that keeps a hangar complex "
            "running during grid outages, a program that replaces aging steam lines with "
            "high-efficiency heat pumps, and a maintenance schedule that uses building "
            "sensors to catch failing equipment before it breaks.",
            "Each winning team will receive funding to carry out its project over the next two "
            "fiscal years. Results will be shared across the department so other "
            "installations can adopt what works.",
        ),
    ),
    "housing": _story(
        title="Department of Defense Releases Annual Report on Privatized Military Housing "
        "Inspections",
        release_date=date(2024, 8, 15),
        mail_date=datetime(2024, 8, 15, 13, 5, 22, tzinfo=CDT),
        article_id=3870321,
        bulletin_id="20240815.126544310",
        paragraphs=(
            "The Department of Defense today released its annual report on inspections of "
            "privatized military family housing on installations in the United States.",
            "The report describes the results of inspections conducted by the military "
            "departments, the status of repairs identified during those inspections, and the "
            "steps taken to improve communication with residents.",
            "Residents with concerns about their housing are encouraged to contact their "
            "installation's military housing office, which can help resolve maintenance "
            "issues and explain the dispute resolution process.",
        ),
    ),
    "readout-cp1252": _story(
        title="Readout of the Deputy Secretary’s Meeting With Defense Industry Leaders",
        release_date=date(2024, 8, 8),
        mail_date=datetime(2024, 8, 8, 19, 30, 12, tzinfo=CDT),
        article_id=3863905,
        bulletin_id="20240808.125640037",
        charset="cp1252",
        paragraphs=(
            "The Deputy Secretary of Defense met today at the Pentagon with leaders of a "
            "dozen defense manufacturers to discuss the department’s efforts to expand "
            "production of critical munitions.",
            "“We need to move faster, and we need to do it together,” the Deputy Secretary "
            "said — adding that predictable, multiyear demand is the most effective signal "
            "the department can send to industry.",
            "The participants discussed workforce shortages, supply-chain bottlenecks for "
            "energetics and castings, and the department’s plans to streamline the "
            "qualification of second sources.",
        ),
    ),
    "readout-wrong-charset": _story(
        title="Readout of Under Secretary of Defense Meeting on Allied Industrial Cooperation",
        release_date=date(2024, 8, 12),
        mail_date=datetime(2024, 8, 12, 9, 44, 51, tzinfo=CDT),
        article_id=3866014,
        bulletin_id="20240812.126002481",
        declared_charset="iso-8859-1",  # the bytes are UTF-8
        paragraphs=(
            "The Under Secretary of Defense for Acquisition and Sustainment met today with "
            "national armaments directors from several allied nations to review progress on "
            "co-production agreements.",
            "The officials welcomed the joint communiqué on standardized munitions and agreed "
            "that “common parts, common tests and common paperwork” would speed deliveries — "
            "a theme that ran through the day’s sessions.",
            "They agreed to meet again in Brussels later this year.",
        ),
    ),
    "war-release": _story(
        agency=WAR,
        title="Department of War Launches Pilot Program to Speed Household Goods Moves",
        release_date=date(2025, 10, 3),
        mail_date=datetime(2025, 10, 3, 14, 5, 31, tzinfo=CDT),
        article_id=4305518,
        bulletin_id="20251003.412237765",
        paragraphs=(
            "The Department of War today launched a pilot program to shorten the time it "
            "takes service members and their families to schedule and complete household "
            "goods moves during a permanent change of station.",
            "Under the pilot, families at six installations will be able to book packing and "
            "pickup dates online within 48 hours of receiving orders, and will have a single "
            "point of contact for claims.",
            "The department will evaluate the pilot through the summer 2026 moving season "
            "before deciding whether to expand it. Information for families is available on "
            "[war.gov](https://www.war.gov/Spotlights/).",
        ),
    ),
    "war-advisory": _story(
        agency=WAR,
        kind="advisory",
        title="Secretary of War to Host Service Academy Superintendents at the Pentagon",
        release_date=date(2025, 11, 13),
        mail_date=datetime(2025, 11, 13, 16, 22, 8, tzinfo=CST),
        article_id=4338902,
        bulletin_id="20251113.418876201",
        paragraphs=(
            "The Secretary of War will host the superintendents of the service academies at "
            "the Pentagon on Nov. 14, 2025, to discuss admissions, leader development and "
            "the academies' role in strengthening the force.",
            "The meeting is closed to media. A readout will be provided following the meeting.",
            "Media with questions should contact the Pentagon Press Operations desk. "
            "Advisories are posted on [war.gov](https://www.war.gov/News/Advisories/).",
        ),
    ),
    "war-transcript": _story(
        agency=WAR,
        kind="transcript",
        title="Pentagon Press Secretary Holds a Press Briefing",
        release_date=date(2025, 12, 4),
        mail_date=datetime(2025, 12, 4, 17, 10, 45, tzinfo=CST),
        article_id=4351177,
        bulletin_id="20251204.421904455",
        paragraphs=(
            "**PRESS SECRETARY:** Good afternoon. Just a couple of things at the top, and then "
            "we'll get to your questions.",
            "The Department of War continues to support holiday travel for service members "
            "returning home on leave, and installations have published updated gate hours "
            "for the season.",
            "**Q:** Is the department planning any changes to the leave policy this year?",
            "**PRESS SECRETARY:** No changes to announce today. Thanks, everyone.",
        ),
    ),
}
