"""A polite, bounded HTTP client for feeds and article pages.

Every request: a clear User-Agent, a timeout between bytes and a deadline for the whole fetch
(``fetch.total_timeout``: :mod:`qa.web.deadline`), a size cap read while streaming (a server
that lies about or omits Content-Length still cannot make us hold 50 MB), redirects followed by
hand up to a bound (each hop checked against robots.txt and for its scheme), and conditional
GETs (ETag / Last-Modified) for feeds polled again. Only public addresses are reached, and the
networks ``fetch.allowed_networks`` lists (each hop checked, and each connection as it is
opened: :mod:`qa.web.guard`). robots.txt is fetched once per origin (its ``Crawl-delay`` kept
between two requests to the site) and honoured as RFC 9309 says: missing (4xx) allows
everything, unreachable (5xx, network error) disallows everything until it can be read.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import urllib.robotparser
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from qa.core.config import FetchSettings
from qa.core.types import QAError
from qa.web.deadline import deadline, past_deadline
from qa.web.guard import AddressRefused, AddressRule, GuardedTransport

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_CRAWL_DELAY = 60.0  # seconds; a robots.txt Crawl-delay is honoured up to this
# A host name: dot-separated labels of letters (any script), digits, "-" and "_", with an
# optional final dot; an IPv4 address is such a name too.
HOST_NAME = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?")


class FetchError(QAError):
    """One URL could not be fetched; the message says why, in a few words."""


@dataclass(frozen=True)
class Fetched:
    """A response read in full (or a 304: ``not_modified`` and no body)."""

    url: str  # the final URL, after redirects
    status: int
    content_type: str  # media type only, lower-cased ("text/html")
    body: bytes
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def normalize_url(url: str) -> str:
    """The form URLs are compared in: scheme and host lower-cased, default port and fragment
    dropped, an empty path made ``/``. Raises :class:`FetchError` for a non-http(s) URL."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("not an http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    elif not HOST_NAME.fullmatch(host):  # "..", "%2e%2e", "a..b": no such host anywhere
        raise FetchError(f"invalid host name in URL: {parts.hostname!r}")
    default = {"http": 80, "https": 443}[scheme]
    try:
        port = parts.port
    except ValueError:
        raise FetchError("invalid port in URL") from None
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


