"""Tracker links unwrapped offline, and the ids they carry."""

from __future__ import annotations

import base64
import json

import pytest

from govfeed.extract.links import (
    account_code_from_url,
    bulletin_id_from_url,
    bulletin_web_copy,
    is_tracker,
    is_tracking_pixel,
    normalize_url,
    strip_utm,
    unwrap_url,
)

ARTICLE = "https://www.defense.gov/News/Releases/Release/Article/3852401/joint-press-release/"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def lnks_gd(claims: dict[str, object], tail: str = "/s/440305174/br/151948143821-l") -> str:
    header = b64url(b'{"alg":"HS256"}')
    payload = b64url(json.dumps(claims).encode())
    return f"https://lnks.gd/l/{header}.{payload}.c2lnbmF0dXJl{tail}"


def test_lnks_gd_token_gives_its_url() -> None:
    url = lnks_gd({"bulletin_id": "20240728.1", "url": ARTICLE})
    assert unwrap_url(url) == ARTICLE


def test_lnks_gd_destination_loses_utm_parameters() -> None:
    url = lnks_gd({"url": ARTICLE + "?utm_medium=email&utm_source=govdelivery&id=7"})
    assert unwrap_url(url) == ARTICLE + "?id=7"


@pytest.mark.parametrize(
    "token",
    [
        "https://lnks.gd/l/eyJhbGciOiJIUzI1NiJ9.eyJidWxsZXRpbl1mWXnYEXbJk/s/1/br/2-l",  # cut
        "https://lnks.gd/l/not-a-jwt/s/1/br/2-l",
        "https://lnks.gd/l/a.%%%%.b/s/1",
        "https://lnks.gd/l/",
        "https://lnks.gd/l/" + b64url(b"x") + "." + b64url(b"[1, 2]") + ".sig",
    ],
)
def test_undecodable_lnks_gd_token_comes_back_unchanged(token: str) -> None:
    assert unwrap_url(token) == token


def test_token_without_padding_and_truncated_json_still_gives_bulletin_id() -> None:
    # The sample's tokens were cut after the bulletin_id: the id must still be read.
    url = (
        "https://lnks.gd/l/eyJhbGciOiJIUzI1NiJ9.eyJidWxsZXRpbl9saW5rX2lkIjoxMDQsInVyaSI6ImJwMj"
        "pjbGljayIsImJ1bGxldGluX2lkIjoiMjAyMzAxMDkuNjk0NDE1MjEiLC/br/151948143821-l"
    )
    assert bulletin_id_from_url(url) == "20230109.69441521"
    assert unwrap_url(url) == url


def test_truncated_bulletin_id_is_not_returned() -> None:
    payload = b64url(b'{"uri":"bp2:click","bulletin_id":"2023010')
    assert bulletin_id_from_url(f"https://lnks.gd/l/eyJ9.{payload}/s/1") is None


def test_links_govdelivery_track_gives_the_destination_after_three_ampersands() -> None:
    url = f"https://links.govdelivery.com:443/track?type=click&enid=ZWFz&&&101&&&{ARTICLE}"
    assert unwrap_url(url) == ARTICLE


def test_open_tracking_pixel_is_a_tracker_with_its_mailing_id() -> None:
    enid = base64.b64encode(
        b"eas=1&subscriberid=1&mailingid=20230109.69441521&type=open&extra=&&&"
    ).decode()
    pixel = f"https://links.govdelivery.com/track?type=open&enid={enid}"
    assert is_tracker(pixel)
    assert is_tracking_pixel(pixel)
    assert unwrap_url(pixel) == pixel
    assert bulletin_id_from_url(pixel) == "20230109.69441521"


def test_cl0_tracker_gives_the_percent_decoded_destination() -> None:
    url = (
        "https://links-1.govdelivery.com/CL0/https:%2F%2Fwww.defense.gov%2FNews%2F%3Fa%3D1"
        "%26utm_source%3Dgd/1/0100019abc-def-000000/AbCdEf=123"
    )
    assert unwrap_url(url) == "https://www.defense.gov/News/?a=1"


def test_trackers_nested_in_trackers_are_all_unwrapped() -> None:
    inner = lnks_gd({"url": ARTICLE})
    url = "https://links-2.govdelivery.com/CL0/" + inner.replace("/", "%2F") + "/1/x/y=1"
    assert unwrap_url(url) == ARTICLE


def test_plain_links_keep_everything_but_utm() -> None:
    assert unwrap_url("https://example.gov/a?b=1&utm_campaign=x#top") == (
        "https://example.gov/a?b=1#top"
    )
    assert unwrap_url("mailto:press@example.gov") == "mailto:press@example.gov"
    assert strip_utm("https://example.gov/?q=a%20b&utm_x=1") == "https://example.gov/?q=a%20b"


def test_account_code_and_bulletin_hex_from_govdelivery_urls() -> None:
    web_copy = "https://content.govdelivery.com/accounts/USCMSHIM/bulletins/340e6fc"
    assert bulletin_web_copy(web_copy) == ("USCMSHIM", "340e6fc")
    assert account_code_from_url(web_copy) == "USCMSHIM"
    assert account_code_from_url("https://public.govdelivery.com/accounts/USDOD/subscriber/new")
    assert account_code_from_url("https://example.gov/accounts/USDOD/") is None
    assert bulletin_web_copy("https://content.govdelivery.com/attachments/USDOD/x.png") is None


@pytest.mark.parametrize(
    ("src", "width", "height", "expected"),
    [
        ("https://example.gov/p.gif", "1", "1", True),
        ("https://example.gov/p.gif", "0", None, True),
        ("https://example.gov/logo.png", "600", "90", False),
        ("https://example.gov/logo.png", None, None, False),
        ("https://links.govdelivery.com/track?type=open&enid=x", None, None, True),
        ("https://example.gov/p.gif", "1px", "auto", True),
    ],
)
def test_tracking_pixels(src: str, width: str | None, height: str | None, expected: bool) -> None:
    assert is_tracking_pixel(src, width, height) is expected


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("width:1px;height:1px", True),
        ("display:block; WIDTH: 0", True),
        ("max-height:0px", True),
        ("border-width:0; border-style:hidden", False),  # GovDelivery's own pixel style
        ("width: 600px; height: auto !important", False),
        ("width:1em", False),
        ("width:1.5px", False),
    ],
)
def test_tracking_pixels_sized_by_style(style: str, expected: bool) -> None:
    # A pixel sized only by CSS used to reach body_html.
    assert is_tracking_pixel("https://example.gov/p.gif", style=style) is expected


def test_tracker_hosts_are_case_insensitive() -> None:
    # An upper-case host is the same tracker; it used to pass as an ordinary image.
    assert is_tracker("HTTPS://LINKS.GOVDELIVERY.COM/track?type=open&enid=eA==")
    assert is_tracker("https://LNKS.GD/l/eyJhbGciOiJIUzI1NiJ9.e30.c2ln")


def test_normalize_url_lowercases_host_and_drops_fragment_and_default_port() -> None:
    assert normalize_url("HTTPS://WWW.Defense.GOV:443/News/?utm_source=x#a") == (
        "https://www.defense.gov/News/"
    )


def test_garbage_never_raises() -> None:
    for junk in ("", "http://[::1", "https://lnks.gd/l/" + "A" * 20000, "\x00\x01", "lnks.gd"):
        assert isinstance(unwrap_url(junk), str)
        assert bulletin_id_from_url(junk) is None
