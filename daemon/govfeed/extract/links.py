"""GovDelivery tracker links, unwrapped offline, and the ids hidden in them.

Three tracker forms wrap a bulletin's links (see ../shared/samples/README.md):
`lnks.gd/l/<JWT>/...` (the JWT's payload is JSON with `url` and `bulletin_id`),
`links.govdelivery.com/track?...&&&<destination>` (also the open-tracking pixel, whose
base64 `enid` holds the `mailingid`) and `links-N.govdelivery.com/CL0/<quoted dest>/1/...`.
Everything here is pure string work: no network, no exceptions on garbage input.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

_MAX_URL = 8192  # longer "URLs" are junk; leave them alone
_MAX_DEPTH = 3  # a tracker wrapping a tracker wrapping ...
_JSON_URL = re.compile(r'"url"\s*:\s*"((?:[^"\\]|\\.){1,4000})"')
# Whole values only: a truncated token must not yield a truncated id.
_JSON_BULLETIN = re.compile(r'"bulletin_id"\s*:\s*(?:"([0-9][0-9.]{0,40})"|([0-9]{1,40})\s*[,}])')
_MAILING_ID = re.compile(r"(?:^|&)mailingid=([0-9][0-9.]{0,40})&")
_ACCOUNT_PATH = re.compile(r"/accounts/([A-Za-z0-9_]{2,40})(?:/|$)")
_BULLETIN_PATH = re.compile(r"^/accounts/([A-Za-z0-9_]{2,40})/bulletins/([0-9a-fA-F]{1,20})\b")
_TRACK_TARGET = re.compile(r"&&&((?:https?://|mailto:|tel:).*)", re.DOTALL | re.IGNORECASE)
_LINKS_HOST = re.compile(r"^links(?:-\d+)?\.govdelivery\.com$")  # track? and CL0/ trackers
_ACCOUNT_HOSTS = ("content.govdelivery.com", "public.govdelivery.com")
# `width: 1px` or `max-height:0` in a style attribute; not border-width, not 1em or 1.5px.
_STYLE_SIZE = re.compile(
    r"(?<![\w-])(?:max-)?(?:width|height)\s*:\s*(\d{1,5})(?:px)?(?![\w.%])", re.I
)


# Query parameters that name or key the recipient of one copy of a bulletin: stripped from
# every stored link (`verification`/`destination` are GovDelivery's one-click unsubscribe).
_RECIPIENT_PARAMS_WORDS = (
    "email emailid email_id emailaddress email_address e userid user_id uid subscriber "
    "subscriberid subscriber_id subscriber_code recipient recipientid recipient_id rid "
    "token verification destination mc_eid contactid contact_id ecid eid sid"
)
_RECIPIENT_PARAMS = frozenset(_RECIPIENT_PARAMS_WORDS.split())


@lru_cache(maxsize=4096)  # a message asks for each of its links more than once
def unwrap_url(url: str) -> str:
    """The destination of a GovDelivery tracker link, with `utm_*` parameters removed.

    A link that is no tracker comes back with only `utm_*` removed; a tracker that
    cannot be decoded (truncated or garbage token) comes back unchanged.
    """
    current = url.strip()
    if len(current) > _MAX_URL:
        return url
    for _ in range(_MAX_DEPTH):
        target = _tracker_target(current)
        if target is None:
            break
        current = target
    return strip_utm(current)


def is_tracker(url: str) -> bool:
    """True for a GovDelivery click or open tracker URL (decodable or not)."""
    lowered = url.lower()  # host names are case-insensitive: LINKS.GOVDELIVERY.COM tracks too
    if "lnks.gd" not in lowered and "govdelivery.com" not in lowered:
        return False
    host, path = _host_path(url)
    if host == "lnks.gd":
        return path.startswith("/l/")
    if _LINKS_HOST.match(host):
        return path.startswith(("/track", "/CL0/", "/CL1/"))
    return False


def is_tracking_pixel(
    src: str, width: str | None = None, height: str | None = None, style: str | None = None
) -> bool:
    """True for an open-tracking image: a GovDelivery tracker or a 0/1-pixel image, sized
    by its width/height attributes or by its `style` ("width:1px;height:1px")."""
    sizes = [_pixels(value) for value in (width, height) if value is not None]
    if style:
        sizes += [int(value) for value in _STYLE_SIZE.findall(style)]
    return any(size is not None and size <= 1 for size in sizes) or is_tracker(src)


def bulletin_id_from_url(url: str) -> str | None:
    """The mailing id (`20230109.69441521`) a lnks.gd token or tracking `enid` carries."""
    host, path = _host_path(url)
    if host == "lnks.gd" and path.startswith("/l/"):
        payload = _jwt_payload(path)
        found = _JSON_BULLETIN.search(payload) if payload else None
        return (found.group(1) or found.group(2)).rstrip(".") if found else None
    if _LINKS_HOST.match(host) and path.startswith("/track"):
        enid = _enid(url)
        found = _MAILING_ID.search(enid) if enid else None
        return found.group(1).rstrip(".") if found else None
    return None


def account_code_from_url(url: str) -> str | None:
    """The account code in a content/public.govdelivery.com `/accounts/<CODE>/` URL."""
    host, path = _host_path(url)
    if host not in _ACCOUNT_HOSTS:
        return None
    found = _ACCOUNT_PATH.search(path)
    return found.group(1).upper() if found else None


def bulletin_web_copy(url: str) -> tuple[str, str] | None:
    """(account code, bulletin hex) of a `content.govdelivery.com/accounts/C/bulletins/H` URL."""
    host, path = _host_path(url)
    if host != "content.govdelivery.com":
        return None
    found = _BULLETIN_PATH.match(path)
    return (found.group(1).upper(), found.group(2).lower()) if found else None


def strip_utm(url: str) -> str:
    """`url` without `utm_*` query parameters; anything else is left as it is."""
    if "utm_" not in url.lower():
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    # Split by hand so every other parameter keeps its exact encoding.
    kept = [
        piece
        for piece in parts.query.split("&")
        if piece and not piece.split("=", 1)[0].lower().startswith("utm_")
    ]
    return urlunsplit(parts._replace(query="&".join(kept)))


def strip_recipient_params(url: str) -> str:
    """`url` without query parameters that identify its recipient (an address, an id or
    a token: `email=`, `uid=`, `token=`, any value holding an "@")."""
    if "?" not in url:
        return url
    base, _, rest = url.partition("?")
    query, hash_mark, fragment = rest.partition("#")
    kept = [piece for piece in query.split("&") if piece and not _recipient_param(piece)]
    if len(kept) == len([piece for piece in query.split("&") if piece]):
        return url
    rebuilt = base + ("?" + "&".join(kept) if kept else "")
    return rebuilt + (hash_mark + fragment if hash_mark else "")


def has_recipient_params(url: str) -> bool:
    """True when `url` carries a query parameter that identifies its recipient."""
    return strip_recipient_params(url) != url


def _recipient_param(piece: str) -> bool:
    name, _, value = piece.partition("=")
    if name.lower() in _RECIPIENT_PARAMS:
        return True
    value = value.lower()
    return "@" in value or "%40" in value


def normalize_url(url: str) -> str:
    """A canonical form for storage: lower-case scheme and host, no fragment, no utm_*."""
    try:
        parts = urlsplit(strip_utm(url.strip()))
    except ValueError:
        return url.strip()
    netloc = parts.netloc.lower()
    if parts.scheme.lower() == "https" and netloc.endswith(":443"):
        netloc = netloc[: -len(":443")]
    elif parts.scheme.lower() == "http" and netloc.endswith(":80"):
        netloc = netloc[: -len(":80")]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def is_web_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    head = url[:8].lower()
    if head.startswith("https://"):
        return url[8:9] not in ("", "/", "?", "#")
    return head.startswith("http://") and url[7:8] not in ("", "/", "?", "#")


def is_contact_url(url: str) -> bool:
    """True for a mailto: or tel: link."""
    return url[:7].lower() == "mailto:" or url[:4].lower() == "tel:"


def _tracker_target(url: str) -> str | None:
    host, path = _host_path(url)
    if host == "lnks.gd" and path.startswith("/l/"):
        target = _lnks_gd_target(path)
    elif _LINKS_HOST.match(host) and path.startswith("/track"):
        # `...&&&<destination>` or `...&&&<link number>&&&<destination>`
        found = _TRACK_TARGET.search(url)
        target = found.group(1).strip() if found else None
    elif _LINKS_HOST.match(host) and path.startswith(("/CL0/", "/CL1/")):
        start = url.find(path[:5]) + 5  # from the raw URL: the quoted part may hold a "?"
        target = unquote(url[start:].split("/", 1)[0])
    else:
        return None
    # Trackers wrap mailto: and tel: links too; the wrapper carries the subscriber's ids.
    return target if target and (is_web_url(target) or is_contact_url(target)) else None


def _lnks_gd_target(path: str) -> str | None:
    payload = _jwt_payload(path)
    if not payload:
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        data = None
    if isinstance(data, dict):
        value = data.get("url")
        return value if isinstance(value, str) else None
    found = _JSON_URL.search(payload)  # a truncated token may still hold a whole "url"
    if not found:
        return None
    try:
        value = json.loads(f'"{found.group(1)}"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _jwt_payload(path: str) -> str | None:
    """The decoded middle segment of the JWT in `/l/<JWT>/...`, as text, or None."""
    token = path[3:].split("/", 1)[0]
    segments = token.split(".")
    if len(segments) < 2 or not segments[1]:
        return None
    return _b64_text(segments[1], urlsafe=True)


def _enid(url: str) -> str | None:
    query = urlsplit(url.split("&&&", 1)[0]).query
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "enid":
            return _b64_text(value, urlsafe=False)
    return None


def _b64_text(segment: str, *, urlsafe: bool) -> str | None:
    """Decode base64 leniently: missing padding added, a cut-off last character dropped."""
    clean = segment.strip().rstrip("=")
    if len(clean) % 4 == 1:  # no whole byte in a lone last character
        clean = clean[:-1]
    clean += "=" * (-len(clean) % 4)
    try:
        raw = base64.urlsafe_b64decode(clean) if urlsafe else base64.b64decode(clean)
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", errors="replace")


@lru_cache(maxsize=4096)
def _host_path(url: str) -> tuple[str, str]:
    """(lower-case host, path) of an http(s) URL, ("", "") for anything else.

    By hand rather than urlsplit: this runs for every link of every message.
    """
    url = url.strip()
    head = url[:8].lower()
    if len(url) > _MAX_URL or not head.startswith(("http://", "https://")):
        return "", ""
    start = 8 if head.startswith("https://") else 7
    end = _first_of(url, "/?#", start)
    authority = url[start:end].rpartition("@")[2]
    if authority.startswith("["):
        host = authority.partition("]")[0] + "]"
    else:
        host = authority.partition(":")[0]
    path = url[end : _first_of(url, "?#", end)] if url[end : end + 1] == "/" else ""
    return host.lower(), path


def _first_of(text: str, chars: str, start: int) -> int:
    found = [at for at in (text.find(char, start) for char in chars) if at >= 0]
    return min(found) if found else len(text)


def _pixels(value: str) -> int | None:
    digits = value.strip().lower().removesuffix("px").strip()
    return int(digits) if digits.isdigit() and len(digits) < 6 else None