class Fetcher:
    """One HTTP client shared by a run (connections are reused); safe to use from threads."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self.rule = AddressRule.of(settings)
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,  # followed by hand: each hop is checked
            headers={"User-Agent": settings.user_agent},
            transport=GuardedTransport(self.rule),
        )
        self._robots: dict[str, urllib.robotparser.RobotFileParser | FetchError] = {}
        self._last_request: dict[str, float] = {}  # origin -> when we last asked it
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, *, etag: str = "", last_modified: str = "") -> Fetched:
        """GET ``url`` following redirects; raises :class:`FetchError` for a refused, failed,
        oversized or non-2xx response (304 is returned, for conditional requests)."""
        current = normalize_url(url)
        conditional = {}
        if etag:
            conditional["If-None-Match"] = etag
        if last_modified:
            conditional["If-Modified-Since"] = last_modified
        # One deadline for the whole fetch, redirects included; the waits for a site's
        # Crawl-delay (our own politeness) are not counted.
        ends = time.monotonic() + self.settings.total_timeout
        for hop in range(self.settings.max_redirects + 1):
            try:
                self._check_address(current)
                with deadline(ends - time.monotonic()):
                    self._check_robots(current)  # robots.txt's own connection is checked too
                ends += self._keep_crawl_delay(current)
                with deadline(ends - time.monotonic()):
                    status, headers, body = self._read(current, conditional)
            except AddressRefused as exc:
                raise FetchError(f"redirected to {current}: {exc}" if hop else str(exc)) from None
            if status in REDIRECTS and headers.get("location"):
                current = normalize_url(urljoin(current, headers["location"]))
                continue
            if status == 304:
                return Fetched(current, 304, "", b"", etag, last_modified)
            if not 200 <= status < 300:
                raise FetchError(f"HTTP {status}")
            return Fetched(
                url=current,
                status=status,
                content_type=_media_type(headers.get("content-type", "")),
                body=body,
                etag=headers.get("etag", ""),
                last_modified=headers.get("last-modified", ""),
            )
        raise FetchError(f"more than {self.settings.max_redirects} redirects")

    def _check_address(self, url: str) -> None:
        """Refuse a URL whose host has a non-public address, before anything is sent."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        # A name that does not resolve here is left to the connection (which then fails, or
        # is a proxy's to resolve).
        with contextlib.suppress(OSError):
            self.rule.addresses(parts.hostname or "", port)

    def _read(self, url: str, extra: dict[str, str]) -> tuple[int, httpx.Headers, bytes]:
        cap = self.settings.max_bytes
        try:
            with self._client.stream("GET", url, headers=extra) as response:
                if response.status_code in REDIRECTS or response.status_code == 304:
                    return response.status_code, response.headers, b""
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise FetchError(
                        f"too large: {int(declared):,} bytes, over the cap of {cap:,} "
                        "(fetch.max_bytes)"
                    )
                chunks: list[bytes] = []
                size = 0
                for piece in response.iter_bytes():
                    if past_deadline():  # the sockets stop it too; this stops it sooner
                        raise httpx.ReadTimeout("the fetch's total deadline has passed")
                    size += len(piece)
                    if size > cap:
                        raise FetchError(
                            f"too large: over the cap of {cap:,} bytes (fetch.max_bytes)"
                        )
                    chunks.append(piece)
                return response.status_code, response.headers, b"".join(chunks)
        except httpx.TimeoutException:
            if past_deadline():
                raise FetchError(
                    f"timed out: not fetched in full within {self.settings.total_timeout:g} s "
                    "(fetch.total_timeout)"
                ) from None
            raise FetchError(f"timed out after {self.settings.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"cannot fetch: {exc.__class__.__name__}: {exc}") from None

    def _rules(self, origin: str) -> urllib.robotparser.RobotFileParser:
        with self._lock:
            rules = self._robots.get(origin)
        if rules is None:
            rules = self._load_robots(origin)
            with self._lock:
                self._robots[origin] = rules
        if isinstance(rules, FetchError):
            raise rules
        return rules

    def _check_robots(self, url: str) -> None:
        if not self._rules(_origin(url)).can_fetch(self.settings.user_agent, url):
            raise FetchError("disallowed by robots.txt")

    def _keep_crawl_delay(self, url: str) -> float:
        """Wait out the site's ``Crawl-delay`` since our last request to it (at most
        MAX_CRAWL_DELAY: a site asking for an hour between pages would stall every feed);
        returns the seconds waited."""
        origin = _origin(url)
        delay = self._rules(origin).crawl_delay(self.settings.user_agent)
        if not delay:
            return 0.0
        with self._lock:
            last = self._last_request.get(origin)
            now = time.monotonic()
            start = now if last is None else max(now, last + min(float(delay), MAX_CRAWL_DELAY))
            self._last_request[origin] = start  # reserved, so threads queue up in turn
        time.sleep(start - now)
        return start - now

    def _load_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | FetchError:
        parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        try:
            status, _, body = self._read(origin + "/robots.txt", {})
        except FetchError as exc:
            return FetchError(f"robots.txt unreachable ({exc}): not fetched")
        if status >= 500:
            return FetchError(f"robots.txt unreachable (HTTP {status}): not fetched")
        missing = 400 <= status < 500 or status in REDIRECTS  # no robots.txt: all allowed
        # parse() also marks the rules as read; an unread parser allows nothing.
        parser.parse([] if missing else body.decode("utf-8", errors="replace").splitlines())
        return parser
