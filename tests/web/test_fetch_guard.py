"""The private-address rule of fetching (qa.web.guard): the address classes, the allowed
networks, a host checked on every address it resolves to, and, against a real server on
loopback, redirects and a DNS answer that changes between the check and the connection."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from news_site import Route, serve

from qa.core.config import FetchSettings
from qa.web.fetch import Fetcher, FetchError
from qa.web.guard import AddressRefused, AddressRule, address_kind

SETTINGS = replace(FetchSettings(), timeout=1.0)
LOOPBACK = replace(SETTINGS, allowed_networks=("127.0.0.0/8",))
PUBLIC = "93.184.215.14"  # a public address; never connected to (the tests block the network)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: judged as the IPv4 address
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("8.8.8.8", ""),
        (PUBLIC, ""),
        ("2606:4700:4700::1111", ""),
    ],
)
def test_address_classes(address: str, kind: str) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_allowed_networks_open_only_what_they_list() -> None:
    rule = AddressRule.of(replace(SETTINGS, allowed_networks=("10.20.0.0/16",)))
    allowed = [ipaddress.ip_address(a) for a in ("10.20.3.4", "::ffff:10.20.3.4", PUBLIC)]
    assert [rule.refusal(a) for a in allowed] == ["", "", ""]
    for address, why in [
        ("10.21.0.1", "a private address"),
        ("127.0.0.1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),
    ]:
        assert rule.refusal(ipaddress.ip_address(address)) == why


def test_a_host_is_refused_when_any_of_its_addresses_is_not_public() -> None:
    rule = AddressRule()
    public, private = ipaddress.ip_address(PUBLIC), ipaddress.ip_address("10.0.0.7")
    rule.check("news.example", [public])  # no error
    with pytest.raises(AddressRefused) as info:
        rule.check("news.example", [public, private])
    assert str(info.value) == (
        "refused: news.example resolves to 10.0.0.7, a private address, not a public one "
        "(to fetch from it, list its network in fetch.allowed_networks)"
    )
    with pytest.raises(AddressRefused, match=r"^refused: 10\.0\.0\.7 is a private address"):
        rule.check("10.0.0.7", [private])


def fake_dns(answers: dict[str, Callable[[], list[str]]]) -> Callable[..., Any]:
    """``socket.getaddrinfo`` answering the names in ``answers`` (each call asks again), and
    passing anything else (IP literals) to the real one."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host in answers:
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port))) for a in answers[host]()
            ]
        return real(host, port, *args, **kwargs)

    return getaddrinfo


def test_loopback_and_link_local_urls_are_refused_before_anything_is_sent() -> None:
    routes = {"/a": Route(body=b"<p>page</p>")}
    with serve(routes) as site, Fetcher(SETTINGS) as fetcher:
        by_name = site.url("/a").replace("127.0.0.1", "localhost")
        for url, said in [
            (site.url("/a"), "127.0.0.1 is a loopback address"),
            (by_name, "localhost resolves to 127.0.0.1"),
            ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local"),
            ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is a loopback address"),
            ("http://2130706433/", "2130706433 resolves to 127.0.0.1, a loopback"),  # 127.0.0.1
        ]:
            with pytest.raises(FetchError) as info:
                fetcher.get(url)
            assert str(info.value).startswith(f"refused: {said}"), url
        assert site.requests == []  # not even robots.txt
    with serve(routes) as site, Fetcher(LOOPBACK) as fetcher:
        assert fetcher.get(site.url("/a")).body == b"<p>page</p>"


def test_a_redirect_to_a_private_address_is_refused() -> None:
    routes = {
        "/old": Route(status=302, headers={"Location": "http://169.254.169.254/latest/"}),
    }
    with serve(routes) as site, Fetcher(LOOPBACK) as fetcher, pytest.raises(FetchError) as info:
        fetcher.get(site.url("/old"))
    assert str(info.value).startswith(
        "redirected to http://169.254.169.254/latest/: refused: 169.254.169.254 is a link-local"
    )


def test_a_dns_answer_that_changes_after_the_check_is_caught_at_connect_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name is public when checked, loopback when connected to. The
    connection is made to the addresses the guard resolved and checked itself."""
    answers = iter([[PUBLIC]])
    dns = {"news.rebind.test": lambda: next(answers, ["127.0.0.1"])}
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns(dns))
    with serve({"/a": Route(body=b"<p>page</p>")}) as site, Fetcher(SETTINGS) as fetcher:
        url = site.url("/a").replace("127.0.0.1", "news.rebind.test")
        with pytest.raises(FetchError) as info:
            fetcher.get(url)
        assert str(info.value).startswith(
            "refused: news.rebind.test resolves to 127.0.0.1, a loopback address"
        )
        assert site.requests == []
    # The same name, allowed: fetched from the address the guard resolved, under its name.
    with serve({"/a": Route(body=b"<p>page</p>")}) as site, Fetcher(LOOPBACK) as fetcher:
        url = site.url("/a").replace("127.0.0.1", "news.rebind.test")
        assert fetcher.get(url).body == b"<p>page</p>"
        assert site.requests[-1][1]["host"] == url.split("/")[2]
